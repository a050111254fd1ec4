"""``kprpe-face demo --quick``: the whole pipeline (SynthFace -> three models -> aligned / unaligned / path)."""

from __future__ import annotations

import json

import pytest

from face.cli import main
from face.demo import ARMS, MODELS, PRESETS, TEST_SETS, format_table


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == list(ARMS)
    steps = PRESETS["quick"].path_steps
    for arm, entry in results["models"].items():
        assert entry["name"] == MODELS[arm] and entry["rpe"] == ARMS[arm].rpe
        assert list(entry["sets"]) == list(TEST_SETS)
        for probe in entry["sets"].values():  # every set scored with true / constant / shuffled landmarks
            assert set(probe["accuracy"]) == {"true", "constant", "shuffled"}
            assert all(0.0 <= a <= 1.0 for a in probe["accuracy"].values())
            assert len(probe["bias"]) == 1 and "1e-02" in probe["tar_at_far"]["true"]
        assert entry["path"]["t"] == [0.0, 1.0][:steps] and len(entry["path"]["accuracy"]) == steps
        assert (out / "runs" / arm / "tb").is_dir()
        assert (out / "runs" / arm / "checkpoints" / f"iter-{PRESETS['quick'].iterations:05d}.pt").is_file()
    # models without landmark input, and the control, read exactly "not used"
    for arm in ("none", "irpe", "kprpe_const"):
        probe = results["models"][arm]["sets"]["shift2"]
        assert probe["accuracy"]["true"] == probe["accuracy"]["constant"] == probe["accuracy"]["shuffled"]
        assert probe["keypoint_bias"] == 0.0 and probe["embedding_cosine"]["min"] > 0.9999
    assert results["models"]["none"]["parameters"] < results["models"]["kprpe"]["parameters"]
    assert (out / "results.png").stat().st_size > 1000
    table = (out / "table.md").read_text()
    assert table.strip() == format_table(results) and table.strip() in printed
    assert table.count("\n") == 2 + len(ARMS)  # header, rule, one row per arm, final newline
    assert "keypoint bias / logit spread" in table and f"| {MODELS['kprpe_const']} |" in table


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
    assert recipe.augment_config() == TrainConfig(train="x", out_dir="y", augment=preset.augment).augment_config()
    for key in ("iterations", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay"):
        assert getattr(recipe, key) == getattr(preset, key), key
