# Copyright (c) OpenMMLab. All rights reserved.
"""Test helpers: mmps's own configs and fake person search inputs.

mmdet's ``get_detector_cfg`` resolves mmdet's configs (and fails when mmdet
is pip-installed), and ``demo_mm_inputs(num_classes=1)`` crashes, so mmps
has its own.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData


def get_config_directory() -> str:
    """The ``configs/`` directory of the mmps source tree."""
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    path = osp.join(repo, 'configs')
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'mmps configs not found at {path} (mmps must be installed from '
            'its source tree, e.g. pip install -e .)')
    return path


def get_config(fname: str) -> Config:
    """Load an mmps config.

    Args:
        fname (str): Path relative to ``configs/`` (e.g. ``'dicl_prw.py'``)
            or an existing path.

    Returns:
        Config: The loaded config.
    """
    path = fname if osp.isfile(fname) else osp.join(get_config_directory(),
                                                    fname)
    return Config.fromfile(path)


def use_roi_align_without_cuda(model: ConfigDict) -> ConfigDict:
    """Swap a CUDA-only RoI layer for ``RoIAlign`` where CUDA is absent.

    The reference configs pool with mmcv's ``DeformRoIPoolPack`` (no CPU
    kernel; the model refuses to build without CUDA). CPU tests build them
    with ``RoIAlign`` of the same output size (``sampling_ratio=0``), the
    documented CPU deviation; with CUDA the config is left as it is.

    Args:
        model (ConfigDict): A detector config (modified in place).

    Returns:
        ConfigDict: ``model``.
    """
    from mmps.models.roi_heads.person_search_roi_head import \
        CUDA_ONLY_ROI_LAYERS
    extractor = (model.get('roi_head') or {}).get('bbox_roi_extractor')
    if extractor is None or torch.cuda.is_available():
        return model
    layer = extractor.roi_layer
    if layer.get('type') in CUDA_ONLY_ROI_LAYERS:
        extractor.roi_layer = ConfigDict(
            type='RoIAlign',
            output_size=layer.output_size,
            sampling_ratio=0,
            aligned=True)
    return model


def get_detector_cfg(fname: str, cuda_only_ops: bool = False) -> ConfigDict:
    """A deep copy of the ``model`` of an mmps config.

    Args:
        fname (str): An mmps config path (see :func:`get_config`).
        cuda_only_ops (bool): Keep a CUDA-only RoI layer also where CUDA is
            absent. Defaults to False (:func:`use_roi_align_without_cuda`).

    Returns:
        ConfigDict: The detector config.
    """
    model = copy.deepcopy(get_config(fname).model)
    return model if cuda_only_ops else use_roi_align_without_cuda(model)


def get_roi_head_cfg(fname_or_model: Union[str, ConfigDict]) -> ConfigDict:
    """The ``roi_head`` of a detector config with its ``train_cfg`` /
    ``test_cfg`` (``rcnn``) filled in, as the detector builds it.

    Args:
        fname_or_model (str or ConfigDict): An mmps config path (see
            :func:`get_config`) or a detector config (not modified).

    Returns:
        ConfigDict: A deep copy of the RoI head config.
    """
    model = get_detector_cfg(fname_or_model) if isinstance(
        fname_or_model, str) else copy.deepcopy(fname_or_model)
    roi_head = model.roi_head
    roi_head.update(
        train_cfg=None if model.train_cfg is None else model.train_cfg.rcnn,
        test_cfg=None if model.test_cfg is None else model.test_cfg.rcnn)
    return roi_head


def _resnet_c4_c5(backbone: ConfigDict) -> Tuple[int, int]:
    """C4 and C5 channels of an mmdet ``ResNet`` config."""
    expansion = 1 if backbone.get('depth', 50) in (18, 34) else 4
    base = backbone.get('base_channels', 64)
    return base * 4 * expansion, base * 8 * expansion


def shrink_person_search_cfg(model: ConfigDict,
                             depth: int = 18,
                             base_channels: int = 4,
                             head_channels: int = 8,
                             num_rois: int = 16,
                             num_proposals: int = 64) -> ConfigDict:
    """Shrink a person search detector config for fast CPU tests.

    As MMDetection tests its configs: the same structure with a small
    backbone (``depth``, ``base_channels``), no pretrained init, narrow
    neck / heads (every channel count derived from the backbone), few
    sampled RoIs and proposals.

    Args:
        model (ConfigDict): A detector config (modified in place).
        depth (int): ResNet depth. Defaults to 18.
        base_channels (int): ResNet stem width. Defaults to 4.
        head_channels (int): Channels of the box towers. Defaults to 8.
        num_rois (int): RoIs sampled per image. Defaults to 16.
        num_proposals (int): Proposals kept per image. Defaults to 64.

    Returns:
        ConfigDict: ``model``.
    """
    model.backbone.update(
        depth=depth, base_channels=base_channels, init_cfg=None)
    if depth in (18, 34):
        model.backbone.style = 'pytorch'
    c4, c5 = _resnet_c4_c5(model.backbone)
    model.neck.update(in_channels=(c4, c5), out_channels=c4)
    model.rpn_head.update(in_channels=c4, feat_channels=c4)
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = c4
    roi_layer = roi.bbox_roi_extractor.roi_layer
    if 'output_channels' in roi_layer:
        roi_layer.output_channels = c4
    if roi.get('shared_head') is not None:
        roi.shared_head.in_channels = c4
    roi.bbox_head.update(
        in_channels=c4, conv_out_channels=(head_channels, head_channels))
    roi.reid_head.in_channels = c4
    train = model.train_cfg
    train.rpn.sampler.num = 4 * num_rois
    train.rpn_proposal.update(
        nms_pre=4 * num_proposals, max_per_img=num_proposals)
    train.rcnn.sampler.num = num_rois
    model.test_cfg.rpn.update(
        nms_pre=4 * num_proposals, max_per_img=num_proposals)
    return model


def _rand_person_boxes(rng: np.random.RandomState, num: int, h: int,
                       w: int) -> np.ndarray:
    """Tall boxes inside an (h, w) image, (num, 4) float32."""
    bw = rng.uniform(0.15, 0.35, num) * w
    bh = np.minimum(bw * rng.uniform(1.5, 3.0, num), 0.9 * h)
    x1 = rng.uniform(0, 1, num) * (w - bw)
    y1 = rng.uniform(0, 1, num) * (h - bh)
    return np.stack([x1, y1, x1 + bw, y1 + bh], 1).astype(np.float32)


def demo_person_search_inputs(batch_size: int = 2,
                              image_shapes: Union[Sequence[int],
                                                  List[Sequence[int]]] = (3,
                                                                          96,
                                                                          128),
                              num_items: Optional[List[int]] = None,
                              is_query: Union[bool, Sequence[bool]] = False,
                              scale_factor: Sequence[float] = (1.0, 1.0),
                              use_box_type: bool = False,
                              seed: int = 0,
                              device: str = 'cpu') -> dict:
    """Fake packed person search samples (one class: person).

    Shaped like the output of ``PackPersonSearchInputs`` through a
    dataloader: ``inputs`` (uint8 CHW images, as loaded, already resized)
    and ``data_samples`` (:class:`DetDataSample` with person search
    metainfo and ``gt_instances`` ``bboxes`` / ``labels`` (0) /
    ``instances_ids`` / ``person_ids``).

    Args:
        batch_size (int): Number of samples. Defaults to 2.
        image_shapes (tuple or list[tuple]): (C, H, W) of the resized
            images, one for all or one per sample. Defaults to (3, 96, 128).
        num_items (list[int], optional): Boxes per sample (random 1-4 if
            None); a query always has exactly one box.
        is_query (bool or Sequence[bool]): Query flags. Defaults to False.
        scale_factor (Sequence[float]): (w, h) resize factor of the
            pipeline: ``ori_shape = img_shape / scale_factor``.
            Defaults to (1., 1.).
        use_box_type (bool): ``bboxes`` as ``HorizontalBoxes`` (as packed
            by the pipeline; the data preprocessor turns them into tensors)
            instead of tensors (as the model sees them). Defaults to False.
        seed (int): Random seed. Defaults to 0.
        device (str): Device. Defaults to ``'cpu'``.

    Returns:
        dict: ``inputs`` (list[Tensor]) and ``data_samples``
        (list[DetDataSample]), ready for ``model.data_preprocessor``.
    """
    rng = np.random.RandomState(seed)
    if not isinstance(image_shapes, list):
        image_shapes = [tuple(image_shapes)] * batch_size
    if isinstance(is_query, bool):
        is_query = [is_query] * batch_size
    assert len(image_shapes) == len(is_query) == batch_size
    if num_items is not None:
        assert len(num_items) == batch_size
    sw, sh = float(scale_factor[0]), float(scale_factor[1])
    inputs, data_samples = [], []
    next_instance = 0
    for idx in range(batch_size):
        c, h, w = image_shapes[idx]
        inputs.append(
            torch.from_numpy(rng.randint(0, 255, (c, h, w),
                                         dtype=np.uint8)).to(device))
        query = bool(is_query[idx])
        num = 1 if query else (
            rng.randint(1, 5) if num_items is None else num_items[idx])
        boxes = _rand_person_boxes(rng, num, h, w)
        meta = dict(
            img_id=idx,
            img_path=f'<demo_{idx}>.jpg',
            img_name=f'demo_{idx}.jpg',
            cam_id=idx % 2 + 1,
            img_shape=(h, w),
            ori_shape=(int(round(h / sh)), int(round(w / sw))),
            scale_factor=(sw, sh),
            flip=False,
            flip_direction=None,
            is_query=query)
        if query:
            meta.update(
                query_id=idx, query_img_index=idx, gallery_img_ids=None)
        sample = DetDataSample(metainfo=meta)
        bboxes = torch.from_numpy(boxes).to(device)
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(bboxes) if use_box_type else bboxes,
            labels=torch.zeros(num, dtype=torch.long, device=device),
            instances_ids=torch.arange(
                next_instance, next_instance + num, device=device),
            person_ids=torch.from_numpy(rng.randint(-1, 5,
                                                    num)).long().to(device))
        next_instance += num
        data_samples.append(sample)
    return dict(inputs=inputs, data_samples=data_samples)


def prepare_instance_memory(model,
                            num_slots: int = 64,
                            seed: Optional[int] = None) -> None:
    """Size the instance memory of a DICL model (if any) for fake inputs.

    In training the memory is sized from the dataset by
    ``InstanceMemoryInitHook``; a test that runs ``loss`` on
    :func:`demo_person_search_inputs` (``instances_ids`` 0, 1, ...) calls
    this first.

    Args:
        model (nn.Module): A detector (its ``roi_head.memory``, when
            present, is resized on the memory's device).
        num_slots (int): Number of slots. Defaults to 64.
        seed (int, optional): None: zero features, every slot its own label.
            An int: random unit features drawn with this seed and clusters
            of two slots (``slot // 2``), as after a first clustering.
    """
    memory = getattr(getattr(model, 'roi_head', None), 'memory', None)
    if memory is None:
        return
    memory.resize_(num_slots)
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
        device = memory.features.device
        slots = torch.arange(num_slots, device=device)
        memory.init_features(
            slots,
            torch.randn(num_slots, memory.feat_dim, generator=gen).to(device))
        memory.set_labels(slots // 2)
