"""``kprpe-gait register|unregister``: a shim file so OpenGait's unmodified command finds the plugin.

OpenGait's ``modeling/models/__init__.py`` imports every module of its folder and collects their
classes. ``register`` writes one small module there, :data:`SHIM_NAME`, that imports the plugin's
model classes (collected like OpenGait's own) and registers the plugin's transform and evaluator::

    kprpe-gait register --opengait-root R
    cd R && torchrun --nproc_per_node=4 opengait/main.py --cfgs .../swingait2d_kprpe.yaml --phase train
    kprpe-gait unregister --opengait-root R

The file starts with :data:`MARKER`; ``unregister`` deletes only a file carrying it (and the
bytecode Python cached for it), never anything else. ``register`` refuses to overwrite a foreign
file of that name. Re-run ``register`` after a fresh checkout of OpenGait.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kprpe.io import atomic_write_text

from .runtime import resolve_root

__all__ = [
    "MARKER",
    "SHIM_NAME",
    "add_arguments_for",
    "is_current",
    "is_registered",
    "register",
    "run",
    "shim_path",
    "unregister",
]

SHIM_NAME = "kprpe_gait_plugin.py"
MARKER = "# kprpe-gait shim: written by 'kprpe-gait register', removed by 'kprpe-gait unregister'"

SHIM_SOURCE = f'''{MARKER}
"""Registers SwinGait2D / SwinGait2DKPRPE, SilJointTransform and evaluate_Gait3D_KPRPE (kprpe_gait)."""
try:
    import kprpe_gait.opengait.registry as _kprpe_registry
except ModuleNotFoundError as _err:  # kprpe_gait is not installed in this interpreter: leave OpenGait alone
    if _err.name != "kprpe_gait" and not (_err.name or "").startswith("kprpe_gait."):
        raise
    import warnings as _warnings

    _warnings.warn(f"{{__file__}}: kprpe_gait is not importable here ({{_err}}); its models are unavailable")
else:
    # the config names (model: SwinGait2D | SwinGait2DKPRPE), which OpenGait collects from this module
    from kprpe_gait.opengait.models import OpenGaitSwinGait2D as SwinGait2D  # noqa: F401
    from kprpe_gait.opengait.models import OpenGaitSwinGait2DKPRPE as SwinGait2DKPRPE  # noqa: F401

    _kprpe_registry.register()
'''


def shim_path(opengait_root: str | os.PathLike[str]) -> Path:
    """Where the shim lives: ``<root>/opengait/modeling/models/kprpe_gait_plugin.py``."""
    folder = resolve_root(opengait_root) / "opengait" / "modeling" / "models"
    if not (folder / "__init__.py").is_file():
        raise FileNotFoundError(f"{folder} has no __init__.py: not an OpenGait model folder")
    return folder / SHIM_NAME


def _is_ours(path: Path) -> bool:
    with path.open("r", encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\n") == MARKER


def is_registered(opengait_root: str | os.PathLike[str]) -> bool:
    """Whether our shim is installed in ``opengait_root``."""
    path = shim_path(opengait_root)
    return path.is_file() and _is_ours(path)


def is_current(opengait_root: str | os.PathLike[str]) -> bool:
    """Whether the installed shim is this version's (an older one may import names that moved)."""
    path = shim_path(opengait_root)
    return is_registered(opengait_root) and path.read_text(encoding="utf-8") == SHIM_SOURCE


def register(opengait_root: str | os.PathLike[str]) -> Path:
    """Write the shim (idempotent); raises rather than overwrite a file that is not ours."""
    path = shim_path(opengait_root)
    if path.exists() and not (path.is_file() and _is_ours(path)):
        raise FileExistsError(f"{path} exists and was not written by 'kprpe-gait register'; not touching it")
    atomic_write_text(path, SHIM_SOURCE)
    return path


def unregister(opengait_root: str | os.PathLike[str]) -> list[Path]:
    """Delete the shim and its cached bytecode; returns the files removed (empty if none was there).

    Raises when a file of the shim's name exists but is not ours.
    """
    path = shim_path(opengait_root)
    if not path.exists():
        return []
    if not (path.is_file() and _is_ours(path)):
        raise FileExistsError(f"{path} was not written by 'kprpe-gait register'; not deleting it")
    removed = [path]
    path.unlink()
    cache = path.parent / "__pycache__"
    if cache.is_dir():
        for pyc in sorted(cache.glob(f"{path.stem}.*.pyc")):
            pyc.unlink()
            removed.append(pyc)
    return removed


# The command-line glue is kprpe_gait.commands.register / .unregister (one module per sub-command, as
# face.commands); add_arguments_for and run keep serving both names for code written before the move.
def add_arguments_for(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``kprpe-gait register`` and ``kprpe-gait unregister``."""
    _command(name).add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return _command(args.command).run(args)


def _command(name: str):
    if name not in ("register", "unregister"):
        raise ValueError(f"kprpe_gait.opengait.shim serves 'register' and 'unregister', not {name!r}")
    import importlib

    return importlib.import_module(f"kprpe_gait.commands.{name}")
