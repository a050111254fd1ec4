"""``kprpe-face demo --quick``: the whole pipeline (SynthFace -> three models -> aligned / unaligned / path)."""

from __future__ import annotations

import json

import pytest

from face.cli import main
from face.demo import MODELS, PRESETS, format_table


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == list(MODELS)
    steps = PRESETS["quick"].path_steps
    for rpe, entry in results["models"].items():
        assert entry["rpe"] == rpe and entry["name"] == MODELS[rpe]
        for split in ("aligned", "unaligned"):
            assert 0.0 <= entry[split]["accuracy"] <= 1.0 and "1e-02" in entry[split]["tar_at_far"]
            assert entry[split]["pairs"] == results["synthface"]["counts"]["pairs"]
        assert entry["path"]["t"] == [0.0, 1.0][:steps] and len(entry["path"]["accuracy"]) == steps
        assert (out / "runs" / rpe / "tb").is_dir()
        assert (out / "runs" / rpe / "checkpoints" / f"iter-{PRESETS['quick'].iterations:05d}.pt").is_file()
    # the three models differ only in rpe: same data, same number of parameters up to the RPE tables
    assert results["models"]["none"]["parameters"] < results["models"]["kprpe"]["parameters"]
    assert (out / "results.png").stat().st_size > 1000
    table = (out / "table.md").read_text()
    assert table.strip() == format_table(results) and table.strip() in printed
    assert table.count("\n") == 2 + len(MODELS)  # header, rule, one row per model, final newline


def test_demo_rejects_unknown_models(tmp_path):
    from face.demo import run_demo

    with pytest.raises(ValueError, match="unknown model"):
        run_demo(tmp_path, "quick", models=("vit",))
    with pytest.raises(ValueError, match="unknown demo preset"):
        run_demo(tmp_path, "huge")


def test_synthface_recipe_file_matches_the_demo_preset():
    """``configs/face/synthface_demo_kprpe.yaml`` writes out the demo's KP-RPE run; it must not drift."""
    from pathlib import Path

    from face.demo import DemoPreset
    from face.train import TrainConfig

    path = Path(__file__).resolve().parents[3] / "configs" / "face" / "synthface_demo_kprpe.yaml"
    recipe, preset = TrainConfig.from_yaml(path), DemoPreset()
    assert recipe.model == {**preset.model, "rpe": "kprpe"} and recipe.head == preset.head
    assert recipe.augment == preset.augment
    for key in ("iterations", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay"):
        assert getattr(recipe, key) == getattr(preset, key), key
