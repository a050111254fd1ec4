"""One recipe: the compact trainer's defaults are the Gait3D configs' recipe, read from the YAML."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from kprpe_gait.train import TrainConfig
from kprpe_gait.train.recipe import recipe_from_opengait

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "gait3d"


def load(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


@pytest.mark.parametrize("name", ["swingait2d.yaml", "swingait2d_kprpe.yaml", "swingait2d_kprpe_deepgaitv2.yaml"])
def test_train_config_defaults_are_the_gait3d_configs_recipe(name):
    recipe = recipe_from_opengait(load(name))
    defaults = dataclasses.asdict(TrainConfig("root", "partition.json", "out"))
    expected = {k: v for k, v in recipe.items() if k != "model"}
    if name.endswith("deepgaitv2.yaml"):  # the only difference: a restored stem trains at 0.1 x lr
        assert expected.pop("stem_lr_scale") == 0.1
        defaults.pop("stem_lr_scale")
    assert {k: defaults[k] for k in expected} == expected
    # what the text of the issue named: side cut 10 (64 -> 44), SGDR T_0 20k, T_mult 2, stem at full lr
    assert (defaults["cut"], defaults["sgdr_cycle"], defaults["sgdr_mult"]) == (10, 20000, 2)
    assert recipe["model"]["rel_pos"] == ("swin" if name == "swingait2d.yaml" else "kprpe")


def test_from_opengait_runs_a_configs_recipe_with_overrides(tmp_path):
    cfg = TrainConfig.from_opengait(CONFIGS / "synthgait_smoke_kprpe.yaml", "data/pkl", "data/p.json", str(tmp_path),
                                    iterations=7)  # fmt: skip
    smoke = load("synthgait_smoke_kprpe.yaml")
    assert cfg.iterations == 7 and cfg.lr == smoke["optimizer_cfg"]["lr"] and cfg.stem_lr_scale == 1.0
    assert cfg.batch_size == tuple(smoke["trainer_cfg"]["sampler"]["batch_size"]) and cfg.cut == 10
    assert cfg.model["rel_pos"] == "kprpe" and "num_classes" not in cfg.model
    assert cfg.augment == {"perspective_prob": 0.2, "flip_prob": 0.2, "rotate_prob": 0.2}


def test_recipe_rejects_what_the_compact_trainer_does_not_run():
    cfg = load("swingait2d_kprpe.yaml")
    with pytest.raises(ValueError, match="AdamW"):
        recipe_from_opengait({**cfg, "optimizer_cfg": {"solver": "SGD", "lr": 0.1}})
    with pytest.raises(ValueError, match="CosineAnnealingWarmRestarts"):
        recipe_from_opengait({**cfg, "scheduler_cfg": {"scheduler": "MultiStepLR"}})
    with pytest.raises(ValueError, match="SilJointTransform"):
        recipe_from_opengait(
            {**cfg, "trainer_cfg": {**cfg["trainer_cfg"], "transform": [{"type": "BaseSilTransform"}]}}
        )
