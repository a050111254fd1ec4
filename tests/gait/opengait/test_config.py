"""Strict config keys: unknown keys are named, keys inherited unchanged from default.yaml are not."""

from __future__ import annotations

import pytest
import torch

from kprpe_gait.opengait.config import check_keys, constructor_keys, load_opengait_defaults, split_known


def test_constructor_keys_of_classes_and_functions():
    assert {"lr", "betas", "weight_decay"} <= constructor_keys(torch.optim.AdamW, ("self", "params"))
    assert "params" not in constructor_keys(torch.optim.AdamW, ("self", "params"))

    def f(data, dataset_name=None, *, metric="euc", **kwargs):
        return data

    assert constructor_keys(f) == {"data", "dataset_name", "metric"}


def test_split_known_separates_inherited_defaults():
    cfg = {"lr": 3e-4, "momentum": 0.9, "weight_decay": 0.02, "betas": [0.9, 0.99], "lrr": 1}
    known, unknown, ignored = split_known(cfg, {"lr", "weight_decay", "betas"}, {"momentum": 0.9, "lrr": 2})
    assert known == {"lr": 3e-4, "weight_decay": 0.02, "betas": [0.9, 0.99]}
    assert ignored == ["momentum"]  # inherited with its default value
    assert unknown == ["lrr"]  # same name as a default but another value: the user's typo


def test_check_keys_names_the_unknown_key_and_lists_valid_ones():
    with pytest.raises(
        ValueError, match=r"optimizer_cfg \(AdamW\): unknown key 'wieght_decay'; valid keys: .*weight_decay"
    ):
        check_keys("optimizer_cfg (AdamW)", {"lr": 1.0, "wieght_decay": 0.1}, {"lr", "weight_decay"})
    assert check_keys("s", {"lr": 1.0, "momentum": 0.9}, {"lr"}, {"momentum": 0.9}) == {"lr": 1.0}
    with pytest.raises(TypeError, match="mapping"):
        check_keys("s", ["lr"], {"lr"})


def test_load_opengait_defaults(tmp_path):
    assert load_opengait_defaults(tmp_path / "absent.yaml") == {}
    path = tmp_path / "default.yaml"
    path.write_text("optimizer_cfg:\n  lr: 0.1\n  solver: SGD\n")
    assert load_opengait_defaults(path) == {"optimizer_cfg": {"lr": 0.1, "solver": "SGD"}}
