"""Distances, Rank-k, AP, INP and the Gait3D protocol on cases worked out by hand."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch

from kprpe_gait.eval import (
    DEFAULT_GAIT3D_PARTITION,
    evaluate_gait3d,
    evaluate_retrieval,
    pairwise_distance,
    read_probe_set,
    retrieval_scores,
)

# Two probes, four gallery sequences.
#   probe "a", distances [0.5, 0.1, 0.9, 0.3] -> ranked gallery 1 (b), 3 (c), 0 (a), 2 (a)
#       matches 0 0 1 1: first hit at rank 3; AP = (1/3 + 2/4) / 2 = 5/12; INP = 2 matches / rank 4 = 1/2
#   probe "b", distances [0.2, 0.4, 0.6, 0.8] -> ranked 0 (a), 1 (b), 2 (a), 3 (c)
#       matches 0 1 0 0: first hit at rank 2; AP = 1/2; INP = 1 / 2
#   Rank-1 = 0 %, Rank-2 = 50 %, Rank-3 = Rank-4 = 100 %; mAP = (5/12 + 1/2) / 2 = 11/24; mINP = 1/2
DIST = np.array([[0.5, 0.1, 0.9, 0.3], [0.2, 0.4, 0.6, 0.8]])
PROBES = ["a", "b"]
GALLERY = ["a", "b", "a", "c"]


def test_per_probe_scores_by_hand():
    scores = retrieval_scores(DIST, PROBES, GALLERY)
    np.testing.assert_array_equal(scores.first_hit, [3, 2])
    np.testing.assert_array_equal(scores.num_matches, [2, 1])
    np.testing.assert_allclose(scores.ap, [5 / 12, 1 / 2])
    np.testing.assert_allclose(scores.inp, [1 / 2, 1 / 2])
    assert scores.gallery_size == 4 and scores.valid.all()


def test_metrics_by_hand():
    result = evaluate_retrieval(DIST, PROBES, GALLERY, ranks=(1, 2, 3))
    assert result == pytest.approx({"Rank-1": 0.0, "Rank-2": 50.0, "Rank-3": 100.0,
                                    "mAP": 100 * 11 / 24, "mINP": 50.0})  # fmt: skip


def test_ranks_beyond_a_small_gallery_report_the_value_at_the_gallery_size():
    # G = 4 < 10: OpenGait's evaluate_Gait3D would index cmc[9] and raise; here Rank-5/10 = Rank-4
    result = evaluate_retrieval(DIST, PROBES, GALLERY)
    assert set(result) == {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}
    assert result["Rank-5"] == result["Rank-10"] == 100.0
    # one gallery item, no match for the second probe -> that probe is skipped, Rank-10 = Rank-1
    single = evaluate_retrieval([[0.3], [0.7]], ["a", "b"], ["a"])
    assert single == pytest.approx({"Rank-1": 100.0, "Rank-5": 100.0, "Rank-10": 100.0, "mAP": 100.0, "mINP": 100.0})


def test_ties_keep_gallery_order():
    # distances 0.1, 0.1, 0.2 for gallery x, a, a: the tied x (listed first) ranks first
    #   matches 0 1 1: first hit 2, AP = (1/2 + 2/3) / 2 = 7/12, INP = 2/3
    scores = retrieval_scores([[0.1, 0.1, 0.2]], ["a"], ["x", "a", "a"])
    assert scores.first_hit[0] == 2
    assert scores.ap[0] == pytest.approx(7 / 12) and scores.inp[0] == pytest.approx(2 / 3)
    # the same distances with the gallery listed a, x, a: matches 1 0 1, AP = (1 + 2/3) / 2, INP = 2/3
    scores = retrieval_scores([[0.1, 0.1, 0.2]], ["a"], ["a", "x", "a"])
    assert scores.first_hit[0] == 1
    assert scores.ap[0] == pytest.approx(5 / 6) and scores.inp[0] == pytest.approx(2 / 3)


def test_probes_without_a_match_are_skipped_with_a_warning(caplog):
    dist = np.vstack([DIST, [[0.0, 0.0, 0.0, 0.0]]])  # third probe "z" is nowhere in the gallery
    with caplog.at_level(logging.WARNING, logger="opengait.kprpe_gait.eval"):
        result = evaluate_retrieval(dist, PROBES + ["z"], GALLERY, ranks=(1, 2, 3))
    assert result == pytest.approx(evaluate_retrieval(DIST, PROBES, GALLERY, ranks=(1, 2, 3)))
    assert "1 of 3 probes have no true match" in caplog.text
    scores = retrieval_scores(dist, PROBES + ["z"], GALLERY)
    assert scores.first_hit[2] == 0 and scores.num_matches[2] == 0
    assert math.isnan(scores.ap[2]) and math.isnan(scores.inp[2])
    with pytest.raises(ValueError, match="no probe identity appears in the gallery"):
        evaluate_retrieval(DIST, ["y", "z"], GALLERY)


def test_integer_labels_and_torch_distances():
    result = evaluate_retrieval(torch.tensor(DIST), torch.tensor([1, 2]), np.array([1, 2, 1, 3]), ranks=(1, 2, 3))
    assert result == pytest.approx(evaluate_retrieval(DIST, PROBES, GALLERY, ranks=(1, 2, 3)))


def test_many_probes_are_ranked_in_chunks_like_one_block():
    rng = np.random.default_rng(0)
    dist = rng.random((1100, 30))  # > one chunk of 512 probes
    probes, gallery = rng.integers(0, 10, 1100), rng.integers(0, 10, 30)
    whole = retrieval_scores(dist, probes, gallery)
    for i in (0, 511, 512, 1099):  # rows on both sides of the chunk borders
        row = retrieval_scores(dist[i : i + 1], probes[i : i + 1], gallery)
        assert row.first_hit[0] == whole.first_hit[i]
        np.testing.assert_allclose([row.ap[0], row.inp[0]], [whole.ap[i], whole.inp[i]])


@pytest.mark.parametrize(
    "dist, probes, gallery, ranks, message",
    [
        (DIST, ["a"], GALLERY, (1,), "probe_labels"),
        (DIST, PROBES, ["a"], (1,), "gallery_labels"),
        (np.zeros((2, 0)), PROBES, [], (1,), "non-empty"),
        (np.array([[np.nan, 0, 0, 0], [0, 0, 0, 0]]), PROBES, GALLERY, (1,), "finite"),
        (DIST[0], PROBES, GALLERY, (1,), "matrix"),
        (DIST, PROBES, GALLERY, (0,), "positive integers"),
    ],
)
def test_retrieval_rejects_bad_input(dist, probes, gallery, ranks, message):
    with pytest.raises(ValueError, match=message):
        evaluate_retrieval(dist, probes, gallery, ranks=ranks)


def test_ranks_must_be_a_sequence():
    with pytest.raises(TypeError, match="sequence of positive integers"):
        evaluate_retrieval(DIST, PROBES, GALLERY, ranks=5)


def test_euclidean_distance_by_hand_is_not_squared():
    # one probe, one gallery item, 2 channels x 2 parts (x[n, :, part])
    #   part 0: (0, 0) vs (3, 4) -> 5; part 1: (1, 0) vs (1, 0) -> 0; mean over parts 2.5 (not 12.5)
    x = np.array([[[0.0, 1.0], [0.0, 0.0]]], dtype=np.float32)  # (1, c=2, p=2)
    y = np.array([[[3.0, 1.0], [4.0, 0.0]]], dtype=np.float32)
    np.testing.assert_allclose(pairwise_distance(x, y, "euc"), [[2.5]], rtol=1e-6)


def test_cosine_distance_by_hand_is_scale_free():
    #   part 0: (1, 0) vs (1, 0) -> cos 1; part 1: (0, 1) vs (1, 1) -> cos 1/sqrt(2)
    #   distance 1 - (1 + 1/sqrt(2)) / 2
    x = np.array([[[1.0, 0.0], [0.0, 1.0]]], dtype=np.float32)
    y = np.array([[[1.0, 1.0], [0.0, 1.0]]], dtype=np.float32)
    expected = 1 - (1 + 1 / math.sqrt(2)) / 2
    np.testing.assert_allclose(pairwise_distance(x, y, "cos"), [[expected]], rtol=1e-6)
    np.testing.assert_allclose(pairwise_distance(3 * x, 0.5 * y, "cos"), [[expected]], rtol=1e-6)


def test_distance_matches_a_direct_per_part_computation():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 8, 3)), rng.standard_normal((7, 8, 3))
    direct_euc = np.linalg.norm(x[:, None] - y[None], axis=2).mean(-1)  # (5, 7, p) -> mean over parts
    xn, yn = x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(y, axis=1, keepdims=True)
    direct_cos = 1 - np.einsum("icp,jcp->ijp", xn, yn).mean(-1)
    np.testing.assert_allclose(pairwise_distance(x, y, "euc"), direct_euc, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pairwise_distance(x, y, "cos"), direct_cos, rtol=1e-10, atol=1e-12)
    assert pairwise_distance(x, y).dtype == np.float64
    # (N, c) is one part
    np.testing.assert_allclose(
        pairwise_distance(x[:, :, 0], y[:, :, 0]), np.linalg.norm(x[:, None, :, 0] - y[None, :, :, 0], axis=2)
    )


def test_euclidean_distance_of_identical_embeddings_is_zero_not_nan():
    x = np.full((2, 256, 4), 1e3, dtype=np.float32)  # rounding makes |x|^2 + |y|^2 - 2xy slightly negative
    d = pairwise_distance(x, x)
    assert np.isfinite(d).all() and np.all(d >= 0) and np.allclose(d, 0, atol=1e-1)


def test_float16_embeddings_are_computed_in_float32():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 256, 2)) * 100).astype(np.float16)  # squared norms overflow float16
    y = (rng.standard_normal((6, 256, 2)) * 100).astype(np.float16)
    for metric in ("euc", "cos"):
        d = pairwise_distance(x, y, metric)
        assert d.dtype == np.float32 and np.isfinite(d).all()
        np.testing.assert_array_equal(d, pairwise_distance(x.astype(np.float32), y.astype(np.float32), metric))
    t = pairwise_distance(torch.from_numpy(x), torch.from_numpy(y))
    assert torch.is_tensor(t) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), pairwise_distance(x, y))


@pytest.mark.parametrize(
    "x, y, metric, error, message",
    [
        (np.zeros((2, 4, 3)), np.zeros((2, 5, 3)), "euc", ValueError, "differ in"),
        (np.zeros((2, 4, 3)), np.zeros((2, 4, 2)), "euc", ValueError, "differ in"),
        (np.zeros((2, 4, 3, 1)), np.zeros((2, 4, 3)), "euc", ValueError, "shape"),
        (np.full((2, 4, 3), np.nan), np.zeros((2, 4, 3)), "euc", ValueError, "NaN"),
        (np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), "l1", ValueError, "metric"),
        (np.zeros((2, 4, 3), dtype=bool), np.zeros((2, 4, 3)), "euc", TypeError, "real numbers"),
    ],
)
def test_distance_rejects_bad_input(x, y, metric, error, message):
    with pytest.raises(error, match=message):
        pairwise_distance(x, y, metric)


# ----------------------------------------------------------------------------------------------
# Gait3D protocol


def _inference_dict() -> dict:
    """Five test sequences; embeddings (N, c=2, p=1) on a line so distances are |difference|.

    Probes: 0001-cam0-seq0 (at 0.0) and 0002-cam0-seq0 (at 10.0); gallery: 0001-cam1-seq0 (at 1.0),
    0002-cam1-seq0 (at 2.0), 0003-cam0-seq0 (at 9.0).
      probe 0001: gallery distances 1, 2, 9 -> first hit at rank 1, AP 1, INP 1
      probe 0002: gallery distances 9, 8, 1 -> ranked 0003, 0002, 0001: first hit at 2, AP 1/2, INP 1/2
    Rank-1 50 %, Rank-5 = Rank-10 = 100 % (G = 3), mAP 75 %, mINP 75 %.
    """
    positions = [0.0, 1.0, 10.0, 2.0, 9.0]
    return {
        "embeddings": np.array([[[p], [0.0]] for p in positions], dtype=np.float32),
        "labels": ["0001", "0001", "0002", "0002", "0003"],
        "types": ["cam0", "cam1", "cam0", "cam1", "cam0"],
        "views": ["seq0"] * 5,
    }


PROBE_SET = ["0001-cam0-seq0", "0002-cam0-seq0"]
EXPECTED_GAIT3D = {
    "scalar/test_accuracy/Rank-1": 50.0,
    "scalar/test_accuracy/Rank-5": 100.0,
    "scalar/test_accuracy/Rank-10": 100.0,
    "scalar/test_accuracy/mAP": 75.0,
    "scalar/test_accuracy/mINP": 75.0,
}


def _write_partition(path, probes=PROBE_SET, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"TRAIN_SET": ["0000"], "TEST_SET": ["0001", "0002", "0003"], "PROBE_SET": probes,
                                **extra}))  # fmt: skip
    return path


def test_gait3d_protocol_by_hand(tmp_path):
    partition = _write_partition(tmp_path / "partition.json")
    result = evaluate_gait3d(_inference_dict(), "Gait3D", metric="euc", partition=str(partition))
    assert result == pytest.approx(EXPECTED_GAIT3D)
    # cos: every gallery embedding (p, 0), p > 0, points the same way as probe 0002 -> all its distances
    # are 0, a three-way tie kept in gallery order 0001, 0002, 0003: first hit 2, AP 1/2, INP 1/2.
    # Probe 0001 is the zero vector: cosine 0, distance 1 to everything, tie -> 0001 first: AP 1, INP 1.
    # Hence the same numbers as with "euc".
    cos = evaluate_gait3d(_inference_dict(), metric="cos", partition=partition)
    assert cos == pytest.approx(EXPECTED_GAIT3D)


def test_gait3d_reads_opengaits_default_partition_path(tmp_path, monkeypatch):
    _write_partition(tmp_path / DEFAULT_GAIT3D_PARTITION)
    monkeypatch.chdir(tmp_path)
    assert evaluate_gait3d(_inference_dict(), "Gait3D") == pytest.approx(EXPECTED_GAIT3D)


def test_gait3d_ignores_probe_keys_absent_from_the_data_with_a_warning(tmp_path, caplog):
    partition = _write_partition(tmp_path / "p.json", probes=PROBE_SET + ["0009-cam0-seq0"])
    with caplog.at_level(logging.WARNING, logger="opengait.kprpe_gait.eval"):
        assert evaluate_gait3d(_inference_dict(), partition=partition) == pytest.approx(EXPECTED_GAIT3D)
    assert "1 PROBE_SET sequences" in caplog.text


def test_gait3d_accepts_tensors_and_float16(tmp_path):
    data = _inference_dict()
    data["embeddings"] = torch.from_numpy(data["embeddings"]).half()
    partition = _write_partition(tmp_path / "p.json")
    assert evaluate_gait3d(data, partition=partition) == pytest.approx(EXPECTED_GAIT3D)


def test_gait3d_errors(tmp_path):
    data = _inference_dict()
    good = _write_partition(tmp_path / "good.json")
    with pytest.raises(FileNotFoundError, match="no partition file"):
        evaluate_gait3d(data, partition=tmp_path / "absent.json")
    no_probes = tmp_path / "no_probe_set.json"
    no_probes.write_text(json.dumps({"TEST_SET": ["0001"]}))
    with pytest.raises(ValueError, match="has no PROBE_SET"):
        evaluate_gait3d(data, partition=no_probes)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_probe_set(broken)
    with pytest.raises(ValueError, match="none of the 5 test sequences"):
        evaluate_gait3d(data, partition=_write_partition(tmp_path / "other.json", probes=["0042-cam0-seq0"]))
    every = [f"{i}-{t}-{v}" for i, t, v in zip(data["labels"], data["types"], data["views"])]
    with pytest.raises(ValueError, match="gallery is empty"):
        evaluate_gait3d(data, partition=_write_partition(tmp_path / "every.json", probes=every))
    with pytest.raises(KeyError, match="views"):
        evaluate_gait3d({k: v for k, v in data.items() if k != "views"}, partition=good)
    with pytest.raises(ValueError, match="same sequences"):
        evaluate_gait3d(dict(data, labels=data["labels"][:-1]), partition=good)
