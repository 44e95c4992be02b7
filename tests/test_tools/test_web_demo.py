# Copyright (c) OpenMMLab. All rights reserved.
"""tools/demo/web_demo.py: the page's steps without a browser, then the page
itself in a headless Chromium driven by Selenium.

The browser test starts the app on 127.0.0.1 with a 12-frame synthetic PRW
set and a seeded, untrained tiny model, picks a gallery image as the query,
clicks one of its detections and checks the ranked hits against
:class:`mmps.apis.PersonSearcher`. It saves a screenshot of the result page
as ``web_demo.png`` in its tmp folder, and in ``$MMPS_SCREENSHOT_DIR`` when
that is set. It needs the ``demo`` and ``browser`` extras
(``pip install -e .[demo,browser]``) and Debian's ``chromium`` and
``chromium-driver`` (``MMPS_CHROMIUM`` / ``MMPS_CHROMEDRIVER`` name other
binaries); without them it is skipped, saying which is missing, unless
``MMPS_REQUIRE_BROWSER`` is set (``.ci/run`` sets it): then it fails.
"""
import importlib.util
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from mmps.apis import PersonSearcher
from mmps.registry import MODELS
from mmps.utils import register_all_modules
from tests.test_apis.utils import make_tiny_prw, tiny_search_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'demo', 'web_demo.py')
#: The seeded untrained tiny model scores its detections about 0.50.
DET_THRESH = 0.3
TOPK = 5


def load_tool():
    spec = importlib.util.spec_from_file_location('web_demo', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_model(cfg, path, seed):
    """A checkpoint of the model as initialised with ``seed``."""
    register_all_modules()
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('web_demo')
    root = make_tiny_prw(str(tmp / 'prw'))
    cfg = tiny_search_config(root)
    config = str(tmp / 'tiny_dicl.py')
    cfg.dump(config)
    checkpoint = str(tmp / 'tiny.pth')
    save_model(cfg, checkpoint, seed=0)
    frames = osp.join(root, 'frames')
    return dict(
        tmp=tmp, root=root, config=config, cfg=cfg, checkpoint=checkpoint,
        frames=frames,
        frame_paths=sorted(
            osp.join(frames, f) for f in os.listdir(frames)))


# ---------------------------------------------------------------------- #
# without a browser
# ---------------------------------------------------------------------- #
def test_import_mmps_needs_no_gradio():
    code = ('import sys, mmps, mmps.apis, mmps.visualization; '
            "assert 'gradio' not in sys.modules, 'mmps imported gradio'")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_missing_gradio_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'gradio', None)  # import fails
    tool = load_tool()
    assert tool.gr is None
    with pytest.raises(SystemExit) as e:
        tool.main(['config.py', 'weights.pth'])
    assert 'pip install -e .[demo]' in str(e.value)


def test_parse_box():
    tool = load_tool()
    assert tool.parse_box('1 2 3.5 4') == [1, 2, 3.5, 4]
    assert tool.parse_box('[1, 2, 3, 4]') == [1, 2, 3, 4]
    for bad in ('', '1 2 3', 'a b c d', '1 2 3 nan'):
        with pytest.raises(tool.UserError, match='four numbers'):
            tool.parse_box(bad)


