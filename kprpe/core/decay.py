"""One weight-decay rule for position encodings, shared by every model built on this core.

Position tables are not weight-decayed: Swin's and iRPE's learned bias tables (:class:`RelPosBias`,
:class:`ContextualRPE`) and KP-RPE's ``W_L`` (:class:`KeypointRPE`, which produces the tables that
replace them; its optional hidden MLP included) keep their values unless the loss moves them, as
absolute position embeddings do in ViT and Swin recipes.
"""

from __future__ import annotations

from torch import nn

from .baselines import ContextualRPE, RelPosBias
from .keypoint_rpe import KeypointRPE

__all__ = ["POSITION_MODULES", "position_parameter_names"]

#: modules whose parameters are position encodings (never weight-decayed)
POSITION_MODULES: tuple[type[nn.Module], ...] = (KeypointRPE, RelPosBias, ContextualRPE)


def position_parameter_names(model: nn.Module) -> set[str]:
    """Names (as in ``model.named_parameters()``) of every parameter inside a :data:`POSITION_MODULES` module."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, POSITION_MODULES):
            names.update(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters())
    return names
