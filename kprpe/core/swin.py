"""Swin (shifted-window) transformer block whose window bias is Swin's own, a KP-RPE table, or none.

``rel_pos``:

* ``"swin"``: Swin's learned relative-position bias, one scalar per (head, exact window offset),
  truncated-normal(0.02) initialised (the SwinGait baseline);
* ``"table"``: a per-query table given to ``forward``, read through the window-sized product bucket map
  (window KP-RPE, see :mod:`kprpe.core.windows` for the two frames). With ``table_grid="stage"`` it
  covers the whole stage grid (a :class:`~kprpe.core.KeypointRPE` layer table built with ``grid_size``
  = the stage grid) and is padded, shifted and partitioned exactly like the features; with
  ``table_grid="window"`` it is already per window (a ``KeypointRPE`` built with ``grid_size`` = the
  window and fed :func:`~kprpe.core.windows.window_keypoints` for this block's shift);
* ``"cpb"``: Swin V2's continuous position bias (:class:`~kprpe.core.ContinuousPositionBias`);
* ``"none"``: no position bias.

Swin V2's block (the authors' face Swin, torchvision's ``SwinTransformerBlockV2``) is
``post_norm=True, cosine_attention=True``: ``x + norm1(attn(x))``, ``x + norm2(mlp(x))`` with scaled cosine
attention. :class:`PatchMerging` halves the grid between stages (V1 or V2 order of norm and reduction).

A window larger than the grid along an axis is clamped to the grid, and the shift along that axis is
dropped (Swin's rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .baselines import ContinuousPositionBias, RelPosBias
from .decay import position_rng
from .layers import Attention, DropPath, Mlp
from .windows import (
    TABLE_GRIDS,
    compact_window_buckets,
    from_windows,
    partition_tables,
    shifted_window_mask,
    to_windows,
    window_buckets,
)

__all__ = ["REL_POS_MODES", "PatchMerging", "SwinBlock", "swin_stage_blocks"]

REL_POS_MODES = ("swin", "table", "cpb", "none")


class SwinBlock(nn.Module):
    """One (shifted-)window attention block on a fixed ``grid_size``: pre-norm (Swin) or res-post-norm (Swin V2).

    Args:
        dim: channels ``C``.
        num_heads: heads ``H``.
        grid_size: ``(h, w)`` of the feature map this block runs on.
        window_size: ``(wh, ww)``.
        shift_size: ``(sh, sw)``; ``(0, 0)`` for a regular window block.
        mlp_ratio, qkv_bias, drop, attn_drop, drop_path: as in Swin.
        rel_pos: ``"swin"``, ``"table"``, ``"cpb"`` or ``"none"`` (module docstring).
        ratio: bucket ratio of the window product map (``rel_pos="table"``).
        backend: :func:`kprpe.core.kprpe_attention` backend.
        table_grid: ``"stage"`` or ``"window"``: the frame of the table ``forward`` takes
            (``rel_pos="table"``; module docstring).
        compact_buckets: gather with :func:`~kprpe.core.compact_window_buckets` (only the buckets the
            window reaches, renumbered; the table then has one column per such bucket, e.g. a
            :class:`~kprpe.core.KeypointRPE` built with its ``used_buckets``) instead of the full
            product map (``K = 49`` columns, 14 of which a 3x5 window never reads).
        post_norm: Swin V2's residual post-norm, ``x + norm1(attn(x))`` and ``x + norm2(mlp(x))``, instead
            of ``x + attn(norm1(x))`` and ``x + mlp(norm2(x))``.
        cosine_attention: Swin V2's scaled cosine attention (:class:`~kprpe.core.Attention` ``cosine``).

    Shape:
        - x: ``(B, h, w, C)``
        - table (``rel_pos="table"``): ``(B, H, h*w, K)`` over the stage grid (``table_grid="stage"``)
          or ``(B * nW, H, wh*ww, K)`` per window, in :func:`~kprpe.core.to_windows` order
          (``table_grid="window"``)
        - output: ``(B, h, w, C)``
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid_size: Sequence[int],
        window_size: Sequence[int],
        shift_size: Sequence[int] = (0, 0),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        rel_pos: str = "swin",
        ratio: float = 1.9,
        backend: str = "auto",
        table_grid: str = "stage",
        compact_buckets: bool = False,
        post_norm: bool = False,
        cosine_attention: bool = False,
    ) -> None:
        super().__init__()
        if rel_pos not in REL_POS_MODES:
            raise ValueError(f"unknown rel_pos {rel_pos!r}; choose one of {REL_POS_MODES}")
        if table_grid not in TABLE_GRIDS:
            raise ValueError(f"unknown table_grid {table_grid!r}; choose one of {TABLE_GRIDS}")
        self.table_grid = table_grid
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        window, shift = [], []
        for g, w_, s in zip(self.grid_size, window_size, shift_size):
            if not 0 <= s < w_:
                raise ValueError(f"shift {tuple(shift_size)} must be in [0, window) for window {tuple(window_size)}")
            window.append(min(w_, g))
            shift.append(0 if g <= w_ else s)
        self.window_size = (window[0], window[1])
        self.shift_size = (shift[0], shift[1])
        self.rel_pos = rel_pos
        self.num_heads = num_heads
        self.compact_buckets = bool(compact_buckets)
        self.post_norm = bool(post_norm)

        rpe = None
        if rel_pos == "swin":
            with position_rng():  # paired with the same block under KP-RPE (kprpe.core.decay.position_rng)
                rpe = RelPosBias(num_heads, self.window_size, method="exact", init_std=0.02)
        elif rel_pos == "cpb":
            with position_rng():
                rpe = ContinuousPositionBias(num_heads, self.window_size)
        elif rel_pos == "table":
            if self.compact_buckets:
                buckets, _, _ = compact_window_buckets(self.window_size, ratio)
            else:
                buckets, _ = window_buckets(self.window_size, ratio)
            self.register_buffer("buckets", buckets.clone(), persistent=False)
        mask = shifted_window_mask(self.grid_size, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", mask[:, None] if mask is not None else None, persistent=False)

        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, backend, rpe, cosine=cosine_attention)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        batch, h, w, _channels = x.shape
        if (h, w) != self.grid_size:
            raise ValueError(f"SwinBlock built for a {self.grid_size} grid got a {h}x{w} feature map")
        if (table is not None) != (self.rel_pos == "table"):
            raise ValueError(
                f"rel_pos={self.rel_pos!r}: "
                + ("a stage table is required" if table is None else "got an unexpected table")
            )
        windows = to_windows(x if self.post_norm else self.norm1(x), self.window_size, self.shift_size)  # (B*nW, Nw, C)
        mask = None if self.attn_mask is None else self.attn_mask.repeat(batch, 1, 1, 1)  # (B*nW, 1, Nw, Nw)
        window_table = buckets = None
        if table is not None:
            if self.table_grid == "stage":
                window_table = partition_tables(table, self.grid_size, self.window_size, self.shift_size)
            else:
                expected = (windows.shape[0], self.num_heads, windows.shape[1])
                if table.dim() != 4 or tuple(table.shape[:3]) != expected:
                    raise ValueError(
                        f"table_grid='window' needs a per-window table (B*nW, H, Nw, K) = {expected + ('K',)}, "
                        f"got {tuple(table.shape)}"
                    )
                window_table = table
            buckets = self.buckets
        out = self.attn(windows, window_table, buckets, mask)
        out = from_windows(out, self.window_size, self.shift_size, self.grid_size)  # (B, h, w, C)
        if self.post_norm:
            x = x + self.drop_path(self.norm1(out))
            return x + self.drop_path(self.norm2(self.mlp(x)))
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return (
            f"grid_size={self.grid_size}, window_size={self.window_size}, shift_size={self.shift_size}, "
            f"rel_pos={self.rel_pos!r}"
            + (f", table_grid={self.table_grid!r}" if self.rel_pos == "table" else "")
            + (", compact_buckets=True" if self.rel_pos == "table" and self.compact_buckets else "")
            + (", post_norm=True" if self.post_norm else "")
        )


