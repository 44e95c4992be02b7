# Copyright (c) OpenMMLab. All rights reserved.
"""Person search in the browser: pick a person, see where else they appear.

A Gradio page over :class:`mmps.apis.PersonSearcher`, the web twin of
``tools/demo/search_demo.py``. Install the optional ``demo`` extra first
(``pip install -e .[demo]``), then::

    python tools/demo/web_demo.py configs/dicl_synthetic_prw.py \\
        work_dirs/demo/epoch_50.pth \\
        --gallery data/synthetic/prw/frames \\
        --index work_dirs/demo/web_demo_index.npz

and open the printed address (``http://127.0.0.1:7860`` by default).

The page:

- **Gallery**: the ``--gallery`` images (a folder, a glob pattern or a
  file), indexed when the page first opens, with a progress bar, and cached
  to ``--index FILE`` (reused when the file holds the same images of the
  same model; an index of another model is refused, and can be rebuilt
  from the page); or images uploaded in the page (an ``.npz`` index of this
  model may be uploaded as well).
- **Query**: click a gallery thumbnail or upload an image. Its detections
  are drawn numbered; click one to search it, or type a box
  ``x1 y1 x2 y2`` (image pixels) and press *Search this box*.
- **Result**: the query crop, then the top-k hits as pictures with their
  box drawn, and a table of rank, similarity, detection score and box.
  Sliders set k and the detection threshold (applied to the query's
  detections and to the hits). The query's own image is left out of the
  hits unless the box under the sliders is unticked.

Bad input (a file that is not an image, an image without detections, a
box outside the image, an index of another model) gets a message in the
page. Nothing is fetched from the network: Gradio's analytics are off, no
share link is made, and the page uses only Gradio's bundled assets.
"""
import argparse
import functools
import hashlib
import logging
import os
import os.path as osp
import sys
import threading
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# no usage statistics or version checks: set before gradio is imported
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import cv2  # noqa: E402
import mmcv  # noqa: E402
import numpy as np  # noqa: E402

try:
    import gradio as gr
except ImportError:  # the optional `demo` extra
    gr = None

from mmps.apis import PersonSearcher, list_gallery_images  # noqa: E402
from mmps.structures import GalleryIndex, GalleryIndexError  # noqa: E402

GRADIO_MISSING = ('the web demo needs Gradio, an optional dependency of '
                  'mmps: pip install -e .[demo]')

#: Name of the index of the ``--gallery`` images among the page's indices.
STARTUP = 'startup'
#: Box colours (BGR): the detections of the query image, the picked one,
#: the hits.
DET_COLOR = (0, 200, 255)
PICK_COLOR = (255, 128, 0)
HIT_COLOR = (0, 180, 0)
#: At most this many gallery thumbnails are shown to pick a query from.
MAX_THUMBNAILS = 500

logger = logging.getLogger('mmps.web_demo')


class UserError(ValueError):
    """Bad input from the page: shown as a message, never as a traceback."""


# ---------------------------------------------------------------------- #
# drawing
# ---------------------------------------------------------------------- #
def read_image(path: str) -> np.ndarray:
    """A BGR image from a file, or :class:`UserError` if it is none."""
    img = None
    try:
        img = mmcv.imread(path)
    except Exception:  # unreadable or not an image: same message
        img = None
    if img is None or img.ndim != 3 or img.size == 0:
        raise UserError(f'{osp.basename(path)} is not an image that can be '
                        'read (jpg, png, bmp, tif, webp)')
    return img


def display_scale(shape: Sequence[int], min_height: int) -> float:
    """The factor drawings of an image of ``shape`` are enlarged by."""
    return max(1.0, float(min_height) / max(int(shape[0]), 1))


