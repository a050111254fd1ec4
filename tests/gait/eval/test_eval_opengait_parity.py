"""The metrics against OpenGait's own functions (needs a clone at $OPENGAIT_ROOT and its dependencies).

OpenGait's ``cuda_dist`` and its evaluators call ``.cuda()``; here ``torch.Tensor.cuda`` is patched
to return the tensor itself, so its unmodified code runs on the CPU. Nothing of OpenGait is
re-implemented: every expected number comes from calling its functions.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kprpe_gait.eval import evaluate_gait3d, evaluate_retrieval, pairwise_distance, retrieval_scores

pytestmark = pytest.mark.opengait


@pytest.fixture(scope="module")
def opengait() -> SimpleNamespace:
    root = os.environ.get("OPENGAIT_ROOT")
    if not root:
        pytest.skip("set OPENGAIT_ROOT to an OpenGait clone to compare against its evaluation code")
    package = Path(root).expanduser().resolve() / "opengait"
    if not (package / "evaluation" / "metric.py").is_file():
        pytest.skip(f"OPENGAIT_ROOT={root} has no opengait/evaluation/metric.py")
    if str(package) not in sys.path:
        sys.path.insert(0, str(package))
    try:
        from evaluation import evaluator, metric  # OpenGait's top-level names, as its main.py imports them
    except ImportError as e:  # its utils need torchvision, opencv, ... (e.g. /work/ogvenv)
        pytest.skip(f"OpenGait's evaluation code does not import in {sys.executable}: {e}")
    return SimpleNamespace(metric=metric, evaluator=evaluator)


@pytest.fixture
def cuda_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)


def _features(seed: int, num: int, channels: int = 32, parts: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num, channels, parts)).astype(np.float32)


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_distance_equals_cuda_dist(opengait, cuda_on_cpu, metric):
    x, y = _features(0, 30), _features(1, 50)
    theirs = opengait.metric.cuda_dist(x, y, metric).numpy()
    np.testing.assert_array_equal(pairwise_distance(x, y, metric), theirs)


@pytest.mark.parametrize("num_gallery", [10, 60, 400])
def test_rank_map_minp_equal_evaluate_rank(opengait, num_gallery):
    rng = np.random.default_rng(num_gallery)
    dist = pairwise_distance(_features(2, 80), _features(3, num_gallery))  # no exact ties
    probes = rng.integers(0, 20, 80).astype(str)
    gallery = rng.integers(0, 25, num_gallery).astype(str)
    cmc, all_ap, all_inp = opengait.metric.evaluate_rank(dist, probes, gallery)
    ours = evaluate_retrieval(dist, probes, gallery, ranks=(1, 5, 10))
    theirs = {"Rank-1": cmc[0] * 100, "Rank-5": cmc[4] * 100, "Rank-10": cmc[9] * 100,
              "mAP": np.mean(all_ap) * 100, "mINP": np.mean(all_inp) * 100}  # fmt: skip
    assert ours == pytest.approx(theirs, rel=1e-6)  # their CMC is float32
    scores = retrieval_scores(dist, probes, gallery)
    np.testing.assert_allclose(scores.ap[scores.valid], all_ap, rtol=1e-12)  # same probes skipped, same order
    np.testing.assert_allclose(scores.inp[scores.valid], all_inp, rtol=1e-12)


def test_all_probes_unmatched_fails_in_both(opengait):
    dist = pairwise_distance(_features(4, 3), _features(5, 4))
    with pytest.raises(AssertionError, match="all probe identities do not appear in gallery"):
        opengait.metric.evaluate_rank(dist, np.array(["x", "y", "z"]), np.array(["a", "b", "c", "d"]))
    with pytest.raises(ValueError, match="no probe identity appears in the gallery"):
        evaluate_retrieval(dist, ["x", "y", "z"], ["a", "b", "c", "d"])


def _log_only() -> SimpleNamespace:
    """Stands in for OpenGait's message manager, which needs torch.distributed initialised."""
    return SimpleNamespace(log_info=logging.getLogger("opengait").info)


