"""Build modules without their random initialisation, for weights that are loaded right after.

``nn.Linear``, ``nn.LayerNorm``, ``nn.Conv2d`` and this package's modules initialise through
``torch.nn.init``; :func:`no_weight_init` makes those initialisers return their tensor untouched while a
model is built, so a checkpoint load does not first pay for (and draw random numbers for) weights it then
overwrites (a ViT-B face model: 115M parameters). Parameters hold uninitialised memory until loaded: use it
only around a build followed by a **strict** load that fills every parameter and persistent buffer.
Buffers computed in ``__init__`` (bucket maps, token grids) are not initialisers and are built as usual.

The switch is process-wide while the context is open (as ``torch.nn.init`` is one module): do not build
other models on another thread meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["no_weight_init"]


def _initialisers() -> list[str]:
    """The public in-place initialisers of ``torch.nn.init`` (``uniform_``, ``kaiming_uniform_``, ...)."""
    return [name for name in vars(nn.init) if name.endswith("_") and not name.startswith("_")]


def _untouched(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
    return tensor


@contextlib.contextmanager
def no_weight_init() -> Iterator[None]:
    """Within the block, every ``torch.nn.init`` initialiser leaves its tensor as it is (see the module
    docstring); they are restored on exit, exceptions included."""
    saved = {name: getattr(nn.init, name) for name in _initialisers()}
    try:
        for name in saved:
            setattr(nn.init, name, _untouched)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)