def _label(img: np.ndarray, text: str, x: int, y: int, color: tuple,
           font_scale: float) -> None:
    """Text on a filled box whose bottom-left corner is at ``(x, y)``."""
    thickness = max(1, int(round(font_scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                     font_scale, thickness)
    y = max(y, th + base + 2)
    x = int(np.clip(x, 0, max(0, img.shape[1] - tw - 4)))
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    cv2.putText(img, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX,
                font_scale, (0, 0, 0), thickness, cv2.LINE_AA)


def draw_detections(img: np.ndarray,
                    boxes: np.ndarray,
                    scale: float = 1.0,
                    picked: Optional[int] = None,
                    extra_box: Optional[Sequence[float]] = None
                    ) -> np.ndarray:
    """The query image with its detections numbered 1, 2, ... (RGB).

    Args:
        img (np.ndarray): BGR image.
        boxes (np.ndarray): (N, 4) ``x1, y1, x2, y2`` in its pixels.
        scale (float): Enlargement of the drawing (small images).
        picked (int, optional): 0-based detection drawn as the query.
        extra_box (Sequence[float], optional): A typed query box, drawn in
            the query colour without a number.

    Returns:
        np.ndarray: The drawing, uint8 RGB, ``scale`` times the image.
    """
    h, w = img.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    canvas = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR) \
        if scale != 1 else img.copy()
    font_scale = float(np.clip(canvas.shape[0] / 800, 0.45, 1.0))
    order = list(range(len(boxes)))
    if picked is not None:  # the picked box on top
        order = [i for i in order if i != picked] + [picked]
    for i in order:
        color = PICK_COLOR if i == picked else DET_COLOR
        x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in boxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color,
                      3 if i == picked else 2)
        _label(canvas, str(i + 1), x1, y1, color, font_scale)
    if extra_box is not None:
        x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in extra_box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), PICK_COLOR, 3)
    return mmcv.bgr2rgb(canvas)


def draw_hit(img: np.ndarray, box: Sequence[float], min_height: int,
             text: str) -> np.ndarray:
    """A gallery image with a hit box and its label (RGB)."""
    scale = display_scale(img.shape, min_height)
    canvas = draw_detections(img, np.zeros((0, 4)), scale)
    canvas = mmcv.rgb2bgr(canvas)
    x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in box)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), HIT_COLOR, 3)
    font_scale = float(np.clip(canvas.shape[0] / 800, 0.45, 1.0))
    _label(canvas, text, x1, y1, HIT_COLOR, font_scale)
    return mmcv.bgr2rgb(canvas)


