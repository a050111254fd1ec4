"""k-reciprocal re-ranking against a loop-level transcription of OpenGait's ``re_ranking`` and, under
``$OPENGAIT_ROOT``, against OpenGait's function itself (``evaluation/re_rank.py`` needs only numpy)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from kprpe_gait.eval import pairwise_distance
from kprpe_gait.eval.rerank import k_reciprocal_rerank
from kprpe_gait.eval.submission import nearest_labels, top_k_labels


def transcribed_re_ranking(original_dist, query_num, k1, k2, lambda_value):
    """OpenGait's ``re_ranking`` step by step (same number types, same loop orders), as a reference."""
    all_num = original_dist.shape[0]
    d = np.transpose(original_dist / np.max(original_dist, axis=0))
    v = np.zeros_like(d).astype(np.float16)
    rank = np.argsort(d).astype(np.int32)
    for i in range(all_num):
        forward = rank[i, : k1 + 1]
        backward = rank[forward, : k1 + 1]
        recip = forward[np.where(backward == i)[0]]
        grown = recip
        for cand in recip:
            half = int(np.around(k1 / 2))
            c_forward = rank[cand, : half + 1]
            c_backward = rank[c_forward, : half + 1]
            c_recip = c_forward[np.where(c_backward == cand)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                grown = np.append(grown, c_recip)
        grown = np.unique(grown)
        w = np.exp(-d[i, grown])
        v[i, grown] = w / np.sum(w)
    d = d[:query_num,]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float16)
        for i in range(all_num):
            v_qe[i, :] = np.mean(v[rank[i, :k2], :], axis=0)
        v = v_qe
    inv = [np.where(v[:, i] != 0)[0] for i in range(all_num)]
    jac = np.zeros_like(d, dtype=np.float16)
    for i in range(query_num):
        tmin = np.zeros(shape=[1, all_num], dtype=np.float16)
        nz = np.where(v[i, :] != 0)[0]
        for j in range(len(nz)):
            rows = inv[nz[j]]
            tmin[0, rows] = tmin[0, rows] + np.minimum(v[i, nz[j]], v[rows, nz[j]])
        jac[i] = 1 - tmin / (2 - tmin)
    final = jac * (1 - lambda_value) + d * lambda_value
    return final[:query_num, query_num:]


def _features(seed: int, num: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num, 16, 3)).astype(np.float32)


def _all_distances(probe: np.ndarray, gallery: np.ndarray, metric: str = "euc") -> np.ndarray:
    feat = np.concatenate([probe, gallery])
    return np.asarray(pairwise_distance(feat, feat, metric))


@pytest.mark.parametrize(("num_p", "num_g", "metric", "k1", "k2", "lam"),
                         [(7, 25, "euc", 6, 6, 0.3), (12, 40, "cos", 6, 6, 0.3), (5, 30, "euc", 4, 1, 0.5)])  # fmt: skip
def test_equals_the_transcription(num_p, num_g, metric, k1, k2, lam):
    dist = _all_distances(_features(num_p, num_p), _features(num_g, num_g), metric)
    ours = k_reciprocal_rerank(dist, num_p, k1=k1, k2=k2, lambda_value=lam)
    theirs = transcribed_re_ranking(dist, num_p, k1, k2, lam)
    assert ours.shape == (num_p, num_g) and ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)
    assert not np.allclose(ours, dist[:num_p, num_p:] / dist.max(axis=0)[None, num_p:])  # it does re-rank


def test_ties_equal_the_transcription_and_rank_by_gallery_position():
    # gallery sequences 3, 4, 5 share one feature (and 10, 11): exact ties in every distance to them
    probe, gallery = _features(1, 6), _features(2, 20)
    gallery[4] = gallery[5] = gallery[3]
    gallery[11] = gallery[10]
    probe[2] = gallery[3]  # a probe identical to the tied gallery sequences
    dist = _all_distances(probe, gallery)
    ours = k_reciprocal_rerank(dist, 6)
    np.testing.assert_array_equal(ours, transcribed_re_ranking(dist, 6, 6, 6, 0.3))
    assert ours[2, 3] == ours[2, 4] == ours[2, 5]
    labels = np.array([f"g{j}" for j in range(20)])
    ranked = top_k_labels(ours, labels, 20)
    tied = [list(row).index("g3") for row in ranked]
    for row, start in zip(ranked, tied):
        assert list(row[start : start + 3]) == ["g3", "g4", "g5"]  # ties kept in gallery order
    assert nearest_labels(ours, labels)[2] == "g3"


def test_rerank_errors():
    dist = _all_distances(_features(0, 3), _features(1, 5))
    with pytest.raises(ValueError, match="square"):
        k_reciprocal_rerank(dist[:3], 3)
    with pytest.raises(ValueError, match="num_probes"):
        k_reciprocal_rerank(dist, 8)
    with pytest.raises(ValueError, match="k1 must be"):
        k_reciprocal_rerank(dist, 3, k1=8)
    with pytest.raises(ValueError, match="lambda_value"):
        k_reciprocal_rerank(dist, 3, lambda_value=1.5)
    bad = dist.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        k_reciprocal_rerank(bad, 3)


@pytest.fixture(scope="module")
def opengait_re_ranking():
    root = os.environ.get("OPENGAIT_ROOT")
    if not root:
        pytest.skip("set OPENGAIT_ROOT to an OpenGait clone to compare with its re_ranking")
    path = Path(root) / "opengait" / "evaluation" / "re_rank.py"
    if not path.is_file():
        pytest.skip(f"OPENGAIT_ROOT={root} has no opengait/evaluation/re_rank.py")
    spec = importlib.util.spec_from_file_location("opengait_re_rank", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only
    return module.re_ranking


@pytest.mark.opengait
@pytest.mark.parametrize("tied", [False, True])
def test_equals_opengait_re_ranking(opengait_re_ranking, tied):
    probe, gallery = _features(3, 9), _features(4, 33)
    if tied:
        gallery[7] = gallery[8] = gallery[2]
        probe[0] = gallery[2]
    dist = _all_distances(probe, gallery)
    theirs = opengait_re_ranking(dist.copy(), 9, k1=6, k2=6, lambda_value=0.3)
    np.testing.assert_array_equal(k_reciprocal_rerank(dist, 9), theirs)
