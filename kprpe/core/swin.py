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
* ``"none"``: no position bias.

A window larger than the grid along an axis is clamped to the grid, and the shift along that axis is
dropped (Swin's rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .baselines import RelPosBias
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

__all__ = ["REL_POS_MODES", "SwinBlock"]

REL_POS_MODES = ("swin", "table", "none")


class SwinBlock(nn.Module):
    """One (shifted-)window attention block, pre-norm, on a fixed ``grid_size``.

    Args:
        dim: channels ``C``.
        num_heads: heads ``H``.
        grid_size: ``(h, w)`` of the feature map this block runs on.
        window_size: ``(wh, ww)``.
        shift_size: ``(sh, sw)``; ``(0, 0)`` for a regular window block.
        mlp_ratio, qkv_bias, drop, attn_drop, drop_path: as in Swin.
        rel_pos: ``"swin"``, ``"table"`` or ``"none"`` (module docstring).
        ratio: bucket ratio of the window product map (``rel_pos="table"``).
        backend: :func:`kprpe.core.kprpe_attention` backend.
        table_grid: ``"stage"`` or ``"window"``: the frame of the table ``forward`` takes
            (``rel_pos="table"``; module docstring).
        compact_buckets: gather with :func:`~kprpe.core.compact_window_buckets` (only the buckets the
            window reaches, renumbered; the table then has one column per such bucket, e.g. a
            :class:`~kprpe.core.KeypointRPE` built with its ``used_buckets``) instead of the full
            product map (``K = 49`` columns, 14 of which a 3x5 window never reads).

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

        rpe = None
        if rel_pos == "swin":
            with position_rng():  # paired with the same block under KP-RPE (kprpe.core.decay.position_rng)
                rpe = RelPosBias(num_heads, self.window_size, method="exact", init_std=0.02)
        elif rel_pos == "table":
            if self.compact_buckets:
                buckets, _, _ = compact_window_buckets(self.window_size, ratio)
            else:
                buckets, _ = window_buckets(self.window_size, ratio)
            self.register_buffer("buckets", buckets.clone(), persistent=False)
        mask = shifted_window_mask(self.grid_size, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", mask[:, None] if mask is not None else None, persistent=False)

        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, backend, rpe)
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
        windows = to_windows(self.norm1(x), self.window_size, self.shift_size)  # (B*nW, Nw, C)
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
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return (
            f"grid_size={self.grid_size}, window_size={self.window_size}, shift_size={self.shift_size}, "
            f"rel_pos={self.rel_pos!r}"
            + (f", table_grid={self.table_grid!r}" if self.rel_pos == "table" else "")
            + (", compact_buckets=True" if self.rel_pos == "table" and self.compact_buckets else "")
        )
