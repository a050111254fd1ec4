"""Attention masks as the additive float mask every attention backend adds to its logits.

Its own module so that :mod:`kprpe.core.attention` (which dispatches to the Triton kernel) and
:mod:`kprpe.core.triton_attention` (which needs the mask helper) both import it without importing each
other. ``additive_mask`` stays importable from :mod:`kprpe.core.attention` as well.
"""

from __future__ import annotations

import torch

__all__ = ["additive_mask"]


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An attention mask as the additive float mask every backend adds to the logits.

    Args:
        mask: ``None``; a bool mask with ``True`` = attend (as in ``F.scaled_dot_product_attention``),
            which becomes ``0`` / ``-inf``; or an additive float mask, cast to ``dtype``.
        dtype: the logits' dtype.

    Integer masks are rejected: whether 0/1 means "attend" or "add" is ambiguous.
    """
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    if not mask.is_floating_point():
        raise TypeError(
            f"attn_mask must be bool (True = attend) or an additive float mask, got {mask.dtype}; "
            "convert a 0/1 integer mask with mask.bool()"
        )
    return mask.to(dtype)
