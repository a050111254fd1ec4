"""Swin-style windows for features and KP-RPE tables.

Window KP-RPE (the reference Swin-KP-RPE, and the paper's "grid M the size of the window"): the
keypoint table is computed once per stage over the *whole* stage feature map (absolute token centres,
so each window knows where it lies relative to the keypoints), then padded, cyclically shifted and
partitioned exactly like the features. Inside a window the bucket map is the window-sized product map,
and the table replaces Swin's learned relative-position bias; the shifted-window mask is added on top.

Sizes are ``(rows, cols)`` pairs. Padding goes at the bottom and right, as in Swin; the cyclic shift
moves content up/left by ``shift_size`` before partitioning and back afterwards.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .buckets import product_buckets

__all__ = [
    "window_partition",
    "window_reverse",
    "to_windows",
    "from_windows",
    "partition_tables",
    "shifted_window_mask",
    "window_buckets",
]

Size = Sequence[int]


def _pair(size: Size | int, name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or any((not isinstance(s, int)) or s < 0 for s in size):
        raise ValueError(f"{name} must be an int or a pair of non-negative ints, got {size!r}")
    return int(size[0]), int(size[1])


def _padded(grid_size: Size, window_size: Size) -> tuple[int, int]:
    (h, w), (wh, ww) = _pair(grid_size, "grid_size"), _pair(window_size, "window_size")
    return h + (-h) % wh, w + (-w) % ww


def window_partition(x: torch.Tensor, window_size: Size | int) -> torch.Tensor:
    """``(B, h, w, C)`` -> ``(B * nW, wh * ww, C)``; ``h``, ``w`` must be multiples of the window.

    Windows are ordered batch-major, then row-major over the window grid.
    """
    wh, ww = _pair(window_size, "window_size")
    batch, h, w, channels = x.shape
    if h % wh or w % ww:
        raise ValueError(f"feature map {h}x{w} is not a multiple of the window {wh}x{ww}; pad it first")
    x = x.view(batch, h // wh, wh, w // ww, ww, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, channels)


def window_reverse(windows: torch.Tensor, window_size: Size | int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh * ww, C)`` -> ``(B, h, w, C)``."""
    wh, ww = _pair(window_size, "window_size")
    nh, nw = h // wh, w // ww
    channels = windows.shape[-1]
    x = windows.view(-1, nh, nw, wh, ww, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, channels)


def to_windows(x: torch.Tensor, window_size: Size | int, shift_size: Size | int = 0) -> torch.Tensor:
    """Pad (bottom/right), cyclically shift by ``-shift_size`` and partition.

    Args:
        x: ``(B, h, w, C)`` feature map.

    Returns:
        ``(B * nW, wh * ww, C)`` windows of the padded ``(hp, wp)`` map.
    """
    wh, ww = _pair(window_size, "window_size")
    sh, sw = _pair(shift_size, "shift_size")
    _, h, w, _ = x.shape
    hp, wp = _padded((h, w), (wh, ww))
    if (hp, wp) != (h, w):
        x = F.pad(x, (0, 0, 0, wp - w, 0, hp - h))
    if sh or sw:
        x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
    return window_partition(x, (wh, ww))


def from_windows(
    windows: torch.Tensor, window_size: Size | int, shift_size: Size | int, grid_size: Size
) -> torch.Tensor:
    """Inverse of :func:`to_windows`: windows -> ``(B, h, w, C)`` with the shift undone and padding cut."""
    h, w = _pair(grid_size, "grid_size")
    sh, sw = _pair(shift_size, "shift_size")
    hp, wp = _padded((h, w), window_size)
    x = window_reverse(windows, window_size, hp, wp)
    if sh or sw:
        x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
    return x[:, :h, :w, :]


def partition_tables(
    table: torch.Tensor, grid_size: Size, window_size: Size | int, shift_size: Size | int = 0
) -> torch.Tensor:
    """Split a stage table into per-window tables, exactly like the features.

    Args:
        table: ``(B, H, h*w, K)`` table over the whole stage grid (e.g. from ``KeypointRPE`` built with
            ``grid_size=(h, w)``); padded tokens get zero rows.
        grid_size: ``(h, w)`` of the stage feature map.

    Returns:
        ``(B * nW, H, wh * ww, K)``, window order as :func:`to_windows`.
    """
    h, w = _pair(grid_size, "grid_size")
    batch, heads, tokens, k = table.shape
    if tokens != h * w:
        raise ValueError(f"table has {tokens} query rows but the stage grid {h}x{w} has {h * w} tokens")
    per_token = table.permute(0, 2, 1, 3).reshape(batch, h, w, heads * k)  # (B, h, w, H*K)
    windows = to_windows(per_token, window_size, shift_size)  # (B*nW, Nw, H*K)
    return windows.view(windows.shape[0], windows.shape[1], heads, k).permute(0, 2, 1, 3)


def shifted_window_mask(
    grid_size: Size,
    window_size: Size | int,
    shift_size: Size | int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    masked_value: float = -100.0,
) -> torch.Tensor | None:
    """Swin's additive mask that keeps tokens from attending across the seams of the cyclic shift.

    Returns:
        ``(nW, Nw, Nw)`` with 0 (same region) or ``masked_value``; ``None`` when there is no shift.
        For a batch of ``B`` images use ``mask.repeat(B, 1, 1)[:, None]`` -> ``(B * nW, 1, Nw, Nw)``.
    """
    wh, ww = _pair(window_size, "window_size")
    sh, sw = _pair(shift_size, "shift_size")
    if not (sh or sw):
        return None
    if sh >= wh or sw >= ww:
        raise ValueError(f"shift {sh}x{sw} must be smaller than the window {wh}x{ww}")
    hp, wp = _padded(grid_size, (wh, ww))
    region = torch.zeros(1, hp, wp, 1, device=device)
    count = 0
    for rows in (slice(0, -wh), slice(-wh, -sh if sh else None), slice(-sh, None) if sh else slice(0, 0)):
        for cols in (slice(0, -ww), slice(-ww, -sw if sw else None), slice(-sw, None) if sw else slice(0, 0)):
            region[:, rows, cols, :] = count
            count += 1
    ids = window_partition(region, (wh, ww)).squeeze(-1)  # (nW, Nw)
    differs = ids[:, None, :] != ids[:, :, None]
    return torch.zeros(differs.shape, device=device, dtype=dtype).masked_fill(differs, masked_value)


def window_buckets(
    window_size: Size | int, ratio: float = 1.9, device: torch.device | str | None = None
) -> tuple[torch.Tensor, int]:
    """Window-sized product bucket map ``(Nw, Nw)`` and ``K``."""
    wh, ww = _pair(window_size, "window_size")
    return product_buckets(wh, ww, ratio=ratio, device=device)
