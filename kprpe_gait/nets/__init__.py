"""Deprecated alias of :mod:`kprpe_gait.models` (the backbones' package was renamed to match ``face.models``).

``import kprpe_gait.nets`` and ``import kprpe_gait.nets.<submodule>`` (``build``, ``deepgaitv2``, ``modules``,
``swingait2d``) keep working: they give the very module objects of :mod:`kprpe_gait.models` (same classes, so
``isinstance`` checks, monkeypatching and anything pickled under the old path still work) and emit one
``DeprecationWarning`` when the alias is first imported. Import :mod:`kprpe_gait.models` instead.
"""

from __future__ import annotations

import importlib
import sys
import warnings

from kprpe_gait.models import *  # noqa: F403
from kprpe_gait.models import __all__  # noqa: F401

#: the submodules of :mod:`kprpe_gait.models` that the old name still reaches
SUBMODULES = ("build", "deepgaitv2", "modules", "swingait2d")

for _name in SUBMODULES:
    _module = importlib.import_module(f"kprpe_gait.models.{_name}")
    sys.modules[f"{__name__}.{_name}"] = _module  # ``import kprpe_gait.nets.build`` finds it here
    globals()[_name] = _module
del _name, _module

warnings.warn(
    "kprpe_gait.nets is now kprpe_gait.models; the old name goes in a future release",
    DeprecationWarning,
    stacklevel=2,
)
