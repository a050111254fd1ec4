"""kprpe_gait.opengait: SwinGait-2D (+ KP-RPE) inside OpenGait's own trainer.

The only code of this project that imports OpenGait, and only when asked to (importing this package
imports nothing of OpenGait). Two ways to run OpenGait's unmodified ``main.py`` with the plugin:

1. the launcher (also ``python -m kprpe_gait.opengait.launcher``, under ``torchrun``)::

       kprpe-gait launch --opengait-root R [--cpu] -- --cfgs configs/gait3d/swingait2d_kprpe.yaml --phase train

2. a shim file in the clone, then OpenGait's usual command from ``R``::

       kprpe-gait register --opengait-root R       # kprpe-gait unregister --opengait-root R removes it
       torchrun --nproc_per_node=4 opengait/main.py --cfgs .../swingait2d_kprpe.yaml --phase train

Modules: :mod:`.models` (``OpenGaitSwinGait2D``, ``OpenGaitSwinGait2DKPRPE`` on OpenGait's ``BaseModel``,
registered as ``model: SwinGait2D`` / ``SwinGait2DKPRPE``; imports
OpenGait), :mod:`.transforms` (``SilJointTransform``), :mod:`.inputs` (batch checks and packing),
:mod:`.config` (strict config keys), :mod:`.registry` (names set on OpenGait's registries),
:mod:`.runtime` (locating and importing a clone), :mod:`.launcher`, :mod:`.shim`, :mod:`.cpu`
(``--cpu``: the torch patches that run OpenGait without a GPU), :mod:`.demo`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "OpenGaitSwinGait2D",
    "OpenGaitSwinGait2DKPRPE",
    "launch",
    "register_shim",
    "run_opengait_demo",
    "unregister_shim",
]

_LAZY = {
    "OpenGaitSwinGait2D": (".models", "OpenGaitSwinGait2D"),  # needs OpenGait on sys.path
    "OpenGaitSwinGait2DKPRPE": (".models", "OpenGaitSwinGait2DKPRPE"),
    "launch": (".launcher", "launch"),
    "register_shim": (".shim", "register"),
    "unregister_shim": (".shim", "unregister"),
    "run_opengait_demo": (".demo", "run_opengait_demo"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module, __name__), attr)
