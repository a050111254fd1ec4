"""One weight-decay rule for position encodings, shared by every model built on this core.

Position tables are not weight-decayed: Swin's and iRPE's learned bias tables (:class:`RelPosBias`,
:class:`ContextualRPE`), Swin V2's continuous position bias MLP (:class:`ContinuousPositionBias`, as timm
exempts ``cpb_mlp``) and KP-RPE's ``W_L`` (:class:`KeypointRPE`, which produces the tables that
replace them; its optional hidden MLP included) keep their values unless the loss moves them, as
absolute position embeddings do in ViT and Swin recipes.
"""

from __future__ import annotations

import torch
from torch import nn

from .baselines import ContextualRPE, ContinuousPositionBias, RelPosBias
from .keypoint_rpe import KeypointRPE

__all__ = ["POSITION_MODULES", "position_parameter_names", "position_rng", "shared_modules"]

#: modules whose parameters are position encodings (never weight-decayed)
POSITION_MODULES: tuple[type[nn.Module], ...] = (KeypointRPE, RelPosBias, ContextualRPE, ContinuousPositionBias)


def position_parameter_names(model: nn.Module) -> set[str]:
    """Names (as in ``model.named_parameters()``) of every parameter inside a :data:`POSITION_MODULES` module."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, POSITION_MODULES):
            names.update(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters())
    return names


def shared_modules(model: nn.Module) -> list[nn.Module]:
    """``model.modules()`` in order, less every :data:`POSITION_MODULES` module and what it contains.

    Initialising these first (and the position modules after them) draws the same random numbers for two
    models that differ only in their position encoding, so that such models start from identical shared
    weights and a comparison between them is paired: a ``W_L`` Linear drawn in the generic pass (then zeroed)
    would otherwise shift the random stream of every module after it.
    """
    inside: set[int] = set()
    for module in model.modules():
        if isinstance(module, POSITION_MODULES):
            inside.update(id(m) for m in module.modules())
    return [m for m in model.modules() if id(m) not in inside]


def position_rng():
    """A context in which position modules are built and initialised without advancing the global CPU RNG.

    Together with :func:`shared_modules` this makes models that differ only in their position encoding
    (``rpe`` none / iRPE / KP-RPE, Swin bias / KP-RPE) draw identical weights for everything they share under
    the same seed, so that comparisons between them are paired. The position modules' own draws (Swin's and
    iRPE's table inits) come from a copy of the stream at that point: deterministic for a seed.
    """
    return torch.random.fork_rng(devices=[])
