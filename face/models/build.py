"""One entry point for the face backbones: ``build_model`` picks the ViT or the Swin from the config."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kprpe.config import check_keys, constructor_keys

from .swin import PRESETS as SWIN_PRESETS
from .swin import FaceSwin
from .vit import PRESETS as VIT_PRESETS
from .vit import FaceViT

__all__ = ["ARCHS", "ARCH_PRESETS", "PRESETS", "FaceBackbone", "arch_of", "build_model"]

#: ``arch`` key -> the class it builds
ARCHS: dict[str, type] = {"vit": FaceViT, "swin": FaceSwin}

#: ``arch`` key -> its named architectures
ARCH_PRESETS: dict[str, dict[str, dict[str, Any]]] = {"vit": VIT_PRESETS, "swin": SWIN_PRESETS}

#: every named architecture: ``vit_*`` (:class:`FaceViT`) and ``swin_*`` (:class:`FaceSwin`)
PRESETS: dict[str, dict[str, Any]] = {**VIT_PRESETS, **SWIN_PRESETS}

FaceBackbone = FaceViT | FaceSwin


def arch_of(model: object) -> str:
    """``"vit"`` or ``"swin"`` for a face backbone; ``TypeError`` for anything else."""
    for name, cls in ARCHS.items():
        if isinstance(model, cls):
            return name
    raise TypeError(f"expected a FaceViT or FaceSwin, got {type(model).__name__}")


def build_model(config: str | Mapping[str, Any]) -> FaceBackbone:
    """A face backbone from a preset name or a config mapping.

    Args:
        config: a :data:`PRESETS` name (``"vit_small"``, ``"vit_base"``, ``"vit_tiny"``, ``"swin_small"``,
            ``"swin_base"``, ``"swin_tiny"``), or a mapping with an optional ``preset``, an optional
            ``arch`` (``"vit"``, the default, or ``"swin"``; a ``swin_*`` preset implies it) and any
            argument of that class overriding the preset (unknown keys are an error, naming the allowed ones).

    Example:
        >>> build_model({"preset": "swin_tiny", "rpe": "kprpe"}).config["depths"]
        [2, 2, 2, 2]
        >>> model = build_model({"preset": "vit_tiny", "rpe": "kprpe"})
        >>> model(torch.randn(2, 3, 112, 112), torch.rand(2, 5, 2)).shape
        torch.Size([2, 512])
    """
    cfg = {"preset": config} if isinstance(config, str) else dict(config)
    preset = cfg.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown face model preset {preset!r}; choose one of {sorted(PRESETS)}")
    arch = cfg.pop("arch", "swin" if preset in SWIN_PRESETS else "vit")
    if arch not in ARCHS:
        raise ValueError(f"unknown face model arch {arch!r}; choose one of {sorted(ARCHS)}")
    if preset is not None and (preset in SWIN_PRESETS) != (arch == "swin"):
        raise ValueError(f"preset {preset!r} is not a {arch!r} model")
    cls = ARCHS[arch]
    cfg = check_keys(f"face {arch} model", cfg, constructor_keys(cls) | {"preset"})
    args = copy.deepcopy(PRESETS[cfg.pop("preset")]) if "preset" in cfg else {}
    args.update(cfg)
    return cls(**args)
