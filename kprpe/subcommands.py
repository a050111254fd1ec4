"""Sub-command discovery shared by the ``kprpe-face`` and ``kprpe-gait`` command lines."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["find_subcommands"]


def find_subcommands(package: ModuleType) -> dict[str, ModuleType]:
    """``{name: module}`` of every module of ``package`` that defines ``HELP``, ``add_arguments`` and ``run``,
    sorted by module name; underscores become hyphens in the name (``pretreat_gait3d`` -> ``pretreat-gait3d``)
    and private modules (``_*``) are skipped."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if all(hasattr(module, attr) for attr in ("HELP", "add_arguments", "run")):
            found[info.name.replace("_", "-")] = module
    return found
