"""Strict configuration checks shared by every task package (gait, face, tools).

Configs are data (YAML mappings); a misspelt key must be an error that names it, never silently dropped.
``read_yaml_mapping`` reads one such file (any malformed file is a ``ValueError`` naming it);
``check_keys`` raises ``ValueError`` naming the unknown keys and listing the valid ones; ``constructor_keys``
reads the valid keys off a constructor's signature; ``split_known`` separates keys merely inherited from a
framework's defaults (OpenGait merges every config into its ``default.yaml``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["check_keys", "constructor_keys", "read_yaml_mapping", "split_known"]


def read_yaml_mapping(path: str | os.PathLike[str], what: str = "config") -> dict[str, Any]:
    """A YAML file holding a mapping (an empty file is ``{}``), read with ``yaml.safe_load``.

    Raises:
        FileNotFoundError: naming ``what`` and the path.
        ValueError: naming the file when it is not UTF-8 YAML or holds no mapping.
    """
    import yaml

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} not found")
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    # yaml.YAMLError is no ValueError, and neither it nor UnicodeDecodeError names the file
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: not a readable YAML {what} ({type(e).__name__}: {e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a {what} must be a mapping of keys to values, got {type(data).__name__}")
    return data


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
