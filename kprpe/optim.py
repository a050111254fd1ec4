"""Optimisation helpers shared by the task packages' trainers.

* :func:`warmup_cosine`: linear warm-up then cosine decay, a pure function of the step (no scheduler
  state to checkpoint, so a resumed run gets exactly the learning rate the uninterrupted one had).
* :func:`weight_decay_groups`: parameter groups without weight decay on biases and norm weights
  (tensors with fewer than 2 dimensions), as timm / insightface (``filter_bias_and_bn``) do.
* :func:`scale_lr_of`: some parameters (e.g. KP-RPE's ``W_L``) moved into groups of their own with a
  learning-rate multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["scale_lr_of", "set_learning_rate", "warmup_cosine", "weight_decay_groups"]


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0) -> float:
    """The learning rate of optimiser step ``step`` (0-based).

    ``base_lr * (step + 1) / warmup_steps`` for ``step < warmup_steps``, then a half cosine from ``base_lr``
    at ``warmup_steps`` down to ``min_lr`` at ``total_steps`` (and ``min_lr`` after it).
    """
    if total_steps < 1 or warmup_steps < 0 or min_lr > base_lr:
        raise ValueError(f"need total_steps >= 1, warmup_steps >= 0, min_lr <= base_lr; got "
                         f"{total_steps}, {warmup_steps}, {min_lr} > {base_lr}")  # fmt: skip
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to ``lr`` times its ``lr_scale`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def weight_decay_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]], weight_decay: float, skip: Iterable[str] = ()
) -> list[dict]:
    """``[{params: decayed, weight_decay}, {params: biases / norms / names in skip, weight_decay: 0}]``."""
    skip = set(skip)
    decay, no_decay = [], []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") or name in skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def scale_lr_of(groups: list[dict], params: Iterable[torch.nn.Parameter], scale: float) -> list[dict]:
    """``groups`` with ``params`` moved out into copies of their groups whose learning rate is ``scale`` times.

    Each new group keeps its origin's settings (weight decay, ...), gets ``lr_scale = scale`` (read by
    :func:`set_learning_rate`) and, when its origin has an ``lr``, ``lr * scale`` (read by schedulers that
    start from each group's initial ``lr``). ``scale == 1`` returns ``groups`` unchanged (the same layout
    as before, so existing optimiser checkpoints still load). Empty groups are dropped.
    """
    if not scale > 0:
        raise ValueError(f"a learning-rate scale must be > 0, got {scale}")
    if scale == 1.0:
        return groups
    chosen = {id(p) for p in params}
    out: list[dict] = []
    scaled: list[dict] = []
    for group in groups:
        keep = [p for p in group["params"] if id(p) not in chosen]
        moved = [p for p in group["params"] if id(p) in chosen]
        if keep:
            out.append({**group, "params": keep})
        if moved:
            extra = {**group, "params": moved, "lr_scale": group.get("lr_scale", 1.0) * scale}
            if "lr" in group:
                extra["lr"] = group["lr"] * scale
            if "name" in group:
                extra["name"] = f"{group['name']}_x{scale:g}"
            scaled.append(extra)
    return out + scaled