def _gait3d_case(tmp_path: Path, num_ids: int, seed: int) -> dict:
    """Two sequences per identity; the first of each is a probe. Writes ./datasets/Gait3D/Gait3D.json."""
    labels = [f"{i:04d}" for i in range(num_ids) for _ in range(2)]
    types = [f"camid{j}_videoid2" for _ in range(num_ids) for j in range(2)]
    views = ["seq0"] * len(labels)
    probes = [f"{i:04d}-camid0_videoid2-seq0" for i in range(num_ids)]
    partition = tmp_path / "datasets" / "Gait3D" / "Gait3D.json"
    partition.parent.mkdir(parents=True)
    partition.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": sorted(set(labels)), "PROBE_SET": probes}))
    return {"embeddings": _features(seed, len(labels)), "labels": labels, "types": types, "views": views}


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_gait3d_equals_evaluate_gait3d(opengait, cuda_on_cpu, tmp_path, monkeypatch, metric):
    data = _gait3d_case(tmp_path, num_ids=40, seed=6)
    monkeypatch.chdir(tmp_path)  # both read ./datasets/Gait3D/Gait3D.json
    monkeypatch.setattr(opengait.evaluator, "get_msg_mgr", _log_only)
    theirs = opengait.evaluator.evaluate_Gait3D(dict(data), "Gait3D", metric=metric)
    ours = evaluate_gait3d(dict(data), "Gait3D", metric=metric)
    assert set(ours) == set(theirs)
    assert ours == pytest.approx({k: float(v) for k, v in theirs.items()}, rel=1e-6)


def test_small_gallery_crashes_opengait_but_not_ours(opengait, cuda_on_cpu, tmp_path, monkeypatch):
    data = _gait3d_case(tmp_path, num_ids=4, seed=7)  # 4 gallery sequences < 10
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(opengait.evaluator, "get_msg_mgr", _log_only)
    with pytest.raises(IndexError):
        opengait.evaluator.evaluate_Gait3D(dict(data), "Gait3D")
    ours = evaluate_gait3d(dict(data), "Gait3D")
    assert ours["scalar/test_accuracy/Rank-5"] == ours["scalar/test_accuracy/Rank-10"] == 100.0
    # ranks within the gallery agree with OpenGait's CMC
    mask = np.array([t == "camid0_videoid2" for t in data["types"]])
    dist = pairwise_distance(data["embeddings"][mask], data["embeddings"][~mask])
    cmc, _, _ = opengait.metric.evaluate_rank(dist, np.array(data["labels"])[mask], np.array(data["labels"])[~mask])
    assert ours["scalar/test_accuracy/Rank-1"] == pytest.approx(cmc[0] * 100, rel=1e-6)


def test_grew_and_hid_files_equal_opengaits_writers(opengait, cuda_on_cpu, tmp_path, monkeypatch):
    from kprpe_gait.eval.submission import nearest_labels, write_challenge_csv, write_grew_csv

    rng = np.random.default_rng(8)
    num_gallery, num_probes = 30, 6
    gallery_labels = [f"{i:05d}" for i in rng.integers(1, 15, num_gallery)]
    data = {  # GREW layout: gallery types 01 / 02, probe type 03 with the video id as view
        "embeddings": _features(9, num_gallery + num_probes),
        "labels": gallery_labels + ["probe"] * num_probes,
        "types": ["01", "02"] * (num_gallery // 2) + ["03"] * num_probes,
        "views": ["000"] * num_gallery + [f"{rng.integers(1 << 60):x}" for _ in range(num_probes)],
    }
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(opengait.evaluator, "get_msg_mgr", _log_only)
    opengait.evaluator.GREW_submission(dict(data), "GREW")
    (theirs,) = (tmp_path / "GREW_result").iterdir()
    probe, gallery = data["embeddings"][num_gallery:], data["embeddings"][:num_gallery]
    dist = pairwise_distance(probe, gallery)
    ours = write_grew_csv(tmp_path / "ours.csv", data["views"][num_gallery:], gallery_labels, dist)
    assert ours.read_bytes() == theirs.read_bytes()

    # HID: probes are labelled "probe" and named by their view; prediction = nearest gallery label
    opengait.evaluator.HID_submission(dict(data), "HID", rerank=False)
    (theirs_hid,) = (tmp_path / "HID_result").iterdir()
    predicted = nearest_labels(dist, gallery_labels)
    ours_hid = write_challenge_csv(tmp_path / "ours_hid.csv", data["views"][num_gallery:], predicted)
    assert ours_hid.read_bytes() == theirs_hid.read_bytes()
