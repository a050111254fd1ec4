"""The position encodings KP-RPE is compared against, on the same bucket maps and attention code.

* :class:`RelPosBias`: a learned bias per (head, bucket), the same for every query (RPE in the paper's
  Fig. 1, Shaw et al.'s idea in iRPE's "bias" mode, and Swin's relative-position bias on a window).
* :class:`ContextualRPE`: iRPE's contextual key-side RPE: ``B[i, j] = q_i . r[bucket(i, j)]`` with
  learned encodings ``r``; its per-query table is ``(q * scale) @ W``.

Both return tables in the layout :func:`kprpe.core.kprpe_attention` consumes, ``(B|1, H, N, K)``. The
``cross`` method's two lookups are folded into one product-shaped table
(``table[a * S + b] = rows[a] + cols[b]``), so it runs on the product bucket map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .buckets import BucketMethod, bucket_map, num_buckets, product_buckets

__all__ = ["RelPosBias", "ContextualRPE"]


def _fold_cross(rows: torch.Tensor, cols: torch.Tensor, has_prefix: bool) -> torch.Tensor:
    """Fold cross-method row/column tables ``(..., S[+1])`` into one product table ``(..., S*S[+1])``."""
    s = rows.shape[-1] - (1 if has_prefix else 0)
    grid = rows[..., :s, None] + cols[..., None, :s]  # (..., S, S)
    table = grid.flatten(-2)
    if has_prefix:
        table = torch.cat([table, rows[..., s:] + cols[..., s:]], dim=-1)
    return table


class _BucketTableBase(nn.Module):
    def __init__(
        self,
        grid_size: Sequence[int],
        method: BucketMethod,
        ratio: float,
        num_prefix_tokens: int,
        device: torch.device | str | None,
    ) -> None:
        super().__init__()
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.method = method
        self.ratio = float(ratio)
        self.num_prefix_tokens = num_prefix_tokens
        # per-lookup bucket count (cross has two lookups of this size)
        self.lookup_buckets = num_buckets(method, ratio, num_prefix_tokens, self.grid_size)
        if method == "cross":
            buckets, _ = product_buckets(*self.grid_size, ratio, num_prefix_tokens, device=device)
        else:
            buckets, _ = bucket_map(*self.grid_size, method, ratio, num_prefix_tokens, device=device)
        self.register_buffer("buckets", buckets.clone(), persistent=False)

    @property
    def num_tokens(self) -> int:
        return self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]

    def _fold(self, lookup: torch.Tensor) -> torch.Tensor:
        """Turn the raw lookup ``(..., K)`` (or ``(..., 2, S)`` for cross) into the attention table."""
        if self.method != "cross":
            return lookup
        return _fold_cross(lookup[..., 0, :], lookup[..., 1, :], self.num_prefix_tokens > 0)

    def extra_repr(self) -> str:
        h, w = self.grid_size
        s = f"grid_size=({h}, {w}), method={self.method!r}, ratio={self.ratio}, num_buckets={self.lookup_buckets}"
        if self.num_prefix_tokens:
            s += f", num_prefix_tokens={self.num_prefix_tokens}"
        return s


class RelPosBias(_BucketTableBase):
    """Learned relative-position bias: one scalar per (head, bucket), shared by all queries.

    Args:
        num_heads: attention heads (``1`` with ``shared_head``).
        grid_size: ``(h, w)`` token grid.
        method: bucket method (``product`` default; ``euclidean``, ``quant``, ``cross``, or ``exact``
            for Swin's bias over every distinct offset).
        ratio: bucket ratio.
        num_prefix_tokens: tokens before the grid (extra bucket).
        shared_head: one table for all heads.
        init_std: 0 (default, iRPE) gives zeros; otherwise a truncated normal (Swin uses 0.02).

    Shape:
        output of :meth:`forward`: ``(1, H, N', K)`` table (an expanded view; no copy per query).
    """

    def __init__(
        self,
        num_heads: int,
        grid_size: Sequence[int],
        method: BucketMethod = "product",
        ratio: float = 1.9,
        num_prefix_tokens: int = 0,
        shared_head: bool = False,
        init_std: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(grid_size, method, ratio, num_prefix_tokens, device)
        self.num_heads = num_heads
        self.shared_head = shared_head
        self.init_std = init_std
        lookups = (2,) if method == "cross" else ()
        self.weight = nn.Parameter(
            torch.empty(1 if shared_head else num_heads, *lookups, self.lookup_buckets, device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init_std > 0:
            nn.init.trunc_normal_(self.weight, std=self.init_std)
        else:
            nn.init.zeros_(self.weight)

    def forward(self) -> torch.Tensor:
        table = self._fold(self.weight)  # (H or 1, K)
        return table[None, :, None, :].expand(1, self.num_heads, self.num_tokens, table.shape[-1])

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, " + super().extra_repr() + (", shared_head=True" if self.shared_head else "")
        )


class ContextualRPE(_BucketTableBase):
    """iRPE contextual RPE on keys: ``bias[b, h, i, j] = (scale * q[b, h, i]) . r[h, bucket(i, j)]``.

    Args:
        head_dim: per-head channel count ``d``.
        num_heads: attention heads.
        grid_size: ``(h, w)`` token grid.
        method: bucket method (``product`` default, as KP-RPE's paper compares against).
        ratio: bucket ratio.
        num_prefix_tokens: tokens before the grid (extra bucket).
        shared_head: one set of encodings for all heads (iRPE's default).

    Shape:
        - q: ``(B, H, N', d)``, unscaled (the module applies ``scale``, ``d ** -0.5`` by default).
        - output: ``(B, H, N', K)`` table.
    """

    def __init__(
        self,
        head_dim: int,
        num_heads: int,
        grid_size: Sequence[int],
        method: BucketMethod = "product",
        ratio: float = 1.9,
        num_prefix_tokens: int = 0,
        shared_head: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(grid_size, method, ratio, num_prefix_tokens, device)
        self.head_dim = head_dim
        self.num_heads = num_heads
        self.shared_head = shared_head
        lookups = 2 if method == "cross" else 1
        self.weight = nn.Parameter(
            torch.empty(
                1 if shared_head else num_heads, head_dim, lookups * self.lookup_buckets, device=device, dtype=dtype
            )
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)  # iRPE's initialiser: starts as attention without RPE

    def forward(self, q: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        if q.dim() != 4 or q.shape[-1] != self.head_dim or q.shape[2] != self.num_tokens:
            raise ValueError(
                f"q must be (B, H, {self.num_tokens}, {self.head_dim}) for this ContextualRPE, got {tuple(q.shape)}"
            )
        if scale is None:
            scale = self.head_dim**-0.5
        table = (q * scale) @ self.weight[None]  # (B, H, N', lookups * K)
        if self.method == "cross":
            table = table.unflatten(-1, (2, self.lookup_buckets))
        return self._fold(table)

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, num_heads={self.num_heads}, "
            + super().extra_repr()
            + (", shared_head=True" if self.shared_head else "")
        )
