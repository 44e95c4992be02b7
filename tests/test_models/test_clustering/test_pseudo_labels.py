# Copyright (c) OpenMMLab. All rights reserved.
"""Pseudo labels (DBSCAN, scene constraint, reliability) against hand cases
and a transcription of DICL's ``label_generator_dbscan_context``."""
import collections

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from mmps.models.clustering import (apply_scene_constraint, cluster_quality,
                                    dbscan_labels, generate_pseudo_labels,
                                    k_reciprocal_jaccard, reliability_refine)
from .test_jaccard import dense_reference_jaccard
from .test_knn import clustered_features


def same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    pairs = len(set(zip(a.tolist(), b.tolist())))
    return pairs == len(set(a.tolist())) == len(set(b.tolist()))


# -- reference transcriptions (dense, loops) ---------------------------------
def reference_single(dist, feats, eps, min_samples):
    """``label_generator_dbscan_context_single`` with ``use_outliers``."""
    labels = DBSCAN(
        eps=eps, min_samples=min_samples,
        metric='precomputed').fit_predict(dist)
    num_clusters = len(set(labels)) - (1 if -1 in labels else 0)
    centers = collections.defaultdict(list)
    outliers = 0
    for i, label in enumerate(labels):
        if label == -1:
            labels[i] = num_clusters + outliers
            outliers += 1
        centers[labels[i]].append(feats[i])
    centers = np.stack(
        [np.mean(centers[idx], axis=0) for idx in sorted(centers.keys())])
    return labels, centers, num_clusters + outliers


def reference_context(labels, centers, feats, inds, num_classes):
    """``process_label_with_context``."""
    labels = labels.copy()
    for uid in sorted(set(inds.tolist())):
        tmp_id = np.nonzero(inds == uid)[0]
        tally = collections.defaultdict(list)
        for i, item in enumerate(labels[tmp_id]):
            tally[item].append(i)
        for key, locs in tally.items():
            if len(locs) < 2:
                continue
            sim = np.dot(centers[key], feats[tmp_id[locs]].T)
            idx = np.argmax(sim)
            for i in range(len(sim)):
                if i != idx:
                    labels[tmp_id[locs[i]]] = num_classes
                    centers = np.concatenate(
                        [centers, feats[tmp_id[locs[i]]][None]])
                    num_classes += 1
    return labels, centers, num_classes


def reference_reliability(labels_normal,
                          labels_tight,
                          labels_loose,
                          num_classes,
                          indep_thres=None):
    """The reliability part of ``label_generator_dbscan(_context)``."""
    labels_normal = labels_normal.copy()

    def label_sim(labels):
        labels = torch.as_tensor(labels)
        n = len(labels)
        return labels.expand(n, n).eq(labels.expand(n, n).t()).float()

    sim, sim_tight, sim_loose = (
        label_sim(x) for x in (labels_normal, labels_tight, labels_loose))
    R_comp = 1 - torch.min(sim, sim_tight).sum(-1) / torch.max(
        sim, sim_tight).sum(-1)
    R_indep = 1 - torch.min(sim, sim_loose).sum(-1) / torch.max(
        sim, sim_loose).sum(-1)
    cluster_R_comp = collections.defaultdict(list)
    cluster_R_indep = collections.defaultdict(list)
    cluster_img_num = collections.defaultdict(int)
    for comp, indep, label in zip(R_comp, R_indep, labels_normal):
        cluster_R_comp[int(label)].append(comp.item())
        cluster_R_indep[int(label)].append(indep.item())
        cluster_img_num[int(label)] += 1
    cluster_R_comp = [min(cluster_R_comp[i]) for i in sorted(cluster_R_comp)]
    cluster_R_indep = [
        min(cluster_R_indep[i]) for i in sorted(cluster_R_indep)
    ]
    cluster_R_indep_noins = [
        iou for iou, num in zip(cluster_R_indep, sorted(cluster_img_num))
        if cluster_img_num[num] > 1
    ]
    if indep_thres is None:
        indep_thres = np.sort(cluster_R_indep_noins)[min(
            len(cluster_R_indep_noins) - 1,
            np.round(len(cluster_R_indep_noins) * 0.9).astype('int'))]
    labels_num = collections.defaultdict(int)
    for label in labels_normal:
        labels_num[int(label)] += 1
    outliers = 0
    for i, label in enumerate(labels_normal.tolist()):
        indep_score = cluster_R_indep[label]
        comp_score = R_comp[i]
        if (indep_score > indep_thres) or (comp_score.item()
                                           > cluster_R_comp[label]):
            if labels_num[label] > 1:
                labels_normal[i] = num_classes + outliers
                outliers += 1
                labels_num[label] -= 1
                labels_num[int(labels_normal[i])] += 1
    return labels_normal, indep_thres


