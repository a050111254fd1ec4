"""kprpe.optim (warm-up + cosine, weight-decay groups), kprpe.scalars (resumable TensorBoard scalars), kprpe.seeding."""

from __future__ import annotations

import math

import pytest
import torch

from kprpe.optim import set_learning_rate, warmup_cosine, weight_decay_groups
from kprpe.scalars import ScalarLog


def test_warmup_cosine_by_hand():
    lrs = [warmup_cosine(s, 10, 2, 1.0, 0.1) for s in range(12)]
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)  # linear warm-up
    assert lrs[2] == pytest.approx(1.0)  # the cosine starts at the base rate
    assert lrs[6] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 4 / 8)))
    assert lrs[10] == pytest.approx(0.1) and lrs[11] == pytest.approx(0.1)
    assert warmup_cosine(0, 5, 0, 2.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        warmup_cosine(0, 0, 0, 1.0)


def test_weight_decay_groups_and_lr_scale():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    extra = torch.nn.Parameter(torch.zeros(2, 2))
    named = [*model.named_parameters(), ("pos_embed", extra)]
    decay, no_decay = weight_decay_groups(named, 0.05, skip={"pos_embed"})
    assert decay["params"] == [model[0].weight] and decay["weight_decay"] == 0.05
    assert {id(p) for p in no_decay["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(extra)}
    optimizer = torch.optim.AdamW([decay, {**no_decay, "lr_scale": 0.1}])
    set_learning_rate(optimizer, 2.0)
    assert [g["lr"] for g in optimizer.param_groups] == [2.0, pytest.approx(0.2)]


def test_scalar_log_history_prefix_and_lazy_writer(tmp_path):
    log = ScalarLog(tmp_path / "tb", history=[{"step": 1, "loss": 3.0}])
    assert not (tmp_path / "tb").exists()  # nothing logged, no folder
    log.log({"loss": 2.0, "val/acc": 0.5}, 2)
    log.log({"x": 1.0}, 3, keep=False)
    log.close()
    assert log.history == [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0, "val/acc": 0.5}]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "val/acc", "train/x"}


def test_step_seed_is_a_pure_function_with_independent_streams():
    from kprpe.seeding import step_seed

    assert step_seed(0, 0, 5) == step_seed(0, 0, 5)
    seeds = {step_seed(0, r, s, k) for r in range(2) for s in range(50) for k in range(3)}
    assert len(seeds) == 300 and all(0 <= x < 2**63 for x in seeds)


def test_scale_lr_of_moves_chosen_parameters_into_scaled_copies_of_their_groups():
    from kprpe.optim import scale_lr_of

    a, b, c = (torch.nn.Parameter(torch.zeros(2, 2)) for _ in range(3))
    groups = [{"params": [a, b], "weight_decay": 0.05, "lr": 1.0, "name": "main"}, {"params": [c], "weight_decay": 0.0}]
    assert scale_lr_of(groups, [b], 1.0) is groups  # the old layout, so old optimiser states still load
    out = scale_lr_of(groups, [b, c], 10.0)
    assert [g["params"] for g in out] == [[a], [b], [c]]
    assert out[1] == {"params": [b], "weight_decay": 0.05, "lr": 10.0, "name": "main_x10", "lr_scale": 10.0}
    assert out[2]["weight_decay"] == 0.0 and out[2]["lr_scale"] == 10.0 and "lr" not in out[2]
    optimizer = torch.optim.AdamW(out, lr=1.0)
    set_learning_rate(optimizer, 0.5)
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 5.0, 5.0]
    with pytest.raises(ValueError, match="> 0"):
        scale_lr_of(groups, [a], 0.0)
