"""The shipped configs: every section valid for the plugin, and the Gait3D ones follow the paper's recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from kprpe_gait.models import build_from_model_cfg
from kprpe_gait.opengait.config import check_keys, constructor_keys
from kprpe_gait.opengait.registry import EVALUATOR_NAME, MODEL_NAMES
from kprpe_gait.opengait.transforms import SilJointTransform, check_transform_cfg

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "gait3d"
ALL = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


GAIT3D = ["swingait2d.yaml", "swingait2d_kprpe.yaml", "swingait2d_kprpe_deepgaitv2.yaml"]


def test_all_configs_exist():
    assert ALL == [*GAIT3D, "synthgait_smoke.yaml", "synthgait_smoke_kprpe.yaml"]


@pytest.mark.parametrize("name", ALL)
def test_config_sections_are_valid_for_the_plugin(name):
    cfg = load(name)
    model_cfg = cfg["model_cfg"]
    assert model_cfg["model"] in MODEL_NAMES
    net = build_from_model_cfg(model_cfg)
    kprpe = model_cfg["model"] == "SwinGait2DKPRPE"
    assert (net.rel_pos == "kprpe") == kprpe
    assert cfg["data_cfg"]["data_in_use"] == ([True, True] if kprpe else [True, False])
    for section in ("trainer_cfg", "evaluator_cfg"):
        SilJointTransform(**check_transform_cfg(f"{section}.transform", cfg[section]["transform"]))
    evaluator = check_transform_cfg("evaluator_cfg.transform", cfg["evaluator_cfg"]["transform"])
    assert not any(k.endswith("_prob") and v for k, v in evaluator.items())  # no augmentation at test time
    optimizer = dict(cfg["optimizer_cfg"])
    solver = getattr(torch.optim, optimizer.pop("solver"))
    optimizer.pop("stem_lr_scale")  # the plugin's own key, in every config
    check_keys("optimizer_cfg", optimizer, constructor_keys(solver, ("self", "params")))
    scheduler = dict(cfg["scheduler_cfg"])
    check_keys("scheduler_cfg", scheduler, constructor_keys(getattr(torch.optim.lr_scheduler, scheduler.pop("scheduler")),
                                                             ("self", "optimizer")))  # fmt: skip
    assert cfg["evaluator_cfg"]["eval_func"] == EVALUATOR_NAME
    assert cfg["evaluator_cfg"]["save_name"] == cfg["trainer_cfg"]["save_name"]
    assert [loss["log_prefix"] for loss in cfg["loss_cfg"]] == ["triplet", "softmax"]


@pytest.mark.parametrize("name", ALL)
def test_stem_lr_is_scaled_only_where_a_trained_stem_is_restored(name):
    cfg = load(name)
    restores = isinstance(cfg["trainer_cfg"]["restore_hint"], str)
    assert cfg["optimizer_cfg"]["stem_lr_scale"] == (0.1 if restores else 1.0)
    if restores:  # a converted DeepGaitV2 checkpoint holds only the stem and heads
        assert cfg["trainer_cfg"]["restore_ckpt_strict"] is False and cfg["trainer_cfg"]["optimizer_reset"] is True


@pytest.mark.parametrize("name", GAIT3D)
def test_gait3d_configs_follow_the_paper_recipe(name):
    cfg = load(name)
    optimizer = {k: v for k, v in cfg["optimizer_cfg"].items() if k != "stem_lr_scale"}
    assert optimizer == {"solver": "AdamW", "lr": 3e-4, "weight_decay": 2e-2}
    assert cfg["scheduler_cfg"]["scheduler"] == "CosineAnnealingWarmRestarts"  # SGDR
    # the restarts end a cycle exactly at the last iteration
    t0, mult, total = cfg["scheduler_cfg"]["T_0"], cfg["scheduler_cfg"]["T_mult"], cfg["trainer_cfg"]["total_iter"]
    assert total == 60000 and sum(t0 * mult**i for i in range(2)) == total
    sampler = cfg["trainer_cfg"]["sampler"]
    assert (
        sampler["batch_size"] == [32, 4] and sampler["frames_num_fixed"] == 30 and sampler["type"] == "TripletSampler"
    )
    triplet, softmax = cfg["loss_cfg"]
    assert (triplet["type"], triplet["margin"]) == ("TripletLoss", 0.2)
    assert (softmax["type"], softmax["scale"]) == ("CrossEntropyLoss", 16)
    assert cfg["model_cfg"]["SeparateBNNecks"]["class_num"] == 3000
    if cfg["model_cfg"]["model"] == "SwinGait2DKPRPE":  # the grid that led in the SynthGait demo (docs/gait.md)
        assert cfg["model_cfg"]["kprpe_grid"] == "window"
    assert cfg["data_cfg"]["dataset_partition"] == cfg["evaluator_cfg"]["partition"] == "./datasets/Gait3D/Gait3D.json"
    net = build_from_model_cfg(cfg["model_cfg"]).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 2, 64, 44), torch.rand(1, 2, 17, 3))["embeddings"].shape == (1, 256, 15)