@pytest.mark.slow
def test_app_steps_and_bad_input(setup, tmp_path):
    """The page's steps: the index cache, query detections, a click, the
    search, and a message (UserError) for each kind of bad input."""
    tool = load_tool()
    gallery = str(tmp_path / 'gallery')
    os.makedirs(gallery)
    for path in setup['frame_paths'][:3]:
        shutil.copy(path, gallery)
    index_file = str(tmp_path / 'index.npz')
    searcher = PersonSearcher(setup['config'], setup['checkpoint'],
                              show_progress=False)
    app = tool.SearchApp(searcher, gallery=gallery, index_file=index_file,
                         det_thresh=DET_THRESH, topk=TOPK)
    steps = []
    key, msg = app.startup_index(lambda done, total: steps.append(
        (done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert 'Gallery: 3 images' in msg and osp.isfile(index_file)
    index = app.index(key)
    api_index = searcher.build_index(gallery, progress=False)
    assert index.img_paths == api_index.img_paths
    np.testing.assert_allclose(index.feats, api_index.feats, atol=1e-6)

    # the cache is reused: a new app builds nothing
    app2 = tool.SearchApp(searcher, gallery=gallery, index_file=index_file)
    build = tool.build_index
    tool.build_index = None  # would raise if called
    try:
        assert app2.startup_index()[0] == tool.STARTUP
    finally:
        tool.build_index = build

    # a query: its detections, a click inside one, the search
    query_path = index.img_paths[0]
    query = app.detect(query_path, DET_THRESH)
    assert len(query['boxes']) > 0
    box = query['boxes'][0]
    j = app.pick(query, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    assert 0 <= j < len(query['boxes'])
    result = app.search(query, query['boxes'][j].tolist(), key, TOPK,
                        DET_THRESH)
    feat = searcher.embed_query(query_path, query['boxes'][j].tolist())
    hits = searcher.search(api_index, feat, topk=TOPK, det_thresh=DET_THRESH,
                           exclude_imgs=[query_path])
    assert [h.similarity for h in result['hits']] == pytest.approx(
        [h.similarity for h in hits], abs=1e-5)
    assert len(result['pictures']) == len(hits) == TOPK
    assert f'{hits[0].similarity:.4f}' in result['table']

    # bad input: a message each
    h, w = query['shape']
    with pytest.raises(tool.UserError, match='not inside the image'):
        app.search(query, [0, 0, w + 50, h + 50], key, TOPK, DET_THRESH)
    with pytest.raises(tool.UserError, match='No detection at'):
        app.pick(dict(query, boxes=np.zeros((0, 4), np.float32)), 1, 1)
    assert len(app.detect(query_path, 1.01)['boxes']) == 0
    text = str(tmp_path / 'notes.jpg')
    with open(text, 'w') as f:
        f.write('not an image')
    with pytest.raises(tool.UserError, match='not an image'):
        app.detect(text, DET_THRESH)
    with pytest.raises(tool.UserError, match='None of the uploaded files'):
        app.upload_index([text])
    with pytest.raises(tool.UserError, match='No gallery'):
        app.search(query, box.tolist(), None, TOPK, DET_THRESH)

    # an index of another model is refused, at start and as an upload
    other = str(tmp_path / 'other.pth')
    save_model(setup['cfg'], other, seed=1)
    other_searcher = PersonSearcher(setup['config'], other,
                                    show_progress=False)
    other_app = tool.SearchApp(other_searcher, gallery=gallery,
                               index_file=index_file)
    with pytest.raises(tool.UserError, match='another model'):
        other_app.startup_index()
    with pytest.raises(tool.UserError, match='another model'):
        other_app.upload_index([index_file])
    # ... and can be rebuilt from --gallery
    key, msg = other_app.startup_index(rebuild=True)
    assert other_searcher.load_index(index_file).num_images == 3


# ---------------------------------------------------------------------- #
# in a browser
# ---------------------------------------------------------------------- #
@pytest.fixture(scope='module')
def browser():
    """The Selenium module and the Chromium / chromedriver paths, or skip
    naming what is missing (before the model and the data are made)."""
    pytest.importorskip(
        'gradio', reason='the web demo needs gradio: pip install -e .[demo]')
    webdriver = pytest.importorskip(
        'selenium.webdriver',
        reason='the browser test needs selenium: pip install -e .[browser]')
    chromium = os.environ.get('MMPS_CHROMIUM') or shutil.which(
        'chromium') or shutil.which('chromium-browser')
    driver = os.environ.get('MMPS_CHROMEDRIVER') or shutil.which(
        'chromedriver')
    missing = [name for name, path in (('chromium', chromium),
                                       ('chromedriver', driver))
               if not path or not os.access(path, os.X_OK)]
    if missing:
        reason = (f'no {" or ".join(missing)} found: apt-get install -y '
                  'chromium chromium-driver (or set MMPS_CHROMIUM / '
                  'MMPS_CHROMEDRIVER)')
        if os.environ.get('MMPS_REQUIRE_BROWSER'):  # CI: the test must run
            pytest.fail(reason + ' (MMPS_REQUIRE_BROWSER is set)')
        pytest.skip(reason)
    return webdriver, chromium, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:
    """The web demo in a subprocess; its output collected in a thread."""

    def __init__(self, args, log_file):
        self.log = open(log_file, 'w')
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, SCRIPT] + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()

    def output(self) -> str:
        return ''.join(self.lines)

    def wait_url(self, timeout: float) -> str:
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(r'open (http://\S+) in a browser', self.output())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError('the web demo did not start:\n' +
                             self.output()[-4000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        self.log.close()


def wait_for(fn, timeout: float, what: str, server: Server = None):
    """Poll ``fn`` until it returns something true."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # the page is still rendering
            last = e
        time.sleep(0.25)
    log = '' if server is None else '\nserver log:\n' + server.output()[-3000:]
    raise AssertionError(f'timed out waiting for {what} ({last!r}){log}')


def table_rows(driver, by, elem_id):
    rows = driver.find_elements(by.CSS_SELECTOR,
                                f'#{elem_id} table tbody tr')
    return [[td.text.strip() for td in r.find_elements(by.TAG_NAME, 'td')]
            for r in rows]


def unique_point(boxes, j):
    """A point (image pixels) inside box ``j`` and no other box, if any."""
    x1, y1, x2, y2 = boxes[j]
    for fy in np.linspace(0.5, 0.1, 5):
        for fx in np.linspace(0.5, 0.1, 5):
            for px, py in ((x1 + fx * (x2 - x1), y1 + fy * (y2 - y1)),
                           (x2 - fx * (x2 - x1), y2 - fy * (y2 - y1))):
                inside = (boxes[:, 0] <= px) & (px <= boxes[:, 2]) & (
                    boxes[:, 1] <= py) & (py <= boxes[:, 3])
                if inside.sum() == 1:
                    return float(px), float(py)
    return None


@pytest.mark.slow
@pytest.mark.browser
def test_web_demo_in_browser(browser, setup, tmp_path):
    webdriver, chromium, chromedriver = browser
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    t0 = time.time()
    index_file = str(tmp_path / 'gallery_index.npz')
    server = Server([
        setup['config'], setup['checkpoint'], '--gallery', setup['frames'],
        '--index', index_file, '--host', '127.0.0.1', '--port',
        str(free_port()), '--det-thresh', str(DET_THRESH), '--topk',
        str(TOPK)
    ], str(tmp_path / 'server.log'))
    driver = None
    try:
        url = server.wait_url(timeout=120)
        assert url.startswith('http://127.0.0.1:')

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ('--headless=new', '--no-sandbox', '--disable-gpu',
                    '--disable-dev-shm-usage', '--window-size=1400,1900',
                    '--no-first-run', '--disable-extensions'):
            options.add_argument(arg)
        driver = webdriver.Chrome(
            service=Service(executable_path=chromedriver), options=options)
        driver.set_page_load_timeout(60)
        driver.get(url)

        # 1. the gallery is indexed on the first visit, and cached
        status = wait_for(
            lambda: 'Gallery: 12 images' in driver.find_element(
                By.ID, 'gallery-status').text, 150, 'the gallery index',
            server)
        assert status and osp.isfile(index_file)

        # 2. a gallery image as the query: its detections are drawn
        thumbs = wait_for(
            lambda: driver.find_elements(
                By.CSS_SELECTOR, '#gallery-thumbs button.thumbnail-item'),
            30, 'the gallery thumbnails', server)
        assert len(thumbs) == 12
        q = 2
        query_path = setup['frame_paths'][q]
        thumbs[q].click()
        name = osp.basename(query_path)
        wait_for(
            lambda: f'{name}:' in driver.find_element(By.ID, 'status').text
            and 'detections' in driver.find_element(By.ID, 'status').text,
            60, 'the query detections', server)

        # the API's detections of the same image, the same threshold
        searcher = PersonSearcher(setup['config'], setup['checkpoint'],
                                  show_progress=False)
        pred = searcher([query_path])['predictions'][0]
        boxes = np.asarray(pred['bboxes'], np.float32).reshape(-1, 4)
        boxes = boxes[np.asarray(pred['scores']) >= DET_THRESH]
        assert len(boxes) > 0
        points = [(j, unique_point(boxes, j)) for j in range(len(boxes))]
        j, point = next(((j, p) for j, p in points if p is not None),
                        (0, None))
        if point is None:  # every point is in two boxes: the page's rule
            point = ((boxes[0, 0] + boxes[0, 2]) / 2,
                     (boxes[0, 1] + boxes[0, 3]) / 2)
            inside = [i for i, b in enumerate(boxes) if b[0] <= point[0]
                      <= b[2] and b[1] <= point[1] <= b[3]]
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            j = min(inside, key=lambda i: areas[i])

        # 3. click that person on the drawn image (drawn enlarged)
        img = driver.find_element(By.CSS_SELECTOR, '#query-image img')
        left, top, width, height, nat_w, nat_h = driver.execute_script(
            'const r = arguments[0].getBoundingClientRect(); return [r.left,'
            ' r.top, r.width, r.height, arguments[0].naturalWidth, '
            'arguments[0].naturalHeight];', img)
        h = 120  # the synthetic frames' height
        scale = max(1.0, 480 / h)
        assert nat_h == round(h * scale)
        r = min(width / nat_w, height / nat_h, 1)
        cx = (width - nat_w * r) / 2 + point[0] * scale * r
        cy = (height - nat_h * r) / 2 + point[1] * scale * r
        ActionChains(driver).move_to_element_with_offset(
            img, int(round(cx - width / 2)),
            int(round(cy - height / 2))).click().perform()
        wait_for(
            lambda: f'detection #{j + 1},' in driver.find_element(
                By.ID, 'status').text and table_rows(driver, By,
                                                     'hits-table'),
            60, f'the hits of detection #{j + 1}', server)

        # 4. the ranked hits: the right count, the API's similarity
        rows = table_rows(driver, By, 'hits-table')
        assert len(rows) == TOPK
        assert [int(r[0]) for r in rows] == list(range(1, TOPK + 1))
        pictures = driver.find_elements(
            By.CSS_SELECTOR, '#hits button.thumbnail-item')
        assert len(pictures) == TOPK
        crop = driver.find_elements(By.CSS_SELECTOR, '#query-crop img')
        assert crop, 'no query crop shown'

        feat = searcher.embed_query(query_path, boxes[j].tolist())
        index = searcher.build_index(setup['frames'], progress=False)
        hits = searcher.search(index, feat, topk=TOPK, det_thresh=DET_THRESH,
                               exclude_imgs=[query_path])
        assert rows[0][1] == f'{hits[0].similarity:.4f}', (rows[0], hits[0])
        assert rows[0][3] == osp.basename(hits[0].img_path)
        assert [float(r[1]) for r in rows] == pytest.approx(
            [h.similarity for h in hits], abs=2e-4)
        assert name not in [r[3] for r in rows]  # its own image left out

        # nothing but the app's own address was fetched (offline page)
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            '.map(e => e.name);')
        origin = url.rstrip('/')
        foreign = [u for u in resources
                   if not u.startswith((origin, 'data:', 'blob:'))]
        assert not foreign, foreign

        # the screenshot of the result page
        driver.execute_script('window.scrollTo(0, 0);')
        shot = str(tmp_path / 'web_demo.png')
        assert driver.save_screenshot(shot)
        if os.environ.get('MMPS_SCREENSHOT_DIR'):
            out_dir = os.environ['MMPS_SCREENSHOT_DIR']
            os.makedirs(out_dir, exist_ok=True)
            shutil.copy(shot, osp.join(out_dir, 'web_demo.png'))

        # 5. bad input is a message in the page: a box outside the image
        box_input = driver.find_element(By.CSS_SELECTOR, '#box-input textarea'
                                        ', #box-input input')
        box_input.clear()
        box_input.send_keys('0 0 900 900')
        driver.find_element(By.ID, 'box-button').click()
        wait_for(
            lambda: 'not inside the image' in driver.find_element(
                By.ID, 'status').text, 30, 'the bad-box message', server)
        assert 'Traceback' not in driver.find_element(By.TAG_NAME,
                                                      'body').text
        assert len(table_rows(driver, By, 'hits-table')) == TOPK
        print(f'browser test: {time.time() - t0:.1f} s')
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
    assert 'Traceback' not in server.output(), server.output()[-3000:]
