"""Building SwinGait-2D from an OpenGait ``model_cfg`` and loading weights from either trainer.

``model_cfg`` schema (OpenGait's SwinGait sections plus this model's options; every key is checked,
an unknown one is an error that names it)::

    model_cfg:
      model: SwinGait2D            # or SwinGait2DKPRPE (implies rel_pos: kprpe); optional here
      Backbone:
        in_channels: 1
        layers: [1, 4, 4, 2]       # blocks at c0, blocks at c1, stage-1 depth, stage-2 depth
        channels: [64, 128]
      bin_num: [15]
      SeparateBNNecks:
        in_channels: 256           # = out_channels of SeparateFCs
        class_num: 3000            # training identities (num_classes= overrides)
        parts_num: 16              # sum(bin_num) + 1
      # optional, with the defaults of SwinGait2D:
      rel_pos: swin                # swin | kprpe | none
      kprpe_variant: multihead
      kprpe_grid: stage            # stage | window (the frame of KP-RPE's grid M)
      kprpe_compact_buckets: false # true: table columns only for the 35 of 49 buckets a 3x5 window reaches
      num_joints: 17
      min_confidence: 0.0
      embed_dim: 256
      num_heads: [16, 32]
      window_size: [3, 5]
      token_grid: [15, 10]
      drop_path_rate: 0.1
      backend: auto
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from kprpe.config import check_keys

from .swingait2d import SwinGait2D

__all__ = ["MODEL_NAMES", "build_from_model_cfg", "checkpoint_filter_fn", "load_weights", "model_kwargs"]

#: ``model_cfg.model`` values this builder accepts -> the ``rel_pos`` the name implies (None: any)
MODEL_NAMES: dict[str, str | None] = {"SwinGait2D": None, "SwinGait2DKPRPE": "kprpe"}

_TOP_KEYS = {
    "model", "Backbone", "bin_num", "SeparateBNNecks", "rel_pos", "kprpe_variant", "kprpe_grid", "num_joints",
    "min_confidence", "embed_dim", "num_heads", "window_size", "token_grid", "drop_path_rate", "backend",
    "kprpe_compact_buckets",
}  # fmt: skip
_BACKBONE_KEYS = {"in_channels", "layers", "channels"}
_BNNECK_KEYS = {"in_channels", "class_num", "parts_num"}
_PASSTHROUGH = (
    "rel_pos", "kprpe_variant", "kprpe_grid", "num_joints", "min_confidence", "embed_dim", "num_heads",
    "window_size", "token_grid", "drop_path_rate", "backend", "kprpe_compact_buckets",
)  # fmt: skip


def build_from_model_cfg(model_cfg: Mapping[str, Any], num_classes: int | None = None) -> SwinGait2D:
    """SwinGait-2D from an OpenGait-style ``model_cfg`` (schema in the module docstring).

    Args:
        model_cfg: the mapping under ``model_cfg`` in an OpenGait YAML.
        num_classes: overrides ``SeparateBNNecks.class_num`` when given.

    Raises:
        ValueError: unknown keys, a model name this builder does not know, a ``rel_pos`` that
            contradicts the model name, inconsistent channel counts or no class count.
    """
    kwargs = model_kwargs(model_cfg, num_classes)
    if "num_classes" not in kwargs:
        raise ValueError("no class count: set model_cfg.SeparateBNNecks.class_num or pass num_classes")
    return SwinGait2D(**kwargs)


def model_kwargs(model_cfg: Mapping[str, Any], num_classes: int | None = None) -> dict[str, Any]:
    """The :class:`SwinGait2D` keyword arguments of a ``model_cfg`` (checked as :func:`build_from_model_cfg`);
    ``num_classes`` is included when the config or the argument gives it."""
    check_keys("model_cfg", model_cfg, _TOP_KEYS)
    kwargs: dict[str, Any] = {k: model_cfg[k] for k in _PASSTHROUGH if k in model_cfg}
    for key in ("num_heads", "window_size", "token_grid"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])

    name = model_cfg.get("model")
    if name is not None:
        if name not in MODEL_NAMES:
            raise ValueError(f"model_cfg.model {name!r} is not a SwinGait-2D; expected one of {sorted(MODEL_NAMES)}")
        implied = MODEL_NAMES[name]
        if implied is not None and kwargs.setdefault("rel_pos", implied) != implied:
            raise ValueError(
                f"model {name!r} implies rel_pos {implied!r} but model_cfg.rel_pos is {kwargs['rel_pos']!r}"
            )

    backbone = model_cfg.get("Backbone", {})
    check_keys("model_cfg.Backbone", backbone, _BACKBONE_KEYS)
    for key in _BACKBONE_KEYS & set(backbone):
        kwargs[key] = tuple(backbone[key]) if key != "in_channels" else int(backbone[key])

    if "bin_num" in model_cfg:
        bins = model_cfg["bin_num"]
        kwargs["bin_num"] = [int(bins)] if isinstance(bins, int) else [int(b) for b in bins]

    necks = model_cfg.get("SeparateBNNecks", {})
    check_keys("model_cfg.SeparateBNNecks", necks, _BNNECK_KEYS)
    if "in_channels" in necks:
        kwargs["out_channels"] = int(necks["in_channels"])
    if "parts_num" in necks:
        kwargs["parts_num"] = int(necks["parts_num"])
    classes = num_classes if num_classes is not None else necks.get("class_num")
    if classes is not None:
        kwargs["num_classes"] = int(classes)
    return kwargs


_PREFIXES = ("module.", "net.", "backbone.")


def checkpoint_filter_fn(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The network's ``state_dict`` out of a checkpoint of OpenGait or of the compact trainer.

    Unwraps ``{"model": sd}`` / ``{"state_dict": sd}`` and strips the ``module.`` (DDP) and ``net.``
    (OpenGait adapter) prefixes, however nested, when *every* key carries them.
    """
    state = checkpoint
    for key in ("model", "state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(
            "checkpoint holds no state dict: expected tensors, or a 'model' / 'state_dict' entry of tensors"
        )
    state = dict(state)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def load_weights(net: nn.Module, path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a checkpoint file into ``net`` strictly (every key must match, no key may be left over).

    Returns:
        the loaded state dict (after :func:`checkpoint_filter_fn`).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds no state dict, or its keys or shapes do not match ``net``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint_filter_fn(checkpoint)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not fit this network (built with other options?): {e}") from e
    return state
