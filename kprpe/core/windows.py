"""Swin-style windows for features, KP-RPE tables and keypoints.

Window KP-RPE reads, inside every (shifted) window, a per-query table through the window-sized
product bucket map (:func:`window_buckets`); the table replaces Swin's learned relative-position bias
and the shifted-window mask is added on top. Two frames for the table are offered, and they differ in
*which grid ``M`` and which keypoint coordinates* the offsets ``D = M - P`` are taken in:

* **stage grid** (the authors' released Swin-KP-RPE face code): ``M`` is the whole stage feature map,
  token centres ``((c + 0.5) / w, (r + 0.5) / h)``, keypoints in ``[0, 1]`` of the stage map (= of the
  input frame). One table ``(B, H, h*w, K)`` is computed per stage and layer, then padded, cyclically
  shifted and partitioned exactly like the features (:func:`partition_tables`); padded tokens get
  zero rows. A token's offsets are the same in every window it falls in.
* **window grid** (the paper's wording, Sec. 5: "the 2D grid M the size of the window"): ``M`` is the
  ``wh x ww`` window, token centres ``((j + 0.5) / ww, (i + 0.5) / wh)`` for window-local ``(i, j)``,
  and the keypoints are moved into each window's frame (:func:`window_keypoints`): translated by the
  window's top-left token and scaled by the window size. For the tokens of a window's own region this
  is the stage offset scaled by ``(w / ww, h / wh)``; a token that the cyclic shift wrapped in from the
  opposite edge sits, in the window's frame, next to the window's region (as it does for Swin's own
  bias), so its offsets are those of that window-local position, not of its place in the image; padded
  tokens get the rows of their window-local position. Tables are ``(B * nW, H, wh*ww, K)``, built by a
  :class:`~kprpe.core.KeypointRPE` whose ``grid_size`` is the window.

Sizes are ``(rows, cols)`` pairs. Padding goes at the bottom and right, as in Swin; the cyclic shift
moves content up/left by ``shift_size`` before partitioning and back afterwards. Windows are ordered
batch-major, then row-major over the (padded, shifted) window grid, for features, tables and keypoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .buckets import product_buckets

__all__ = [
    "TABLE_GRIDS",
    "as_pair",
    "compact_window_buckets",
    "from_windows",
    "partition_tables",
    "shifted_window_mask",
    "to_windows",
    "window_buckets",
    "window_keypoints",
    "window_partition",
    "window_reverse",
]

#: frames a window table can be computed in (module docstring)
TABLE_GRIDS = ("stage", "window")

Size = Sequence[int]


def as_pair(size: Size | int, name: str, minimum: int = 0) -> tuple[int, int]:
    """``size`` as a ``(rows, cols)`` pair of ints ``>= minimum``; an int means both.

    Raises:
        ValueError: naming ``name`` when ``size`` is not one or two integers ``>= minimum``.
    """
    if isinstance(size, int):
        size = (size, size)
    try:
        ok = len(size) == 2 and all(int(s) == s and s >= minimum for s in size)
    except (TypeError, ValueError):
        ok = False
    if not ok or any(isinstance(s, bool) for s in size):
        kind = "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name} must be an int or a pair of ints {kind}, got {size!r}")
    return int(size[0]), int(size[1])


def _padded(grid_size: Size, window_size: Size) -> tuple[int, int]:
    (h, w), (wh, ww) = as_pair(grid_size, "grid_size"), as_pair(window_size, "window_size")
    return h + (-h) % wh, w + (-w) % ww


def window_partition(x: torch.Tensor, window_size: Size | int) -> torch.Tensor:
    """``(B, h, w, C)`` -> ``(B * nW, wh * ww, C)``; ``h``, ``w`` must be multiples of the window.

    Windows are ordered batch-major, then row-major over the window grid.
    """
    wh, ww = as_pair(window_size, "window_size")
    batch, h, w, channels = x.shape
    if h % wh or w % ww:
        raise ValueError(f"feature map {h}x{w} is not a multiple of the window {wh}x{ww}; pad it first")
    x = x.view(batch, h // wh, wh, w // ww, ww, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, channels)


def window_reverse(windows: torch.Tensor, window_size: Size | int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh * ww, C)`` -> ``(B, h, w, C)``."""
    wh, ww = as_pair(window_size, "window_size")
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
    wh, ww = as_pair(window_size, "window_size")
    sh, sw = as_pair(shift_size, "shift_size")
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
    h, w = as_pair(grid_size, "grid_size")
    sh, sw = as_pair(shift_size, "shift_size")
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
        ``(B * nW, H, wh * ww, K)``, window order as :func:`to_windows`. A table shared by all heads
        (an expanded view with stride 0 along ``H``, as the shared :class:`~kprpe.core.KeypointRPE`
        variants return) is partitioned once and expanded afterwards, so the result is again a view
        whose memory does not grow with ``H``.
    """
    h, w = as_pair(grid_size, "grid_size")
    if table.dim() != 4:
        raise ValueError(f"table must have shape (B, H, h*w, K), got {tuple(table.shape)}")
    batch, heads, tokens, k = table.shape
    if tokens != h * w:
        raise ValueError(f"table has {tokens} query rows but the stage grid {h}x{w} has {h * w} tokens")
    shared = heads > 1 and table.stride(1) == 0
    stored = table[:, :1] if shared else table
    stored_heads = stored.shape[1]
    per_token = stored.permute(0, 2, 1, 3).reshape(batch, h, w, stored_heads * k)  # (B, h, w, H'*K)
    windows = to_windows(per_token, window_size, shift_size)  # (B*nW, Nw, H'*K)
    windows = windows.view(windows.shape[0], windows.shape[1], stored_heads, k).permute(0, 2, 1, 3)
    return windows.expand(-1, heads, -1, -1) if shared else windows


def window_keypoints(
    keypoints: torch.Tensor, grid_size: Size, window_size: Size | int, shift_size: Size | int = 0
) -> torch.Tensor:
    """Keypoints in the frame of every (shifted) window: the input of a window-grid ``KeypointRPE``.

    The window with window-grid index ``(p, q)`` of the padded map rolled by ``-shift`` has its top-left
    token at ``(p * wh + sh, q * ww + sw)`` of the stage grid (before the roll). A keypoint ``(x, y)``
    in ``[0, 1]`` of the ``h x w`` stage grid becomes

        ``x' = (x * w - q * ww - sw) / ww``,  ``y' = (y * h - p * wh - sh) / wh``,

    so a token at window-local ``(i, j)`` of the window's own region is at ``((j + 0.5) / ww,
    (i + 0.5) / wh)`` in the same frame. Values outside ``[0, 1]`` are expected (keypoints outside the
    window). Further columns (confidence) are copied; missing keypoints (NaN) stay missing.

    Args:
        keypoints: ``(B, L, 2 + c)`` ``(x, y)`` in ``[0, 1]`` of the stage grid, then ``c`` more columns.
        grid_size: ``(h, w)`` stage grid in tokens.

    Returns:
        ``(B * nW, L, 2 + c)`` in the window order of :func:`to_windows`, the dtype of ``keypoints``.
    """
    if keypoints.dim() != 3 or keypoints.shape[-1] < 2:
        raise ValueError(f"keypoints must have shape (B, L, 2 + c), got {tuple(keypoints.shape)}")
    h, w = as_pair(grid_size, "grid_size", minimum=1)
    wh, ww = as_pair(window_size, "window_size", minimum=1)
    sh, sw = as_pair(shift_size, "shift_size")
    hp, wp = _padded((h, w), (wh, ww))
    dtype, device = keypoints.dtype, keypoints.device
    rows = torch.arange(0, hp, wh, device=device, dtype=dtype) + sh  # top-left token rows (nWh,)
    cols = torch.arange(0, wp, ww, device=device, dtype=dtype) + sw  # (nWw,)
    origin = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1).reshape(-1, 2)  # (nW, 2) as (x, y)
    scale = torch.tensor([w, h], device=device, dtype=dtype)
    size = torch.tensor([ww, wh], device=device, dtype=dtype)
    xy = (keypoints[:, None, :, :2] * scale - origin[None, :, None, :]) / size  # (B, nW, L, 2)
    rest = keypoints[:, None, :, 2:].expand(-1, origin.shape[0], -1, -1)
    return torch.cat([xy, rest], dim=-1).flatten(0, 1)


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
    wh, ww = as_pair(window_size, "window_size")
    sh, sw = as_pair(shift_size, "shift_size")
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
    """Window-sized product bucket map ``(Nw, Nw)`` and ``K``.

    ``K`` is the full product count (49 for ratio 1.9) so that tables keep the layout of the authors'
    checkpoints; a small window never reaches some buckets. In a 3x5 window the row offsets -2..2 reach
    5 of the 7 row buckets and the column offsets -4..4 all 7 column buckets, so 35 of the 49 buckets
    occur and 14 never do: 28.6 % of ``W_L``'s columns get no gradient. :func:`compact_window_buckets`
    renumbers the occurring ones.
    """
    wh, ww = as_pair(window_size, "window_size", minimum=1)
    return product_buckets(wh, ww, ratio=ratio, device=device)


def compact_window_buckets(
    window_size: Size | int, ratio: float = 1.9, device: torch.device | str | None = None
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """The window product map with only the buckets that occur, renumbered ``0 .. K' - 1``.

    Returns:
        ``(buckets (Nw, Nw) int64, K', used (K',) int64)``: ``used[k']`` is the full-map bucket that
        compact bucket ``k'`` stands for (increasing), so ``compact[i, j] = k'`` exactly when
        ``full[i, j] = used[k']``, and a full table converts with ``table[..., used]``. A table built
        with ``K'`` columns has no column that never receives a gradient.
    """
    full, _ = window_buckets(window_size, ratio, device)
    used, compact = torch.unique(full, sorted=True, return_inverse=True)
    return compact.view_as(full), int(used.numel()), used