def reference_pipeline(dist,
                       feats,
                       image_ids,
                       eps,
                       min_samples,
                       indep_thres=None):
    """``label_generator_dbscan_context`` (three eps) on a dense matrix."""
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    results = []
    for e in sorted(eps):
        labels, centers, num = reference_single(dist, feats, e, min_samples)
        results.append(
            reference_context(labels, centers, feats, image_ids, num))
    (tight, _, _), (normal, _, num_classes), (loose, _, _) = results
    return reference_reliability(normal, tight, loose, num_classes,
                                 indep_thres)


# -- DBSCAN ------------------------------------------------------------------
def test_dbscan_outliers_become_singletons():
    # 0-1-2 close, 3-4 close, 5 and 6 alone
    pairs = {(0, 1): 0.1, (1, 2): 0.2, (0, 2): 0.6, (3, 4): 0.3, (5, 6): 0.9}
    dense = np.ones((7, 7))
    np.fill_diagonal(dense, 0)
    for (i, j), d in pairs.items():
        dense[i, j] = dense[j, i] = d
    sparse = sp.csr_matrix(np.where(dense < 1, dense, 0))
    sparse.setdiag(0)  # explicit zeros on the diagonal
    for dist in (dense, sparse):
        np.testing.assert_array_equal(
            dbscan_labels(dist, eps=0.5, min_samples=2), [0, 0, 0, 1, 1, 2, 3])
        np.testing.assert_array_equal(
            dbscan_labels(dist, eps=0.5, min_samples=3), [0, 0, 0, 1, 2, 3, 4])
        np.testing.assert_array_equal(
            dbscan_labels(dist, eps=0.05, min_samples=2), np.arange(7))
    # a stored zero distance is a neighbour
    zero = sp.csr_matrix((np.zeros(4), ([0, 0, 1, 1], [0, 1, 0, 1])),
                         shape=(3, 3))
    np.testing.assert_array_equal(dbscan_labels(zero, 0.1, 2), [0, 0, 1])
    with pytest.raises(ValueError):
        dbscan_labels(sparse, eps=1.0, min_samples=2)
    assert dbscan_labels(sp.csr_matrix((0, 0)), 0.5, 2).shape == (0, )


