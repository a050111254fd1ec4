import json

import pytest
import torch

from kprpe_gait import cli, demo


def test_quick_demo_end_to_end_and_rerun_reuses_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for arm in demo.ARMS.values():
        assert f"| {arm.name} |" in printed
    assert "mAP misaligned" in printed and "Keypoint reliance" in printed and "mAP mean pose" in printed
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["results"]) == set(demo.ARMS)
    for model, results in summary["results"].items():
        assert set(results) == set(demo.SPLITS)
        for metrics in results.values():
            assert set(demo.METRICS) <= set(metrics) and all(0 <= metrics[m] <= 100 for m in demo.METRICS)
        for split in demo.PROBE_SPLITS:  # the reliance probe: three joint modes, bias rows per layer
            probe = summary["reliance"][model][split]
            assert set(probe["metrics"]) == {"own", "mean_pose", "shuffled"} and len(probe["bias"]) == 4
            assert probe["metrics"]["own"] == results[split]
    # the Swin model and the control cannot depend on the joints: exactly the same numbers with any joints
    for model in ("swin", "kprpe_const"):
        probe = summary["reliance"][model]["misaligned"]
        assert probe["metrics"]["own"] == probe["metrics"]["mean_pose"] == probe["metrics"]["shuffled"]
        assert probe["embedding_change"] == 0.0 and probe["keypoint_bias"] == 0.0
    assert summary["train"]["kprpe"]["iterations"] == demo.PRESETS["quick"].iterations
    assert (out / "results.png").stat().st_size > 10_000
    for model in demo.ARMS:
        assert any((out / "tb" / model).glob("events.out.tfevents*"))
        assert (out / "runs" / model / "checkpoints" / "iter-00003.pt").is_file()
    assert (out / "synthgait-tiny" / "pkl-misaligned").is_dir()

    # a second run finds the data and the finished checkpoints: no training, same numbers
    assert cli.main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["results"] == summary["results"]
    assert again["train"]["swin"]["frames_per_s"] is None  # nothing left to train


def test_format_table_layout():
    summary = {"results": {
        "swin": {"aligned": {"Rank-1": 50.0, "Rank-5": 75.0, "mAP": 40.123, "mINP": 30.0},
                 "misaligned": {"Rank-1": 25.0, "Rank-5": 50.0, "mAP": 20.0, "mINP": 10.0}},
        "kprpe": {"aligned": {"Rank-1": 60.0, "Rank-5": 80.0, "mAP": 45.0, "mINP": 35.0}},
    }}  # fmt: skip
    lines = demo.format_table(summary).splitlines()
    assert lines[0] == "| model | Rank-1 aligned | mAP aligned | Rank-1 misaligned | mAP misaligned |"
    assert lines[2] == "| SwinGait-2D | 50.00 | 40.12 | 25.00 | 20.00 |"
    assert lines[3] == "| SwinGait-2D + KP-RPE | 60.00 | 45.00 | - | - |"
    full = demo.format_table(summary, demo.METRICS).splitlines()
    assert full[2] == "| SwinGait-2D | 50.00 | 75.00 | 40.12 | 30.00 | 25.00 | 50.00 | 20.00 | 10.00 |"


def test_opengait_root_delegates_to_the_plugin(tmp_path, monkeypatch, capsys):
    from kprpe_gait.opengait import demo as og_demo

    calls = {}

    def fake_run(data_dir, out_dir, opengait_root, iters, **kwargs):
        calls.update(data_dir=data_dir, root=opengait_root, iters=iters, **kwargs)
        metrics = {"Rank-1": 10.0, "Rank-5": 20.0, "Rank-10": 30.0, "mAP": 15.0, "mINP": 5.0}
        return {
            "runner": "opengait",
            "iters": iters,
            "results": {m: {"aligned": metrics, "misaligned": metrics} for m in ("swin", "kprpe")},
        }

    monkeypatch.setattr(og_demo, "run_opengait_demo", fake_run)
    out = tmp_path / "og"
    assert (
        cli.main(["demo", "--quick", "--out", str(out), "--iters", "7", "--opengait-root", "/clone", "--no-progress"])
        == 0
    )
    assert calls["root"] == "/clone" and calls["iters"] == 7 and (calls["data_dir"] / "partition.json").is_file()
    assert json.loads((out / "results.json").read_text())["runner"] == "opengait"
    assert (out / "results.png").is_file() and "| SwinGait-2D | 10.00" in capsys.readouterr().out


def test_bad_arguments():
    with pytest.raises(SystemExit, match="--iters must be >= 1"):
        cli.main(["demo", "--quick", "--iters", "0"])


def test_kprpe_only_with_the_window_grid(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--quick", "--out", str(out), "--no-progress", "--models", "kprpe", "--kprpe-grid", "window"]
    assert cli.main(args) == 0
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["results"]) == {"kprpe"} and summary["preset"]["kprpe_grid"] == "window"
    checkpoint = torch.load(out / "runs" / "kprpe-window" / "checkpoints" / "iter-00003.pt", weights_only=False)
    assert checkpoint["config"]["model"]["kprpe_grid"] == "window"
    assert not (out / "runs" / "swin").exists()
    with pytest.raises(SystemExit, match="--models"):
        cli.main(["demo", "--quick", "--models", "vit"])
