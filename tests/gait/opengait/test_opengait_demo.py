"""run_opengait_demo's orchestration, against a stand-in interpreter that plays OpenGait's part.

The stand-in receives exactly the launcher command the demo builds, reads the config it names and
writes what OpenGait would (a checkpoint after training, the metrics file after a test), with
metrics that tell the aligned and the misaligned split apart. The real thing runs in
``test_opengait_run.py`` (needs OPENGAIT_ROOT).
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
import yaml

from kprpe_gait.demo import format_table
from kprpe_gait.opengait.demo import run_opengait_demo

FAKE_PYTHON = """#!{python}
import json, pathlib, sys, yaml
args = sys.argv[1:]
assert args[:2] == ["-m", "kprpe_gait.opengait.launcher"], args
root = pathlib.Path(args[args.index("--opengait-root") + 1])
main = args[args.index("--") + 1:]
cfg = yaml.safe_load(open(main[main.index("--cfgs") + 1]))
phase = main[main.index("--phase") + 1]
log = {{"cpu": "--cpu" in args, "phase": phase, "model": cfg["model_cfg"]["model"]}}
print(json.dumps(log))
if phase == "train":
    t = cfg["trainer_cfg"]
    d = root / "output" / cfg["data_cfg"]["dataset_name"] / cfg["model_cfg"]["model"] / t["save_name"] / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    (d / "{{}}-{{:05d}}.pt".format(t["save_name"], t["total_iter"])).write_bytes(b"")
else:
    e = cfg["evaluator_cfg"]
    score = 10.0 if cfg["data_cfg"]["dataset_root"].endswith("pkl-misaligned") else 90.0
    score += 1.0 if cfg["model_cfg"]["model"].endswith("KPRPE") else 0.0
    keys = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")
    pathlib.Path(e["results_file"]).write_text(json.dumps({{"scalar/test_accuracy/" + k: score for k in keys}}))
"""


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "fake-python"
    path.write_text(FAKE_PYTHON.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def fake_layout(tmp_path):
    root = tmp_path / "OpenGait"
    (root / "opengait").mkdir(parents=True)
    (root / "opengait" / "main.py").write_text("")
    data = tmp_path / "synth"
    for folder in ("pkl", "pkl-misaligned"):
        (data / folder).mkdir(parents=True)
    (data / "partition.json").write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": [], "PROBE_SET": []}))
    return root, data


def test_demo_runs_train_and_both_test_splits_per_model(fake_python, fake_layout, tmp_path):
    root, data = fake_layout
    out = tmp_path / "out"
    summary = run_opengait_demo(data, out, root, iters=7, cpu=True, python=fake_python, progress=False,
                                batch=(3, 2), frames=5)  # fmt: skip
    assert summary["device"] == "cpu" and summary["iters"] == 7
    assert summary["results"] == {
        "swin": {"aligned": dict.fromkeys(("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"), 90.0),
                 "misaligned": dict.fromkeys(("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"), 10.0)},
        "kprpe": {"aligned": dict.fromkeys(("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"), 91.0),
                  "misaligned": dict.fromkeys(("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"), 11.0)},
    }  # fmt: skip
    assert Path(summary["checkpoints"]["kprpe"]) == (
        root / "output" / "SynthGait" / "SwinGait2DKPRPE" / "demo_kprpe" / "checkpoints" / "demo_kprpe-00007.pt"
    )
    cfg = yaml.safe_load(Path(summary["configs"]["kprpe"]["misaligned"]).read_text())
    assert cfg["data_cfg"]["dataset_root"] == str(data / "pkl-misaligned")
    assert cfg["evaluator_cfg"]["restore_hint"] == 7 and cfg["evaluator_cfg"]["partition"] == str(
        data / "partition.json"
    )
    assert (
        cfg["trainer_cfg"]["sampler"]["batch_size"] == [3, 2] and cfg["trainer_cfg"]["sampler"]["frames_num_fixed"] == 5
    )
    assert json.loads(Path(summary["logs"]["swin"]["train"]).read_text()) == {
        "cpu": True,
        "phase": "train",
        "model": "SwinGait2D",
    }
    assert json.loads((out / "opengait_demo.json").read_text()) == summary
    table = format_table(summary)  # the compact demo's table reads this runner's summary too
    assert "| SwinGait-2D + KP-RPE | 91.00 | 91.00 | 11.00 | 11.00 |" in table  # Rank-1 and mAP per split


def test_demo_reports_failures_and_bad_inputs(fake_layout, tmp_path):
    root, data = fake_layout
    failing = tmp_path / "failing-python"
    failing.write_text("#!/bin/sh\necho 'Traceback: boom' >&2\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(RuntimeError, match=r"(?s)OpenGait run failed \(exit 3\).*boom"):
        run_opengait_demo(data, tmp_path / "o", root, iters=1, cpu=True, python=str(failing), progress=False)
    with pytest.raises(FileNotFoundError, match="is not a SynthGait directory"):
        run_opengait_demo(tmp_path, tmp_path / "o", root, iters=1, progress=False)
    with pytest.raises(ValueError, match="unknown models"):
        run_opengait_demo(data, tmp_path / "o", root, models=("vit",), progress=False)
    with pytest.raises(FileNotFoundError, match="is not an OpenGait clone"):
        run_opengait_demo(data, tmp_path / "o", tmp_path, progress=False)