# -- scene constraint --------------------------------------------------------
def test_scene_constraint_keeps_the_box_closest_to_the_centroid():
    feats = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0],
                      [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    images = np.array([7, 7, 7, 3, 7, 7, 2])
    # cluster 0: centroid along (1, 1): boxes 1 and 2 of image 7 are the
    # closest (a tie: box 1 kept), box 0 of image 7 is split off;
    # cluster 1: centroid along (0.37, 0.7): box 5 beats box 4 in image 7
    out = apply_scene_constraint(labels, feats, images)
    np.testing.assert_array_equal(out, [2, 0, 3, 0, 4, 1, 1])
    # other image ids, torch inputs: same
    out2 = apply_scene_constraint(
        torch.as_tensor(labels), torch.as_tensor(feats),
        torch.as_tensor(images * 10 + 1))
    np.testing.assert_array_equal(out2, out)
    # nothing to do
    np.testing.assert_array_equal(
        apply_scene_constraint(labels, feats, np.arange(7)), labels)
    assert apply_scene_constraint(np.zeros(0), np.zeros((0, 2)),
                                  np.zeros(0)).shape == (0, )


# -- reliability -------------------------------------------------------------
def test_reliability_compactness():
    normal = np.array([0, 0, 0, 1, 1, 2])
    tight = np.array([0, 0, 1, 2, 2, 3])  # cluster 0 splits: 0, 1 | 2
    labels, thr = reliability_refine(normal, tight, normal)
    # R_comp = 1/3, 1/3, 2/3 in cluster 0: box 2 is less compact than the
    # cluster's best; R_indep is 0 everywhere -> threshold 0
    np.testing.assert_array_equal(labels, [0, 0, 3, 1, 1, 2])
    assert thr == 0.0


def test_reliability_independence_and_frozen_threshold():
    normal = np.array([0, 0, 0, 1, 1, 2])
    loose = np.array([0, 0, 0, 0, 0, 2])  # clusters 0 and 1 merge
    # R_indep: cluster 0 -> 1 - 3/5 = 0.4, cluster 1 -> 1 - 2/5 = 0.6
    labels, thr = reliability_refine(normal, normal, loose)
    assert thr == pytest.approx(0.6)  # 90th percentile of [0.4, 0.6]
    np.testing.assert_array_equal(labels, normal)
    # frozen: cluster 1 is above it; its last member keeps the label
    labels, thr = reliability_refine(normal, normal, loose, threshold=0.5)
    assert thr == 0.5
    np.testing.assert_array_equal(labels, [0, 0, 0, 3, 1, 2])
    labels, thr = reliability_refine(normal, normal, loose, percentile=0)
    assert thr == pytest.approx(0.4)
    np.testing.assert_array_equal(labels, [0, 0, 0, 3, 1, 2])
    # no cluster of two: no threshold to compute, nothing changes
    labels, thr = reliability_refine([0, 1, 2], [0, 1, 2], [0, 0, 1])
    assert thr is None
    np.testing.assert_array_equal(labels, [0, 1, 2])
    labels, thr = reliability_refine([], [], [])
    assert len(labels) == 0 and thr is None


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_reliability_equals_reference_loop(seed):
    rng = np.random.default_rng(seed)
    n = 300
    normal = rng.integers(0, 60, n)
    normal = np.unique(normal, return_inverse=True)[1]  # 0..C-1
    tight = np.where(rng.random(n) < 0.3, rng.integers(0, 200, n), normal)
    loose = np.where(rng.random(n) < 0.3, rng.integers(0, 20, n), normal)
    num = normal.max() + 1
    for frozen in (None, 0.3):
        want, want_thr = reference_reliability(normal, tight, loose, num,
                                               frozen)
        got, got_thr = reliability_refine(normal, tight, loose, frozen)
        np.testing.assert_array_equal(got, want)  # same ids too
        assert got_thr == want_thr


# -- whole pipeline ----------------------------------------------------------
def _scene_data(n=600, seed=11):
    feats = clustered_features(n, 48, seed, dup=0.02, noise=0.7)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n // 3, n)  # 3 boxes per image
    return feats, images


def test_pipeline_equals_dense_reference():
    feats, images = _scene_data()
    eps, min_samples = (0.68, 0.70, 0.72), 4
    out = generate_pseudo_labels(
        feats, images, eps=eps, min_samples=min_samples)
    # all the steps do something here
    assert out['num_multi_clusters'] > 40 and out['num_outliers'] > 0
    assert out['num_scene_split'] > 0 and out['num_unreliable'] > 0
    dense = dense_reference_jaccard(feats)
    want, want_thr = reference_pipeline(dense, feats, images, eps, min_samples)
    assert same_partition(out['labels'], want)
    assert out['indep_threshold'] == want_thr
    # frozen threshold, reused
    out2 = generate_pseudo_labels(
        feats, images, eps=eps, min_samples=min_samples, indep_threshold=0.05)
    want2, _ = reference_pipeline(dense, feats, images, eps, min_samples, 0.05)
    assert out2['indep_threshold'] == 0.05
    assert same_partition(out2['labels'], want2)


def test_pipeline_outputs_and_determinism():
    feats, images = _scene_data(400, seed=3)
    out = generate_pseudo_labels(torch.from_numpy(feats).float(), images)
    labels = out['labels']
    assert labels.dtype == np.int64 and labels.shape == (400, )
    sizes = np.bincount(labels)
    assert (sizes > 0).all()  # contiguous 0..C-1
    assert out['num_clusters'] == len(sizes)
    assert out['num_singletons'] == (sizes == 1).sum()
    assert out['num_multi_clusters'] + out['num_singletons'] == len(sizes)
    assert out['jaccard_nnz'] > 0 and out['time_total'] > 0
    # no two boxes of one image share a label (scene constraint)
    assert len(set(zip(labels.tolist(), images.tolist()))) == 400
    again = generate_pseudo_labels(torch.from_numpy(feats).float(), images)
    np.testing.assert_array_equal(again['labels'], labels)
    assert again['indep_threshold'] == out['indep_threshold']
    # without the scene constraint / with a single eps
    plain = generate_pseudo_labels(feats, eps=(0.7, ), scene_constraint=False)
    dist = k_reciprocal_jaccard(feats, max_distance=0.7)
    assert same_partition(plain['labels'], dbscan_labels(dist, 0.7, 4))
    with pytest.raises(ValueError):
        generate_pseudo_labels(feats, None)
    with pytest.raises(ValueError):
        generate_pseudo_labels(feats, images, eps=(0.6, 0.7))


@pytest.mark.parametrize('n', [0, 1, 3, 12])
def test_pipeline_tiny(n):
    feats = np.random.default_rng(n).standard_normal((n, 8))
    out = generate_pseudo_labels(feats, np.arange(n) // 2, min_samples=2)
    assert out['labels'].shape == (n, )
    if n:
        assert set(out['labels'].tolist()) == set(range(out['num_clusters']))
    else:
        assert out['num_clusters'] == 0


def test_cluster_quality():
    person = np.array([0, 0, 1, 1, -1, 2])
    q = cluster_quality(np.array([5, 5, 7, 7, 5, 9]), person)
    assert q['ari'] == pytest.approx(1.0) and q['nmi'] == pytest.approx(1.0)
    assert q['num_labeled'] == 5
    q = cluster_quality(np.array([0, 1, 2, 3, 4, 5]), person)
    assert q['ari'] == pytest.approx(0.0)
    assert np.isnan(cluster_quality([0, 1], [-1, -1])['ari'])
