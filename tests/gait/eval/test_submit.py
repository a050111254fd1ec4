"""``kprpe-gait submit`` end to end on a tiny random-weight model and random pickles, and its errors."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from kprpe_gait.cli import main
from kprpe_gait.eval import evaluate_retrieval, pairwise_distance
from kprpe_gait.eval.submission import read_challenge_csv, read_distance_npz, read_grew_csv

REPO = Path(__file__).resolve().parents[3]
SMOKE_CONFIG = REPO / "configs" / "gait3d" / "synthgait_smoke_kprpe.yaml"
TEST_IDS = ["0010", "0011", "0012", "0013"]
TYPES = ["cam0", "cam1", "cam2"]
PROBES = [f"{i}-cam0-seq0" for i in TEST_IDS]  # 4 probes, 8 gallery sequences


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    """Pickles ``<id>/<type>/seq0/{00-sils,01-joints}.pkl`` (6 frames), a partition, a config, a checkpoint."""
    root = tmp_path_factory.mktemp("submit")
    rng = np.random.default_rng(0)
    for identity in TEST_IDS:
        for seq_type in TYPES:
            folder = root / "pkl" / identity / seq_type / "seq0"
            folder.mkdir(parents=True)
            sils = (rng.random((6, 64, 64)) > 0.6).astype(np.uint8) * 255
            joints = np.concatenate([rng.uniform(12, 52, (6, 17, 2)), rng.uniform(0.2, 1, (6, 17, 1))], -1)
            (folder / "00-sils.pkl").write_bytes(pickle.dumps(sils))
            (folder / "01-joints.pkl").write_bytes(pickle.dumps(joints.astype(np.float32)))
    (root / "partition.json").write_text(json.dumps({"TRAIN_SET": ["0000"], "TEST_SET": TEST_IDS, "PROBE_SET": PROBES}))
    cfg = yaml.safe_load(SMOKE_CONFIG.read_text())
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))

    from kprpe_gait.models import build_from_model_cfg

    torch.manual_seed(0)
    net = build_from_model_cfg(cfg["model_cfg"])
    # OpenGait's checkpoint layout: {"model": state dict with the adapter's "net." prefix, ...}
    torch.save({"model": {f"net.{k}": v for k, v in net.state_dict().items()}, "iteration": 1}, root / "ckpt.pt")
    return root


def _args(d: Path, out: Path, *extra: str) -> list[str]:
    return ["submit", "--config", str(d / "config.yaml"), "--checkpoint", str(d / "ckpt.pt"), "--data", str(d / "pkl"),
            "--partition", str(d / "partition.json"), "--out", str(out), "--device", "cpu", "--no-progress", *extra]  # fmt: skip


def test_submit_end_to_end(fixture_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_args(fixture_dir, out)) == 0
    printed = capsys.readouterr().out
    assert "4 probes, 8 gallery sequences, metric euc, cut 10" in printed
    assert "Rank-1" in printed and "the GREW file ranks 8, not 20" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "distances.npz", "grew_submission.csv", "metrics.json", "submission.csv", "submission.zip",
    ]  # fmt: skip

    # the distance matrix: probes and gallery split by PROBE_SET, features of the checkpoint's network
    npz = read_distance_npz(out / "distances.npz")
    assert npz["probe_keys"] == PROBES and npz["metric"] == "euc"
    assert npz["gallery_keys"] == [f"{i}-{t}-seq0" for i in TEST_IDS for t in TYPES[1:]]
    assert npz["probe_labels"] == TEST_IDS and npz["gallery_labels"] == [i for i in TEST_IDS for _ in TYPES[1:]]
    assert npz["dist"].shape == (4, 8)

    from kprpe_gait.models import build_from_model_cfg, load_weights
    from kprpe_gait.train import extract_features

    cfg = yaml.safe_load((fixture_dir / "config.yaml").read_text())
    net = build_from_model_cfg(cfg["model_cfg"])
    load_weights(net, fixture_dir / "ckpt.pt")
    feats = extract_features(net, fixture_dir / "pkl", ids=TEST_IDS, cut=10, progress=False)
    probe = np.array([t == "cam0" for t in feats["types"]])
    expected = pairwise_distance(feats["embeddings"][probe], feats["embeddings"][~probe])
    np.testing.assert_allclose(npz["dist"], expected, rtol=1e-5, atol=1e-6)

    metrics = json.loads((out / "metrics.json").read_text())
    reference = evaluate_retrieval(npz["dist"], npz["probe_labels"], npz["gallery_labels"])
    assert {k: metrics[k] for k in reference} == pytest.approx(reference)
    assert metrics["metric"] == "euc"

    # GREW: every gallery sequence ranked (8 < 20), labels as integers; challenge: the nearest label
    ids, ranks = read_grew_csv(out / "grew_submission.csv")
    order = np.argsort(npz["dist"], axis=1, kind="stable")
    gallery = np.array(npz["gallery_labels"])
    assert ids == PROBES
    assert ranks == [[str(int(label)) for label in gallery[row]] for row in order]
    assert read_challenge_csv(out / "submission.csv") == (PROBES, [str(x) for x in gallery[order[:, 0]]])
    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert archive.namelist() == ["submission.csv"]
        assert archive.read("submission.csv") == (out / "submission.csv").read_bytes()


def test_submit_formats_and_cos(fixture_dir, tmp_path, capsys):
    out = tmp_path / "only_npz"
    assert main(_args(fixture_dir, out, "--formats", "npz", "--metric", "cos")) == 0
    assert sorted(p.name for p in out.iterdir()) == ["distances.npz", "metrics.json"]
    dist = read_distance_npz(out / "distances.npz")
    assert dist["metric"] == "cos" and np.all((dist["dist"] >= -1e-6) & (dist["dist"] <= 2 + 1e-6))


def test_submit_without_known_labels_skips_metrics(fixture_dir, tmp_path, capsys):
    # every sequence of ids 0010 and 0011 is a probe, the gallery holds only 0012 and 0013:
    # no probe identity occurs in the gallery, as with a challenge's unlabelled probes
    partition = tmp_path / "p.json"
    probes = [f"{i}-{t}-seq0" for i in TEST_IDS[:2] for t in TYPES]
    partition.write_text(json.dumps({"TEST_SET": TEST_IDS, "PROBE_SET": probes}))
    args = _args(fixture_dir, tmp_path / "out")
    args[args.index("--partition") + 1] = str(partition)
    assert main(args + ["--formats", "challenge"]) == 0
    assert "no metrics" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["submission.csv", "submission.zip"]


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 1
    return capsys.readouterr().err


def test_submit_errors(fixture_dir, tmp_path, capsys):
    d = fixture_dir
    args = _args(d, tmp_path / "out")

    def with_(option: str, value: str) -> list[str]:
        changed = list(args)
        changed[changed.index(option) + 1] = value
        return changed

    assert "no checkpoint at" in _error(capsys, with_("--checkpoint", str(tmp_path / "absent.pt")))
    no_model = tmp_path / "no_model.yaml"
    no_model.write_text(yaml.safe_dump({"data_cfg": {"dataset_name": "x"}}))
    assert "has no model_cfg section" in _error(capsys, with_("--config", str(no_model)))
    no_probe = tmp_path / "no_probe.json"
    no_probe.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": TEST_IDS}))
    assert "has no PROBE_SET" in _error(capsys, with_("--partition", str(no_probe)))
    absent = tmp_path / "absent_probe.json"
    absent.write_text(json.dumps({"TEST_SET": TEST_IDS, "PROBE_SET": PROBES + ["0010-cam9-seq0"]}))
    assert "1 PROBE_SET sequences are not in the data" in _error(capsys, with_("--partition", str(absent)))
    unknown_id = tmp_path / "unknown_id.json"
    unknown_id.write_text(json.dumps({"TEST_SET": TEST_IDS + ["0099"], "PROBE_SET": PROBES}))
    assert "TEST_SET identities have no folder" in _error(capsys, with_("--partition", str(unknown_id)))
    assert "no dataset folder" in _error(capsys, with_("--data", str(tmp_path / "nowhere")))
    assert "--formats takes" in _error(capsys, args + ["--formats", "grew,pdf"])
    assert "--top-k" in _error(capsys, args + ["--top-k", "0"])
    assert not (tmp_path / "out").exists()  # nothing written by a failed run


def test_checkpoint_that_does_not_fit_is_reported(fixture_dir, tmp_path, capsys):
    cfg = yaml.safe_load((fixture_dir / "config.yaml").read_text())
    cfg["model_cfg"]["embed_dim"] = 64
    cfg["model_cfg"]["SeparateBNNecks"]["in_channels"] = 64
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(cfg))
    args = _args(fixture_dir, tmp_path / "out")
    args[args.index("--config") + 1] = str(other)
    assert "does not fit this network" in _error(capsys, args)


def test_submit_reports_probes_left_out_of_the_metrics(fixture_dir, tmp_path, capsys):
    # all three sequences of 0010 are probes (no gallery match), the other ids keep one probe each
    partition = tmp_path / "p.json"
    probes = [f"0010-{t}-seq0" for t in TYPES] + PROBES[1:]
    partition.write_text(json.dumps({"TEST_SET": TEST_IDS, "PROBE_SET": probes}))
    args = _args(fixture_dir, tmp_path / "out")
    args[args.index("--partition") + 1] = str(partition)
    assert main(args + ["--formats", "npz"]) == 0
    assert "3 probes have no gallery sequence of their identity" in capsys.readouterr().out
    npz = read_distance_npz(tmp_path / "out" / "distances.npz")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    keep = [i for i, label in enumerate(npz["probe_labels"]) if label != "0010"]
    reference = evaluate_retrieval(npz["dist"][keep], np.array(npz["probe_labels"])[keep], npz["gallery_labels"])
    assert {k: metrics[k] for k in reference} == pytest.approx(reference)