def swin_stage_blocks(
    dim: int,
    num_heads: int,
    grid_size: Sequence[int],
    window_size: Sequence[int],
    drop_path: Sequence[float],
    **block_kwargs: object,
) -> nn.ModuleList:
    """The blocks of one Swin stage: ``len(drop_path)`` :class:`SwinBlock` s, every second one shifted by
    ``window // 2`` (Swin's alternation), block ``i`` with stochastic depth ``drop_path[i]``;
    ``block_kwargs`` (``rel_pos``, ``mlp_ratio``, ``post_norm``, ...) go to every block."""
    shift = (window_size[0] // 2, window_size[1] // 2)
    return nn.ModuleList(
        SwinBlock(dim, num_heads, grid_size, window_size, shift if i % 2 else (0, 0), drop_path=rate, **block_kwargs)
        for i, rate in enumerate(drop_path)
    )


class PatchMerging(nn.Module):
    """Swin's patch merging: each 2x2 token group -> one token of twice the channels; the grid halves.

    Odd sides are zero-padded at the bottom/right first. The four tokens of a group are concatenated in
    Swin's order ``(0, 0), (1, 0), (0, 1), (1, 1)`` (row, col offsets), then ``Linear(4C, 2C, bias=False)``.

    Args:
        dim: input channels ``C``.
        norm_first: Swin V1's order, ``LayerNorm(4C)`` then the reduction; ``False`` is Swin V2's, the
            reduction then ``LayerNorm(2C)``.

    Shape:
        ``(B, h, w, C)`` -> ``(B, ceil(h / 2), ceil(w / 2), 2C)``
    """

    def __init__(self, dim: int, norm_first: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.norm_first = bool(norm_first)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim if norm_first else 2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        if self.norm_first:
            return self.reduction(self.norm(x))
        return self.norm(self.reduction(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, norm_first={self.norm_first}"