def crop_query(img: np.ndarray, box: Sequence[float],
               height: int = 256) -> np.ndarray:
    """The query person, resized to ``height`` (RGB)."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box
    x1, y1 = int(np.clip(np.floor(x1), 0, w - 1)), int(
        np.clip(np.floor(y1), 0, h - 1))
    x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, w)), int(
        np.clip(np.ceil(y2), y1 + 1, h))
    crop = img[y1:y2, x1:x2]
    scale = height / crop.shape[0]
    size = (max(1, int(round(crop.shape[1] * scale))), height)
    return mmcv.bgr2rgb(cv2.resize(crop, size))


# ---------------------------------------------------------------------- #
# indices
# ---------------------------------------------------------------------- #
def merge_indices(parts: Sequence[GalleryIndex]) -> GalleryIndex:
    """One index of the images of several indices of the same model, in
    order."""
    if not parts:
        raise ValueError('no index to merge')
    offsets = np.cumsum([0] + [p.num_images for p in parts[:-1]])
    return GalleryIndex(
        img_paths=[path for p in parts for path in p.img_paths],
        det_img=np.concatenate(
            [p.det_img + off for p, off in zip(parts, offsets)]),
        boxes=np.concatenate([p.boxes for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        feats=np.concatenate([p.feats for p in parts]),
        model_id=parts[0].model_id,
        meta=parts[0].meta)


def build_index(searcher: PersonSearcher,
                paths: Sequence[str],
                batch_size: int = 1,
                callback: Optional[Callable[[int, int], None]] = None
                ) -> GalleryIndex:
    """:meth:`PersonSearcher.build_index`, telling ``callback(done, total)``
    after each batch of images (for a progress bar)."""
    paths = list(paths)
    batch_size = max(1, int(batch_size))
    parts = []
    for start in range(0, len(paths), batch_size):
        parts.append(
            searcher.build_index(
                paths[start:start + batch_size],
                batch_size=batch_size,
                progress=False))
        if callback is not None:
            callback(min(start + batch_size, len(paths)), len(paths))
    return merge_indices(parts)


def parse_box(text: str) -> List[float]:
    """Four numbers ``x1 y1 x2 y2`` (spaces or commas between them)."""
    fields = (text or '').replace(',', ' ').replace('[', ' ').replace(
        ']', ' ').replace('(', ' ').replace(')', ' ').split()
    try:
        box = [float(v) for v in fields]
    except ValueError:
        box = []
    if len(box) != 4 or not np.isfinite(box).all():
        raise UserError(f'type the query box as four numbers x1 y1 x2 y2 '
                        f'(image pixels), got {text!r}')
    return box


def box_text(box: Sequence[float]) -> str:
    return ' '.join(f'{float(v):.1f}' for v in box)


class SearchApp:
    """What the page does, without the page: the model, the gallery
    indices and the steps of a search.

    Each step takes and returns plain values and raises :class:`UserError`
    on bad input, so that the page (:func:`build_page`) shows messages and
    the steps are testable without a browser.

    Args:
        searcher (PersonSearcher): The model.
        gallery (str, optional): The start gallery: a folder, a glob pattern
            or a file.
        index_file (str, optional): Where the start gallery's index is
            cached: loaded if it exists (same model and images), else
            written once built.
        det_thresh (float): Default detection threshold. Defaults to 0.5.
        topk (int): Default number of hits. Defaults to 8.
        batch_size (int): Gallery images per forward pass. Defaults to 1.
        min_height (int): Small images are drawn enlarged to this height.
            Defaults to 480.
    """

    max_uploaded = 4

    def __init__(self,
                 searcher: PersonSearcher,
                 gallery: Optional[str] = None,
                 index_file: Optional[str] = None,
                 det_thresh: float = 0.5,
                 topk: int = 8,
                 batch_size: int = 1,
                 min_height: int = 480) -> None:
        self.searcher = searcher
        self.gallery = gallery
        self.index_file = index_file
        self.det_thresh = float(det_thresh)
        self.topk = int(topk)
        self.batch_size = int(batch_size)
        self.min_height = int(min_height)
        self.lock = threading.RLock()
        self.indices: Dict[str, GalleryIndex] = OrderedDict()
        self.gallery_paths: Optional[List[str]] = None
        if gallery is not None:
            # a missing gallery is the command line's error, not the page's
            self.gallery_paths = [
                osp.abspath(p) for p in list_gallery_images(gallery)
            ]

    # ------------------------------------------------------------------ #
    # the gallery
    # ------------------------------------------------------------------ #
    def image_dirs(self) -> List[str]:
        """Folders of the start gallery's images (served to the page)."""
        paths = list(self.gallery_paths or [])
        if self.index_file and osp.isfile(self.index_file):
            try:
                paths += GalleryIndex.load(self.index_file).img_paths
            except (GalleryIndexError, FileNotFoundError):
                pass
        return sorted({osp.dirname(osp.abspath(p)) for p in paths})

    def startup_index(self,
                      callback: Optional[Callable[[int, int], None]] = None,
                      rebuild: bool = False) -> Tuple[Optional[str], str]:
        """The start gallery's index: cached, loaded or built.

        Args:
            callback (callable, optional): ``callback(done, total)`` while
                building.
            rebuild (bool): Build it again from ``--gallery`` even when the
                ``--index`` file exists (and overwrite the file).

        Returns:
            tuple[str | None, str]: The index key (None: no start gallery)
            and a message on it.

        Raises:
            UserError: The index file is unusable (another model, other
                images, not an index).
        """
        with self.lock:
            if STARTUP in self.indices and not rebuild:
                return STARTUP, self.describe(STARTUP)
            if self.gallery_paths is None and not (
                    self.index_file and osp.isfile(self.index_file)):
                return None, ('No gallery given at start: upload gallery '
                              'images below.')
            index = None
            if self.index_file and osp.isfile(self.index_file) and (
                    not rebuild or self.gallery_paths is None):
                index = self._load_startup_file()
            if index is None:
                index = build_index(self.searcher, self.gallery_paths,
                                    self.batch_size, callback)
                if self.index_file:
                    index.save(self.index_file)
            self.indices[STARTUP] = index
            self.indices.move_to_end(STARTUP, last=False)
            return STARTUP, self.describe(STARTUP)

    def _load_startup_file(self) -> GalleryIndex:
        fix = (' Press "Rebuild the gallery index" to index the --gallery '
               f'images again (overwrites {self.index_file}).'
               if self.gallery_paths is not None else '')
        try:
            index = self.searcher.load_index(self.index_file)
        except (GalleryIndexError, FileNotFoundError) as e:
            raise UserError(f'The index {self.index_file} is refused: {e}.'
                            f'{fix}') from e
        if self.gallery_paths is not None and \
                index.img_paths != self.gallery_paths:
            raise UserError(
                f'The index {self.index_file} holds {index.num_images} '
                f'images that are not the {len(self.gallery_paths)} of '
                f'--gallery {self.gallery}.{fix}')
        missing = [p for p in index.img_paths if not osp.isfile(p)]
        if missing:
            raise UserError(f'The index {self.index_file} lists '
                            f'{len(missing)} images that are not on this '
                            f'machine, e.g. {missing[0]}.{fix}')
        return index

    def upload_index(self,
                     files: Sequence[str],
                     callback: Optional[Callable[[int, int], None]] = None
                     ) -> Tuple[str, str]:
        """Index uploaded gallery images (or load an uploaded index).

        Args:
            files (Sequence[str]): Uploaded files: images, or one ``.npz``
                index made by this model.
            callback (callable, optional): ``callback(done, total)``.

        Returns:
            tuple[str, str]: The key of the new index and a message
            (naming the files that were skipped as not images).
        """
        files = [f for f in (files or []) if f]
        if not files:
            raise UserError('Upload gallery images (or a gallery index .npz '
                            'of this model) first.')
        npz = [f for f in files if f.lower().endswith('.npz')]
        if npz:
            if len(files) > 1:
                raise UserError('Upload either images or one index .npz, '
                                'not both.')
            return self._upload_npz(npz[0])
        images, skipped = [], []
        for path in files:
            try:
                read_image(path)
                images.append(path)
            except UserError:
                skipped.append(osp.basename(path))
        if not images:
            raise UserError('None of the uploaded files is an image that '
                            f'can be read: {", ".join(skipped)}.')
        key = 'upload-' + hashlib.sha1('\n'.join(images).encode()).hexdigest()
        with self.lock:
            if key not in self.indices:
                self.indices[key] = build_index(self.searcher, images,
                                                self.batch_size, callback)
                self._forget_old_uploads()
        msg = self.describe(key)
        if skipped:
            msg += f' Skipped (not images): {", ".join(skipped)}.'
        return key, msg

    def _upload_npz(self, path: str) -> Tuple[str, str]:
        try:
            index = self.searcher.load_index(path)
        except (GalleryIndexError, FileNotFoundError) as e:
            raise UserError(f'The uploaded index is refused: {e}.') from e
        missing = [p for p in index.img_paths if not osp.isfile(p)]
        if missing:
            raise UserError(f'The uploaded index lists {len(missing)} images '
                            f'that are not on this machine, e.g. '
                            f'{missing[0]}.')
        key = 'upload-' + hashlib.sha1(
            '\n'.join(index.img_paths).encode()).hexdigest()
        with self.lock:
            self.indices[key] = index
            self._forget_old_uploads()
        return key, self.describe(key)

    def _forget_old_uploads(self) -> None:
        uploads = [k for k in self.indices if k != STARTUP]
        for key in uploads[:-self.max_uploaded]:
            del self.indices[key]

    def index(self, key: Optional[str]) -> GalleryIndex:
        if not key or key not in self.indices:
            raise UserError('No gallery yet: give --gallery at start or '
                            'upload gallery images.')
        return self.indices[key]

    def describe(self, key: str) -> str:
        index = self.indices[key]
        what = 'the --gallery images' if key == STARTUP else \
            'the uploaded images'
        return (f'Gallery: {index.num_images} images of {what}, '
                f'{len(index)} detections.')

    def thumbnails(self, key: Optional[str]) -> List[Tuple[str, str]]:
        """``(image path, name)`` of the gallery images to pick from."""
        if not key or key not in self.indices:
            return []
        paths = self.indices[key].img_paths[:MAX_THUMBNAILS]
        return [(p, osp.basename(p)) for p in paths]

    # ------------------------------------------------------------------ #
    # the query
    # ------------------------------------------------------------------ #
    def detect(self, path: str, det_thresh: float) -> dict:
        """The detections of a query image scoring at least ``det_thresh``.

        Returns:
            dict: ``path``, ``shape`` (h, w), ``boxes`` (N, 4) and
            ``scores`` (N, ), in the model's order (numbered from 1).

        Raises:
            UserError: Not an image.
        """
        img = read_image(path)
        with self.lock:
            pred = self.searcher([path])['predictions'][0]
        boxes = np.asarray(pred['bboxes'], np.float32).reshape(-1, 4)
        scores = np.asarray(pred['scores'], np.float32).reshape(-1)
        keep = scores >= float(det_thresh)
        return dict(
            path=path,
            shape=img.shape[:2],
            boxes=boxes[keep],
            scores=scores[keep])

    def draw_query(self,
                   query: dict,
                   picked: Optional[int] = None,
                   extra_box: Optional[Sequence[float]] = None
                   ) -> np.ndarray:
        img = read_image(query['path'])
        return draw_detections(img, query['boxes'],
                               display_scale(img.shape, self.min_height),
                               picked, extra_box)

    def detections_table(self, query: dict) -> str:
        """The query's detections as a Markdown table."""
        if not len(query['boxes']):
            return ''
        rows = ['| # | detection score | box (x1 y1 x2 y2) |',
                '|---:|---:|:---|']
        for i, (box, score) in enumerate(zip(query['boxes'],
                                             query['scores'])):
            rows.append(f'| {i + 1} | {score:.3f} | {box_text(box)} |')
        return '\n'.join(rows)

    def pick(self, query: dict, x: float, y: float) -> int:
        """The detection under a click at image pixel ``(x, y)``: the
        smallest box containing the point (0-based).

        Raises:
            UserError: No detection contains the point.
        """
        boxes = query['boxes']
        inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (
            boxes[:, 1] <= y) & (y <= boxes[:, 3])
        if not inside.any():
            raise UserError(
                f'No detection at ({x:.0f}, {y:.0f}): click inside a '
                'numbered box, or type a box and press "Search this box".')
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        cand = np.flatnonzero(inside)
        return int(cand[np.argmin(areas[cand])])  # the first of equals

    # ------------------------------------------------------------------ #
    # the search
    # ------------------------------------------------------------------ #
    def search(self,
               query: dict,
               box: Sequence[float],
               key: Optional[str],
               topk: int,
               det_thresh: float,
               exclude_own: bool = True) -> dict:
        """Embed the query box and rank the gallery.

        Returns:
            dict: ``hits`` (list of SearchHit), ``crop`` (RGB query crop),
            ``pictures`` (list of (RGB image, caption)) and ``table``
            (Markdown).

        Raises:
            UserError: No gallery, or a box that is not inside the image.
        """
        index = self.index(key)
        h, w = query['shape']
        try:
            box = PersonSearcher._check_box(box, (h, w),
                                            osp.basename(query['path']))
        except ValueError as e:
            raise UserError(str(e)) from e
        with self.lock:
            feat = self.searcher.embed_query(query['path'], box)
        exclude = [query['path']] if exclude_own else None
        hits = self.searcher.search(
            index,
            feat,
            topk=max(1, int(topk)),
            det_thresh=float(det_thresh),
            exclude_imgs=exclude)
        img = read_image(query['path'])
        pictures = []
        for hit in hits:
            caption = (f'#{hit.rank}  sim {hit.similarity:.4f}  '
                       f'det {hit.score:.2f}')
            pictures.append((draw_hit(
                read_image(hit.img_path), hit.box, self.min_height,
                f'#{hit.rank}'), caption))
        return dict(
            box=box,
            hits=hits,
            crop=crop_query(img, box),
            pictures=pictures,
            table=self.hits_table(hits, det_thresh))

    @staticmethod
    def hits_table(hits, det_thresh: float) -> str:
        if not hits:
            return (f'No gallery detection scores at least {det_thresh:.2f}: '
                    'lower the detection threshold.')
        rows = ['| rank | similarity | detection score | image | box |',
                '|---:|---:|---:|:---|:---|']
        for hit in hits:
            rows.append(f'| {hit.rank} | {hit.similarity:.4f} | '
                        f'{hit.score:.3f} | {osp.basename(hit.img_path)} | '
                        f'{box_text(hit.box)} |')
        return '\n'.join(rows)


