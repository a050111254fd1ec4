"""``kprpe-gait submit`` on tiny sets laid out like GREW, HID and MGR'24, with OpenGait's partition shapes.

Each test runs the **command** with a silhouette-only network (no ``01-joints.pkl`` anywhere) and
compares its ``submission.csv`` / ``submission.zip`` byte for byte with

* a transcription of the writers' formats (always), built from the same features, and
* OpenGait's own ``GREW_submission`` / ``HID_submission`` (and ``MGR_submission`` where the clone has
  it) under ``$OPENGAIT_ROOT``: their source is read and the functions are executed with OpenGait's
  ``cuda_dist`` and ``re_ranking`` on the CPU (``torch.Tensor.cuda`` patched to return the tensor),
  without importing the rest of OpenGait (its utils need torchvision).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import string
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from kprpe_gait.cli import main
from kprpe_gait.eval import pairwise_distance
from kprpe_gait.eval.rerank import k_reciprocal_rerank

REPO = Path(__file__).resolve().parents[3]
SIL_CONFIG = REPO / "configs" / "gait3d" / "synthgait_smoke.yaml"  # SwinGait-2D without KP-RPE
FRAMES = 4


def _video_id(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list(string.ascii_letters + string.digits), 8))


def _sequence(folder: Path, name: str, rng: np.random.Generator) -> None:
    """One silhouette-only sequence: ``folder/<name>.pkl`` (T, 64, 64) uint8, as OpenGait's pretreatment writes."""
    folder.mkdir(parents=True)
    sils = (rng.random((FRAMES, 64, 64)) > 0.6).astype(np.uint8) * 255
    (folder / f"{name}.pkl").write_bytes(pickle.dumps(sils))


def _config(root: Path, eval_func: str) -> Path:
    cfg = yaml.safe_load(SIL_CONFIG.read_text())
    cfg["evaluator_cfg"]["eval_func"] = eval_func
    cfg["evaluator_cfg"]["transform"] = [{"type": "BaseSilCuttingTransform"}]  # OpenGait's default cut
    cfg["evaluator_cfg"].pop("partition")
    path = root / f"{eval_func}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("model")
    from kprpe_gait.models import build_from_model_cfg

    torch.manual_seed(0)
    cfg = yaml.safe_load(SIL_CONFIG.read_text())
    net = build_from_model_cfg(cfg["model_cfg"])
    torch.save({"model": {f"net.{k}": v for k, v in net.state_dict().items()}}, root / "ckpt.pt")
    configs = {f: _config(root, f) for f in ("GREW_submission", "HID_submission", "MGR_submission")}
    return SimpleNamespace(checkpoint=root / "ckpt.pt", configs=configs, model_cfg=cfg["model_cfg"])


@pytest.fixture(scope="module")
def grew(tmp_path_factory) -> SimpleNamespace:
    """OpenGait's GREW layout: ``<id>/01|02/<videoId>/<videoId>.pkl``, ``probe/03/<videoId>/<videoId>.pkl``."""
    root = tmp_path_factory.mktemp("grew")
    rng = np.random.default_rng(1)
    ids = [f"{i:05d}" for i in range(1, 12)]  # 22 gallery sequences: OpenGait's topk(20) needs >= 20
    for identity in ids:
        for seq_type in ("01", "02"):
            vid = _video_id(rng)
            _sequence(root / "pkl" / identity / seq_type / vid, vid, rng)
    probes = [_video_id(rng) for _ in range(5)]
    for vid in probes:
        _sequence(root / "pkl" / "probe" / "03" / vid, vid, rng)
    (root / "GREW.json").write_text(json.dumps({"TRAIN_SET": ["00001train"], "TEST_SET": [*ids, "probe"]}))
    return SimpleNamespace(root=root, data=root / "pkl", partition=root / "GREW.json", test=[*ids, "probe"])


