"""The position encodings KP-RPE is compared against, on the same bucket maps and attention code.

* :class:`RelPosBias`: a learned bias per (head, bucket), the same for every query (RPE in the paper's
  Fig. 1, Shaw et al.'s idea in iRPE's "bias" mode, and Swin's relative-position bias on a window).
* :class:`ContextualRPE`: iRPE's contextual key-side RPE: ``B[i, j] = q_i . r[bucket(i, j)]`` with
  learned encodings ``r``; its per-query table is ``(q * scale) @ W``.
* :class:`ContinuousPositionBias`: Swin V2's continuous position bias: a small MLP on log-spaced window
  offsets gives one scalar per (head, exact offset), ``16 * sigmoid``-bounded.

All return tables in the layout :func:`kprpe.core.kprpe_attention` consumes, ``(B|1, H, N, K)``. The
``cross`` method's two lookups are folded into one product-shaped table
(``table[a * S + b] = rows[a] + cols[b]``), so it runs on the product bucket map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .buckets import BucketMethod, bucket_map, num_buckets, product_buckets

__all__ = ["ContextualRPE", "ContinuousPositionBias", "RelPosBias"]


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


class ContinuousPositionBias(nn.Module):
    """Swin V2's continuous relative-position bias (log-spaced coordinates, MLP, ``16 * sigmoid``).

    For a ``(wh, ww)`` window, each exact offset ``(dr, dc)`` (``(2wh-1) * (2ww-1)`` of them, numbered as Swin's
    ``relative_position_index`` = :func:`kprpe.core.bucket_map` ``"exact"``) is normalised to ``[-8, 8]``
    (``dr / (wh - 1) * 8``), log-spaced (``sign(t) * log2(|t| + 1) / 3``) and mapped by
    ``cpb_mlp`` = ``Linear(2, hidden) -> ReLU -> Linear(hidden, H, bias=False)`` to one value per head; the
    bias is ``16 * sigmoid`` of it (Liu et al., Swin Transformer V2, Sec. 3.3; torchvision's
    ``ShiftedWindowAttentionV2``).

    Args:
        num_heads: attention heads ``H``.
        window_size: ``(wh, ww)``.
        hidden_dim: the MLP's hidden width (512 in Swin V2).

    Shape:
        output of :meth:`forward`: ``(1, H, wh*ww, K)`` table with ``K = (2wh-1) * (2ww-1)``, read through
        ``buckets`` ``(wh*ww, wh*ww)`` (an expanded view; no copy per query).
    """

    def __init__(
        self,
        num_heads: int,
        window_size: Sequence[int],
        hidden_dim: int = 512,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = (int(window_size[0]), int(window_size[1]))
        self.hidden_dim = hidden_dim
        factory = {"device": device, "dtype": dtype}
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, hidden_dim, **factory),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, num_heads, bias=False, **factory),
        )
        wh, ww = self.window_size
        buckets, _ = bucket_map(wh, ww, "exact", device=device)
        self.register_buffer("buckets", buckets.clone(), persistent=False)
        self.register_buffer("coords", continuous_coords(self.window_size, device=device), persistent=False)

    def reset_parameters(self) -> None:
        for layer in (self.cpb_mlp[0], self.cpb_mlp[2]):
            layer.reset_parameters()

    @property
    def num_tokens(self) -> int:
        return self.window_size[0] * self.window_size[1]

    def forward(self) -> torch.Tensor:
        table = 16 * torch.sigmoid(self.cpb_mlp(self.coords).transpose(0, 1))  # (H, K)
        return table[None, :, None, :].expand(1, self.num_heads, self.num_tokens, table.shape[-1])

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, window_size={self.window_size}, hidden_dim={self.hidden_dim}"


def continuous_coords(window_size: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """Swin V2's log-spaced offset coordinates ``((2wh-1) * (2ww-1), 2)``, row-major over ``(dr, dc)``.

    A window side of 1 has the single offset 0 (Swin V2 would divide by ``wh - 1 = 0``).
    """
    wh, ww = int(window_size[0]), int(window_size[1])
    rows = torch.arange(-(wh - 1), wh, dtype=torch.float32, device=device) / max(wh - 1, 1)
    cols = torch.arange(-(ww - 1), ww, dtype=torch.float32, device=device) / max(ww - 1, 1)
    table = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1) * 8  # (2wh-1, 2ww-1, 2) in [-8, 8]
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0  # log2(8 + 1) / 3 ~ 1 at the edge
    return table.reshape(-1, 2)