# ---------------------------------------------------------------------- #
# the page
# ---------------------------------------------------------------------- #
CSS = """
#hits-table table { font-variant-numeric: tabular-nums; }
"""


def build_page(app: SearchApp, title: str = 'MMPS person search demo'):
    """The Gradio Blocks of the page.

    Args:
        app (SearchApp): What the page does.
        title (str): Title of the page.

    Returns:
        gr.Blocks: The page (``launch`` it).
    """
    if gr is None:
        raise ImportError(GRADIO_MISSING)

    def warn(msg: str) -> str:
        gr.Warning(msg)
        return f'**{msg}**'

    def guarded(fn: Callable, num_outputs: int) -> Callable:
        """``fn`` whose last output is a status message: bad input or an
        unexpected error leaves the other outputs as they are and says what
        went wrong there (the traceback goes to the server's log only)."""

        @functools.wraps(fn)  # the signature tells Gradio what to pass
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as e:
                msg = warn(str(e))
            except (GalleryIndexError, FileNotFoundError, ValueError) as e:
                msg = warn(str(e))
            except Exception as e:  # never a traceback in the page
                logger.exception('web demo: unexpected error')
                msg = warn(f'Unexpected error ({type(e).__name__}: {e}); '
                           'see the server log.')
            return tuple([gr.skip()] * (num_outputs - 1) + [msg])

        return wrapper

    def progress_callback(progress, desc: str) -> Callable:
        def callback(done: int, total: int) -> None:
            progress((done, total), desc=desc, unit='images')

        return callback

    with gr.Blocks(title=title, analytics_enabled=False) as page:
        index_key = gr.State(None)
        query_state = gr.State(None)
        box_state = gr.State(None)

        gr.Markdown(f'# {title}\n{app.searcher.describe()}. Pick a person '
                    'in a query image and see where else they appear in the '
                    'gallery.')
        with gr.Row():
            with gr.Column(scale=1):
                gr.Markdown('## 1. Gallery')
                gallery_status = gr.Markdown(
                    'Indexing the gallery...', elem_id='gallery-status')
                thumbs = gr.Gallery(
                    label='Gallery images: click one to use it as the query',
                    elem_id='gallery-thumbs',
                    columns=4,
                    height=320,
                    allow_preview=False,
                    object_fit='contain',
                    interactive=False)
                uploads = gr.File(
                    label='Or upload gallery images (or an index .npz of '
                    'this model)',
                    file_count='multiple',
                    file_types=['image', '.npz'],
                    height=140,
                    elem_id='gallery-upload')
                with gr.Row():
                    index_button = gr.Button(
                        'Index the uploaded images', elem_id='index-button')
                    rebuild_button = gr.Button(
                        'Rebuild the gallery index',
                        elem_id='rebuild-button',
                        visible=app.gallery_paths is not None)
            with gr.Column(scale=2):
                gr.Markdown('## 2. Query')
                query_file = gr.File(
                    label='Upload a query image (or click a gallery image)',
                    file_types=['image'],
                    height=140,
                    elem_id='query-upload')
                query_image = gr.Image(
                    label='Detections: click a person to search for them',
                    elem_id='query-image',
                    type='numpy',
                    format='png',
                    interactive=False,
                    height=480,
                    buttons=[])
                with gr.Row():
                    box_input = gr.Textbox(
                        label='Query box x1 y1 x2 y2 (image pixels)',
                        placeholder='e.g. 40 20 80 110',
                        elem_id='box-input',
                        scale=3)
                    box_button = gr.Button(
                        'Search this box', elem_id='box-button', scale=1)
                with gr.Accordion('Detections of the query image',
                                  open=False):
                    detections = gr.Markdown(elem_id='detections-table')
        with gr.Row():
            topk = gr.Slider(
                1, 50, value=app.topk, step=1, label='Top-k hits',
                elem_id='topk')
            det_thresh = gr.Slider(
                0.0, 1.0, value=app.det_thresh, step=0.01,
                label='Detection threshold', elem_id='det-thresh')
            exclude_own = gr.Checkbox(
                value=True, label="Leave out the query's own image",
                elem_id='exclude-own')
        status = gr.Markdown(
            'Click a gallery image or upload a query image.',
            elem_id='status')
        gr.Markdown('## 3. Result')
        with gr.Row():
            crop = gr.Image(
                label='Query', elem_id='query-crop', type='numpy',
                format='png', interactive=False, height=300, scale=1,
                buttons=[])
            hit_gallery = gr.Gallery(
                label='Top-k hits (rank, similarity, detection score)',
                elem_id='hits',
                columns=5,
                height=300,
                object_fit='contain',
                format='png',
                interactive=False,
                scale=4)
        hits_table = gr.Markdown(elem_id='hits-table')

        # -------------------------------------------------------------- #
        # gallery events
        # -------------------------------------------------------------- #
        def on_load(progress=gr.Progress()):
            key, msg = app.startup_index(
                progress_callback(progress, 'Indexing the gallery'))
            return key, app.thumbnails(key), msg

        def on_rebuild(progress=gr.Progress()):
            key, msg = app.startup_index(
                progress_callback(progress, 'Rebuilding the gallery index'),
                rebuild=True)
            return key, app.thumbnails(key), msg

        def on_upload(files, progress=gr.Progress()):
            key, msg = app.upload_index(
                files, progress_callback(progress, 'Indexing the uploads'))
            return key, app.thumbnails(key), msg

        gallery_outputs = [index_key, thumbs, gallery_status]
        page.load(guarded(on_load, 3), outputs=gallery_outputs)
        rebuild_button.click(guarded(on_rebuild, 3), outputs=gallery_outputs)
        index_button.click(
            guarded(on_upload, 3), inputs=uploads, outputs=gallery_outputs)

        # -------------------------------------------------------------- #
        # query events
        # -------------------------------------------------------------- #
        def show_query(path: str, thresh: float):
            query = app.detect(path, thresh)
            n = len(query['boxes'])
            if n:
                msg = (f'{osp.basename(path)}: {n} detections (score >= '
                       f'{thresh:.2f}). Click one to search for that person.')
            else:
                msg = warn(
                    f'{osp.basename(path)}: no person detected with a score '
                    f'of at least {thresh:.2f}. Lower the detection '
                    'threshold, or type a box and press "Search this box".')
            return (query, None, app.draw_query(query),
                    app.detections_table(query), msg)

        def on_pick_gallery(key, thresh, evt: gr.SelectData):
            index = app.index(key)
            return show_query(index.img_paths[int(evt.index)], thresh)

        def on_query_upload(path, thresh):
            if not path:
                raise UserError('Upload a query image.')
            return show_query(path, thresh)

        query_outputs = [
            query_state, box_state, query_image, detections, status
        ]
        thumbs.select(
            guarded(on_pick_gallery, 5),
            inputs=[index_key, det_thresh],
            outputs=query_outputs)
        query_file.upload(
            guarded(on_query_upload, 5),
            inputs=[query_file, det_thresh],
            outputs=query_outputs)

        # -------------------------------------------------------------- #
        # search events
        # -------------------------------------------------------------- #
        def run_search(query, box, key, k, thresh, exclude, picked=None,
                       how=''):
            result = app.search(query, box, key, k, thresh, exclude)
            hits = result['hits']
            drawn = app.draw_query(
                query, picked, result['box'] if picked is None else None)
            msg = (f'Query {how}box {box_text(result["box"])} of '
                   f'{osp.basename(query["path"])}: {len(hits)} hits '
                   f'(top-{int(k)}, detection score >= {thresh:.2f}).')
            if hits:
                msg += (f' Best: {osp.basename(hits[0].img_path)}, '
                        f'similarity {hits[0].similarity:.4f}.')
            return (result['box'], drawn, box_text(result['box']),
                    result['crop'], result['pictures'], result['table'], msg)

        def need_query(query):
            if query is None:
                raise UserError('Pick a query image first: click a gallery '
                                'image or upload one.')

        def on_click(query, key, k, thresh, exclude, evt: gr.SelectData):
            need_query(query)
            if evt.index is None:
                raise UserError('Click inside the image.')
            scale = display_scale(query['shape'], app.min_height)
            x, y = (float(v) / scale for v in evt.index[:2])
            picked = app.pick(query, x, y)
            return run_search(query, query['boxes'][picked].tolist(), key,
                              k, thresh, exclude, picked,
                              f'detection #{picked + 1}, ')

        def on_box(query, text, key, k, thresh, exclude):
            need_query(query)
            return run_search(query, parse_box(text), key, k, thresh,
                              exclude, how='typed ')

        def on_settings(query, box, key, k, thresh, exclude):
            if query is None or box is None:
                return tuple([gr.skip()] * 7)
            return run_search(query, box, key, k, thresh, exclude,
                              how='')

        search_outputs = [
            box_state, query_image, box_input, crop, hit_gallery,
            hits_table, status
        ]
        settings = [topk, det_thresh, exclude_own]
        query_image.select(
            guarded(on_click, 7),
            inputs=[query_state, index_key] + settings,
            outputs=search_outputs)
        for event in (box_button.click, box_input.submit):
            event(
                guarded(on_box, 7),
                inputs=[query_state, box_input, index_key] + settings,
                outputs=search_outputs)
        for event in (topk.release, det_thresh.release, exclude_own.change):
            event(
                guarded(on_settings, 7),
                inputs=[query_state, box_state, index_key] + settings,
                outputs=search_outputs)
    return page


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Person search web demo (Gradio): pick a person in a '
        'query image and see the most similar people of a gallery')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--gallery',
        help='gallery images at start: a folder, a glob pattern (quote it) '
        'or a file; images can also be uploaded in the page')
    parser.add_argument(
        '--index',
        help='gallery index .npz: loaded if it exists (same model and '
        'images), else built from --gallery and saved there')
    parser.add_argument(
        '--host', default='127.0.0.1',
        help='address to serve on (default 127.0.0.1: this machine only)')
    parser.add_argument(
        '--port', type=int, default=7860, help='port (default 7860)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1')
    parser.add_argument(
        '--det-thresh', type=float, default=0.5,
        help='initial detection threshold of the page (default 0.5)')
    parser.add_argument(
        '--topk', type=int, default=8, help='initial number of hits')
    parser.add_argument(
        '--batch-size', type=int, default=1,
        help='gallery images per forward pass')
    args = parser.parse_args(argv)
    if not 0.0 <= args.det_thresh <= 1.0:
        parser.error(f'--det-thresh must be in [0, 1], got {args.det_thresh}')
    if not 1 <= args.topk <= 50:
        parser.error(f'--topk must be in [1, 50], got {args.topk}')
    return args


def main(argv=None):
    args = parse_args(argv)
    if gr is None:
        raise SystemExit(f'error: {GRADIO_MISSING}')
    for path, what in ((args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} file not found: {path}')
    if args.index and not osp.isdir(osp.dirname(osp.abspath(args.index))):
        raise SystemExit(f'error: the folder of --index {args.index} does '
                         'not exist')
    try:
        searcher = PersonSearcher(
            args.config, args.checkpoint, device=args.device,
            det_thresh=args.det_thresh, show_progress=False)
        app = SearchApp(
            searcher,
            gallery=args.gallery,
            index_file=args.index,
            det_thresh=args.det_thresh,
            topk=args.topk,
            batch_size=args.batch_size)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    page = build_page(app)
    page.queue(default_concurrency_limit=1)
    _, url, _ = page.launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,
        ssr_mode=False,
        mcp_server=False,
        show_error=False,
        quiet=True,
        css=CSS,
        footer_links=[],
        allowed_paths=app.image_dirs())
    print(f'mmps web demo: open {url} in a browser (Ctrl+C stops it)',
          flush=True)
    try:
        page.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        page.close()


if __name__ == '__main__':
    sys.exit(main())