def _challenge_set(tmp_path_factory, name: str, seed: int, probe_layout: str) -> SimpleNamespace:
    """Gallery ``<id>/<type>/<view>/``, probes ``probe/<type>/<view>/`` (``probe_layout``: which level is the video)."""
    root = tmp_path_factory.mktemp(name)
    rng = np.random.default_rng(seed)
    ids = [f"{i:04d}" for i in range(500, 506)]
    for identity in ids:
        for seq in range(2):
            seq_type = f"{seq:02d}" if name == "hid" else f"camid{seq}_videoid{seq + 1}"
            view = "default" if name == "hid" else f"seq{seq}"
            _sequence(root / "pkl" / identity / seq_type / view, seq_type, rng)
    videos = [_video_id(rng) for _ in range(7)]
    for vid in videos:
        outer, inner = (vid, "default") if probe_layout == "type" else ("camid9_videoid1", vid)
        _sequence(root / "pkl" / "probe" / outer / inner, vid, rng)
    (root / "partition.json").write_text(json.dumps({"TRAIN_SET": ["0000"], "TEST_SET": [*ids, "probe"]}))
    return SimpleNamespace(root=root, data=root / "pkl", partition=root / "partition.json", test=[*ids, "probe"],
                           videos=videos)  # fmt: skip


@pytest.fixture(scope="module")
def hid(tmp_path_factory) -> SimpleNamespace:
    """OpenGait's ``pretreatment_HID.py`` layout: ``<id>/<seq>/default/``, ``probe/<videoID>/default/``."""
    return _challenge_set(tmp_path_factory, "hid", 2, probe_layout="type")


@pytest.fixture(scope="module")
def mgr(tmp_path_factory) -> SimpleNamespace:
    """Gait3D-shaped MGR'24 data: ``<id>/camidX_videoidY/seqZ/``, probes ``probe/<camera>/<videoID>/``."""
    return _challenge_set(tmp_path_factory, "mgr", 3, probe_layout="view")


def _submit(model, dataset, out: Path, eval_func: str, *extra: str) -> list[str]:
    return ["submit", "--config", str(model.configs[eval_func]), "--checkpoint", str(model.checkpoint),
            "--data", str(dataset.data), "--partition", str(dataset.partition), "--out", str(out),
            "--device", "cpu", "--no-progress", *extra]  # fmt: skip


def _features(model, dataset) -> dict:
    """What the command embeds: the same network, data, cut (64 // 64 * 10) and batching."""
    from kprpe_gait.models import build_from_model_cfg, load_weights
    from kprpe_gait.train import extract_features

    net = build_from_model_cfg(model.model_cfg)
    load_weights(net, model.checkpoint)
    return extract_features(net, dataset.data, ids=dataset.test, cut=None, progress=False)


