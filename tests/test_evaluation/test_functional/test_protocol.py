# Copyright (c) OpenMMLab. All rights reserved.
"""The test split: PersonSearchProtocol from dataset entries and records."""
import numpy as np
import pytest

from mmps.evaluation.functional import (GalleryRecord, PersonSearchProtocol,
                                        QueryRecord, eval_detection)
from .utils import basic_case, make_infos, run


def test_protocol_from_unordered_infos_and_checks():
    images, queries, *_ = basic_case()
    queries = [dict(pid=7, img=0, gallery=[3, 2, 3]), dict(pid=3, img=1,
                                                          gallery=[0])]
    infos = make_infos(images, queries)
    a = PersonSearchProtocol.from_data_infos(infos)
    b = PersonSearchProtocol.from_data_infos(infos[::-1])
    assert a == b
    assert a.gallery(0).tolist() == [3, 2]  # repeats dropped, order kept
    assert a.gt_offsets.tolist() == [0, 1, 3, 4, 5]
    bad = make_infos(images, [dict(pid=7, img=0, gallery=[9])])
    with pytest.raises(ValueError, match='gallery_img_ids'):
        PersonSearchProtocol.from_data_infos(bad)
    mixed = make_infos(images, [dict(pid=7, img=0, gallery=[1]),
                                dict(pid=7, img=0)])
    with pytest.raises(ValueError, match='some queries'):
        PersonSearchProtocol.from_data_infos(mixed)
    with pytest.raises(ValueError, match='query_feats'):
        run(*basic_case()[:4], np.zeros((2, 2)))
    with pytest.raises(ValueError, match='dets must be'):
        eval_detection(a, np.zeros(2, np.int64), np.zeros((3, 5)))


def test_protocol_from_records_equals_from_data_infos():
    images, queries, *_ = basic_case()
    queries = [dict(pid=7, img=0, cam=1, box=[1, 2, 3, 4], gallery=[3, 2, 3]),
               dict(pid=3, img=1, cam=2, gallery=[0])]
    gallery = [
        GalleryRecord(img_id=i, img_name=f'img{i:04d}.jpg', cam_id=im['cam'],
                      gt_boxes=im['boxes'], gt_pids=im['pids'])
        for i, im in enumerate(images)
    ]
    records = [
        QueryRecord(query_id=q, box=qu.get('box', [0, 0, 1, 1]),
                    person_id=qu['pid'], cam_id=qu['cam'],
                    query_img_index=qu['img'], gallery_img_ids=qu['gallery'])
        for q, qu in enumerate(queries)
    ]
    expected = PersonSearchProtocol.from_data_infos(make_infos(images,
                                                               queries))
    assert PersonSearchProtocol.from_records(gallery[::-1],
                                             records[::-1]) == expected
    assert expected.query_boxes[0].tolist() == [1, 2, 3, 4]
    # no own image and default fields
    plain = PersonSearchProtocol.from_records(
        [GalleryRecord(img_id=5)], [QueryRecord(0, [0, 0, 1, 1],
                                                query_img_index=None)])
    assert plain.img_names.tolist() == ['5'] and plain.query_img[0] == -1
    assert plain.gt_offsets.tolist() == [0, 0]
    with pytest.raises(ValueError, match='repeat an img_id'):
        PersonSearchProtocol.from_records(gallery[:1] * 2, [])
    with pytest.raises(ValueError, match='repeat a query_id'):
        PersonSearchProtocol.from_records(gallery, records[:1] * 2)
    with pytest.raises(ValueError, match='query_img_index'):
        PersonSearchProtocol.from_records(
            gallery, [QueryRecord(0, [0, 0, 1, 1], query_img_index=9)])
    with pytest.raises(ValueError, match='gt_pids'):
        GalleryRecord(img_id=0, gt_boxes=[[0, 0, 1, 1]], gt_pids=[])
