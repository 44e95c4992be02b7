# Copyright (c) OpenMMLab. All rights reserved.
"""Detection recall / AP: exact values on tiny cases (the equality with the
reference on random cases is in ``test_search.py``)."""
import pytest

from mmps.evaluation.functional import PersonSearchProtocol, eval_detection
from .utils import BIG, flat_dets, make_infos


def test_detection_hand_values():
    images = [
        dict(boxes=[[0, 0, 100, 100], [200, 0, 300, 100]], pids=[1, -1]),
        dict(boxes=[[0, 0, 50, 50]], pids=[2]),
        dict(boxes=[[0, 0, 50, 50]], pids=[-1]),
    ]
    dets = [[[0, 0, 100, 100, .9], [10, 0, 110, 100, .8],
             [500, 0, 600, 100, .7]], [], [[0, 0, 50, 50, .6]]]
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images, []))
    det_img, d = flat_dets(dets)
    res = eval_detection(protocol, det_img, d)
    # .9 T, .8 N, .7 N, .6 T; 4 boxes
    assert res['recall'] == pytest.approx(0.5)
    assert res['ap'] == pytest.approx((1 + 2 / 4) / 2 * 0.5)
    res = eval_detection(protocol, det_img, d, labeled_only=True)
    # image 2 skipped; .9 T, .8 N, .7 N; 2 labeled boxes
    assert res['recall'] == pytest.approx(0.5)
    assert res['ap'] == pytest.approx(0.5)


def test_detection_argmax_ties_follow_detection_order():
    images = [dict(boxes=[BIG], pids=[1])]
    protocol = PersonSearchProtocol.from_data_infos(make_infos(images, []))
    first_low = [[BIG + [0.6], BIG + [0.9]]]
    res = eval_detection(protocol, *flat_dets(first_low))
    assert res['ap'] == pytest.approx(0.5)  # .9 N, .6 T
    res = eval_detection(protocol, *flat_dets([first_low[0][::-1]]))
    assert res['ap'] == pytest.approx(1.0)