def _zip_member(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["submission.csv"]
        return archive.read("submission.csv")


def _assert_packaged(out: Path, expected: bytes) -> None:
    assert (out / "submission.csv").read_bytes() == expected
    assert _zip_member(out / "submission.zip") == expected


# --- transcriptions of the writers' formats (OpenGait's evaluator.py) ---------------------------------


def grew_text(feat: dict, top: int = 20) -> str:
    """``GREW_submission``: gallery types 01/02, probes type 03, probe id = view, 20 integer labels."""
    types, views, labels = (np.asarray(feat[k]) for k in ("types", "views", "labels"))
    gal, pro = np.isin(types, ["01", "02"]), types == "03"
    dist = pairwise_distance(feat["embeddings"][pro], feat["embeddings"][gal])
    lines = ["videoId," + ",".join(f"rank{i}" for i in range(1, top + 1))]
    for vid, row in zip(views[pro], np.argsort(dist, axis=1, kind="stable")[:, :top]):
        lines.append(",".join([vid, *(str(int(x)) for x in labels[gal][row])]))
    return "\n".join(lines) + "\n"


def challenge_text(feat: dict, ids_from: str = "views", rerank: bool = False) -> str:
    """``HID_submission`` / ``MGR_submission``: probes labelled 'probe', ``videoID,label`` of the nearest."""
    labels, ids = np.asarray(feat["labels"]), np.asarray(feat[ids_from])
    pro = labels == "probe"
    emb = feat["embeddings"]
    if rerank:
        both = np.concatenate([emb[pro], emb[~pro]])
        dist = k_reciprocal_rerank(pairwise_distance(both, both), int(pro.sum()))
    else:
        dist = pairwise_distance(emb[pro], emb[~pro])
    nearest = labels[~pro][np.argsort(dist, axis=1, kind="stable")[:, 0]]
    return "videoID,label\n" + "".join(f"{v},{g}\n" for v, g in zip(ids[pro], nearest))


# --- OpenGait's writers, executed from its source -------------------------------------------------------


def _functions(path: Path, names: set[str], namespace: dict) -> dict:
    """Execute only the named top-level functions of a source file in ``namespace``."""
    tree = ast.parse(path.read_text())
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return {n: namespace[n] for n in names if n in namespace}


@pytest.fixture(scope="module")
def opengait() -> dict:
    root = os.environ.get("OPENGAIT_ROOT")
    if not root:
        pytest.skip("set OPENGAIT_ROOT to an OpenGait clone to compare with its GREW/HID/MGR writers")
    evaluation = Path(root) / "opengait" / "evaluation"
    if not (evaluation / "evaluator.py").is_file():
        pytest.skip(f"OPENGAIT_ROOT={root} has no opengait/evaluation/evaluator.py")
    import time

    import torch.nn.functional as F  # noqa: N812

    log = SimpleNamespace(log_info=lambda *a, **k: None)
    namespace = {"np": np, "torch": torch, "F": F, "os": os, "strftime": time.strftime,
                 "localtime": time.localtime, "get_msg_mgr": lambda: log,
                 "mkdir": lambda p: os.makedirs(p, exist_ok=True)}  # fmt: skip
    _functions(evaluation / "metric.py", {"cuda_dist"}, namespace)
    _functions(evaluation / "re_rank.py", {"re_ranking"}, namespace)
    return _functions(evaluation / "evaluator.py", {"GREW_submission", "HID_submission", "MGR_submission"}, namespace)


def _opengait_file(monkeypatch, tmp_path: Path, writer, feat: dict, **kwargs) -> bytes:
    """Run one of OpenGait's writers in an empty folder; the bytes of the one file it writes."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    work = tmp_path / "opengait_cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    writer(feat, kwargs.pop("dataset"), **kwargs)
    (written,) = [p for p in work.rglob("*.csv")]
    return written.read_bytes()


# --- GREW ------------------------------------------------------------------------------------------------


def test_grew_command_writes_opengaits_file(model, grew, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_submit(model, grew, out, "GREW_submission")) == 0
    printed = capsys.readouterr().out
    assert "grew: 5 probes, 22 gallery sequences" in printed and "no metrics" in printed
    assert sorted(p.name for p in out.iterdir()) == ["distances.npz", "submission.csv", "submission.zip"]
    assert "codalab.lisn.upsaclay.fr/competitions/3409" in printed and f"wrote {out / 'submission.zip'}" in printed
    expected = grew_text(_features(model, grew)).encode()
    _assert_packaged(out, expected)
    first = expected.decode().splitlines()[1].split(",")[0]
    assert len(first) == 8 and "-" not in first  # the video id, not 'probe-03-<id>'


def test_grew_template_form(model, grew, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_submit(model, grew, out, "GREW_submission", "--grew-form", "template", "--formats", "grew")) == 0
    lines = grew_text(_features(model, grew)).splitlines()
    rows = [lines[0] + ",rank1_distractor"] + [f"{row},{row.split(',')[1]}" for row in lines[1:]]
    _assert_packaged(out, ("\r\n".join(rows) + "\r\n").encode())


@pytest.mark.opengait
def test_grew_equals_opengait_grew_submission(model, grew, opengait, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(_submit(model, grew, out, "GREW_submission")) == 0
    theirs = _opengait_file(monkeypatch, tmp_path, opengait["GREW_submission"], _features(model, grew), dataset="GREW")
    _assert_packaged(out, theirs)


# --- HID (pretreatment_HID.py layout: the video id is the type folder) ---------------------------------


def test_hid_duplicate_view_ids_are_refused_with_the_fix(model, hid, tmp_path, capsys):
    assert main(_submit(model, hid, tmp_path / "out", "HID_submission")) == 1
    err = capsys.readouterr().err
    assert "1 probe ids occur more than once as the view folder" in err and "--probe-id type" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("rerank", [False, True])
def test_hid_command(model, hid, tmp_path, capsys, rerank):
    out = tmp_path / "out"
    extra = ["--probe-id", "type"] + (["--rerank"] if rerank else [])
    assert main(_submit(model, hid, out, "HID_submission", *extra)) == 0
    printed = capsys.readouterr().out
    assert "hid: 7 probes, 12 gallery sequences" in printed and "competitions/21845" in printed
    expected = challenge_text(_features(model, hid), ids_from="types", rerank=rerank)
    _assert_packaged(out, expected.encode())
    assert sorted(line.split(",")[0] for line in expected.splitlines()[1:]) == sorted(hid.videos)


@pytest.mark.opengait
@pytest.mark.parametrize("rerank", [False, True])
def test_hid_equals_opengait_hid_submission(model, hid, opengait, tmp_path, monkeypatch, capsys, rerank):
    out = tmp_path / "out"
    extra = ["--probe-id", "type"] + (["--rerank"] if rerank else [])
    assert main(_submit(model, hid, out, "HID_submission", *extra)) == 0
    feat = _features(model, hid)
    feat["views"] = feat["types"]  # OpenGait writes the view field; in this layout the video id is the type
    theirs = _opengait_file(monkeypatch, tmp_path, opengait["HID_submission"], feat, dataset="HID", rerank=rerank)
    _assert_packaged(out, theirs)


# --- MGR'24 ------------------------------------------------------------------------------------------------


def test_mgr_command(model, mgr, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_submit(model, mgr, out, "MGR_submission", "--formats", "challenge")) == 0
    printed = capsys.readouterr().out
    assert "mgr: 7 probes, 12 gallery sequences" in printed and "competitions/20040" in printed
    assert sorted(p.name for p in out.iterdir()) == ["submission.csv", "submission.zip"]
    _assert_packaged(out, challenge_text(_features(model, mgr)).encode())


@pytest.mark.opengait
@pytest.mark.opengait_fork  # MGR_submission is in Gait3D-Benchmark's OpenGait fork, not in the pinned OpenGait
def test_mgr_equals_opengait_writer(model, mgr, opengait, tmp_path, monkeypatch, capsys):
    if "MGR_submission" not in opengait:
        pytest.skip("this OpenGait has no MGR_submission (it lives in Gait3D-Benchmark's OpenGait fork)")
    out = tmp_path / "out"
    assert main(_submit(model, mgr, out, "MGR_submission")) == 0
    theirs = _opengait_file(monkeypatch, tmp_path, opengait["MGR_submission"], _features(model, mgr), dataset="MGR")
    _assert_packaged(out, theirs)


# --- choosing the benchmark and its errors ---------------------------------------------------------------


def test_benchmark_flag_and_partition_errors(model, grew, hid, tmp_path, capsys):
    # the Gait3D-evaluating config with GREW.json: no PROBE_SET, and the error says what to pass
    gait3d_cfg = tmp_path / "gait3d.yaml"
    cfg = yaml.safe_load(model.configs["GREW_submission"].read_text())
    cfg["evaluator_cfg"]["eval_func"] = "evaluate_Gait3D"
    gait3d_cfg.write_text(yaml.safe_dump(cfg))
    args = _submit(model, grew, tmp_path / "out", "GREW_submission")
    args[args.index("--config") + 1] = str(gait3d_cfg)
    assert main(args) == 1
    assert "has no PROBE_SET" in (err := capsys.readouterr().err) and "--benchmark grew" in err
    assert main(args + ["--benchmark", "grew", "--formats", "grew"]) == 0  # the flag overrides the config
    capsys.readouterr()

    no_probe = tmp_path / "no_probe.json"
    no_probe.write_text(json.dumps({"TEST_SET": grew.test[:-1]}))
    assert main(_submit(model, grew, tmp_path / "o2", "GREW_submission", "--partition", str(no_probe))) == 1
    assert "has no 'probe' entry" in capsys.readouterr().err
    assert main(_submit(model, grew, tmp_path / "o3", "GREW_submission", "--formats", "challenge")) == 1
    assert "the GREW server takes the 'grew' format" in capsys.readouterr().err
    assert main(_submit(model, hid, tmp_path / "o4", "HID_submission", "--formats", "grew")) == 1
    assert "the HID server takes the 'challenge' format" in capsys.readouterr().err
    no_test = tmp_path / "no_test.json"
    no_test.write_text(json.dumps({"TRAIN_SET": ["0000"]}))
    assert main(_submit(model, hid, tmp_path / "o5", "HID_submission", "--partition", str(no_test))) == 1
    assert "has no TEST_SET list" in capsys.readouterr().err
    assert not any((tmp_path / o).exists() for o in ("o2", "o3", "o4", "o5"))
