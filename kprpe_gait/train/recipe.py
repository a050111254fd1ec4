"""The training recipe of an OpenGait SwinGait-2D config, as :class:`~kprpe_gait.train.TrainConfig` fields.

The OpenGait YAML is the source of truth: the compact trainer runs a config's recipe with
``TrainConfig.from_opengait(path, ...)``, and :class:`~kprpe_gait.train.TrainConfig`'s defaults are the
paper's Gait3D recipe of ``configs/gait3d/swingait2d_kprpe.yaml`` (a test reads every Gait3D config
through :func:`recipe_from_opengait` and compares). What is read, and from where::

    optimizer_cfg   lr, weight_decay, stem_lr_scale (AdamW only)
    scheduler_cfg   T_0 -> sgdr_cycle, T_mult -> sgdr_mult, eta_min -> min_lr
                    (CosineAnnealingWarmRestarts only)
    trainer_cfg     total_iter -> iterations; sampler.batch_size, frames_num_fixed, frames_skip_num;
                    transform (one SilJointTransform): cutting -> cut, the *_prob / rotate_degree -> augment
    loss_cfg        TripletLoss margin, CrossEntropyLoss scale and eps (label smoothing)
    model_cfg       the SwinGait2D keyword arguments (:func:`kprpe_gait.models.build.model_kwargs`)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kprpe_gait.models.build import model_kwargs

__all__ = ["recipe_from_opengait"]

_AUGMENT_KEYS = ("perspective_prob", "affine_prob", "flip_prob", "rotate_prob", "rotate_degree")


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = cfg.get(name)
    if section is None:
        raise ValueError(f"the OpenGait config has no {name} section")
    if not isinstance(section, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(section).__name__}")
    return section


def _transform_options(trainer_cfg: Mapping[str, Any]) -> dict[str, Any]:
    entries = trainer_cfg.get("transform")
    entries = entries if isinstance(entries, list) else [entries]
    if len(entries) != 1 or not isinstance(entries[0], Mapping) or entries[0].get("type") != "SilJointTransform":
        raise ValueError(f"trainer_cfg.transform must be one '- type: SilJointTransform' entry, got {entries!r}")
    return {k: v for k, v in entries[0].items() if k != "type"}


def recipe_from_opengait(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``TrainConfig`` keyword arguments (all but paths and run settings) of an OpenGait SwinGait-2D config.

    Args:
        cfg: the whole config as loaded from YAML (not merged with OpenGait's defaults).

    Raises:
        ValueError: a solver, scheduler or transform the compact trainer does not implement, or a
            missing section; the message names it.
    """
    optimizer, scheduler = _section(cfg, "optimizer_cfg"), _section(cfg, "scheduler_cfg")
    trainer = _section(cfg, "trainer_cfg")
    if optimizer.get("solver") != "AdamW":
        raise ValueError(f"optimizer_cfg.solver: the compact trainer runs AdamW, got {optimizer.get('solver')!r}")
    if scheduler.get("scheduler") != "CosineAnnealingWarmRestarts":
        raise ValueError(
            "scheduler_cfg.scheduler: the compact trainer runs CosineAnnealingWarmRestarts (SGDR), "
            f"got {scheduler.get('scheduler')!r}"
        )
    sampler = _section(trainer, "sampler")
    transform = _transform_options(trainer)
    recipe: dict[str, Any] = {
        "lr": float(optimizer["lr"]),
        "weight_decay": float(optimizer.get("weight_decay", 0.0)),
        "stem_lr_scale": float(optimizer.get("stem_lr_scale", 1.0)),
        "sgdr_cycle": int(scheduler["T_0"]),
        "sgdr_mult": int(scheduler.get("T_mult", 1)),
        "min_lr": float(scheduler.get("eta_min", 0.0)),
        "iterations": int(trainer["total_iter"]),
        "batch_size": tuple(int(v) for v in sampler["batch_size"]),
        "frames": int(sampler["frames_num_fixed"]),
        "frames_skip": int(sampler.get("frames_skip_num", 0)),
        "cut": int(transform["cutting"]) if transform.get("cutting") is not None else 10,
        "augment": {k: transform[k] for k in _AUGMENT_KEYS if transform.get(k)},
    }
    losses = cfg.get("loss_cfg", [])
    for loss in losses if isinstance(losses, list) else [losses]:
        if loss.get("type") == "TripletLoss":
            recipe["margin"] = float(loss["margin"])
        elif loss.get("type") == "CrossEntropyLoss":
            recipe["ce_scale"] = float(loss.get("scale", 16))
            recipe["label_smoothing"] = float(loss.get("eps", 0.1)) if loss.get("label_smooth", True) else 0.0
    model = model_kwargs(_section(cfg, "model_cfg"))
    model.pop("num_classes", None)
    recipe["model"] = model
    return recipe
