"""Strict checks of the OpenGait config sections the plugin reads.

OpenGait merges every config into its ``configs/default.yaml`` and then passes constructors only
the keys their signatures name (``utils.get_valid_args``): a misspelt key is silently dropped. The
plugin's model classes check their sections instead. Keys that a section merely inherited from
``default.yaml`` (for example ``momentum`` under an AdamW ``optimizer_cfg``) are not the user's
doing; they are ignored when their value is still the default one.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["check_keys", "constructor_keys", "load_opengait_defaults", "split_known"]


def load_opengait_defaults(path: str | os.PathLike[str] = "configs/default.yaml") -> dict[str, Any]:
    """OpenGait's ``configs/default.yaml`` (relative to the working directory, OpenGait's root).

    Returns an empty dict when the file is absent (the checks then treat every key as the user's).
    """
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open() as f:
        return yaml.safe_load(f) or {}


def constructor_keys(obj: Callable[..., Any], skip: Iterable[str] = ("self",)) -> set[str]:
    """Names of the keyword arguments ``obj`` (a class or function) accepts, minus ``skip``."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = inspect.signature(target).parameters.values()
    return {p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in set(skip)}  # fmt: skip


def split_known(
    cfg: Mapping[str, Any], allowed: Iterable[str], inherited: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Split ``cfg`` into ``(known, unknown, ignored)``.

    ``known`` holds the allowed keys, ``ignored`` the names of keys inherited unchanged from
    ``inherited`` (OpenGait's defaults), ``unknown`` everything else.
    """
    allowed = set(allowed)
    inherited = inherited or {}
    known: dict[str, Any] = {}
    unknown: list[str] = []
    ignored: list[str] = []
    for key, value in cfg.items():
        if key in allowed:
            known[key] = value
        elif key in inherited and inherited[key] == value:
            ignored.append(key)
        else:
            unknown.append(key)
    return known, unknown, ignored


def check_keys(
    section: str,
    cfg: Mapping[str, Any],
    allowed: Iterable[str],
    inherited: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The allowed keys of ``cfg``; raises ``ValueError`` naming unknown keys and listing valid ones.

    Args:
        section: where ``cfg`` sits, for the message (``"model_cfg"``, ``"optimizer_cfg (AdamW)"``).
        cfg: the section as OpenGait loaded it.
        allowed: the valid keys.
        inherited: the same section of OpenGait's ``default.yaml``: its keys are ignored while
            they keep their default value.
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"{section} must be a mapping of keys to values, got {type(cfg).__name__}")
    allowed = set(allowed)
    known, unknown, _ = split_known(cfg, allowed, inherited)
    if unknown:
        raise ValueError(
            f"{section}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(sorted(allowed))}"
        )
    return known
