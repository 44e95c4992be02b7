# Copyright (c) OpenMMLab. All rights reserved.
"""Distributed training on machines without CUDA (gloo)."""
import os

import torch
import torch.distributed as torch_dist


def init_cpu_distributed(launcher: str) -> bool:
    """Start the process group with gloo where there is no CUDA device.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` (it fails
    on CPU-only torch builds) and mmengine's default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]`` (DDP refuses it for CPU modules). When the
    launcher is ``'pytorch'`` (torchrun: ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT`` set) and CUDA is unavailable, this
    starts the process group with the gloo backend, so that the runner
    finds it initialised and skips ``init_dist``; mmps's runtime config
    wraps the model without ``device_ids``.

    Args:
        launcher (str): The ``--launcher`` of the tools.

    Returns:
        bool: Whether this call started the process group.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} on a machine without CUDA: only '
            '"pytorch" (torchrun, tools/dist_train.sh) is supported on CPU')
    if torch_dist.is_initialized():
        return False
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch needs the torchrun variables '
                           f'{missing}: start with torchrun or '
                           'tools/dist_train.sh')
    torch_dist.init_process_group(backend='gloo')
    return True
