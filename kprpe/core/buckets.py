"""Bucket maps: which relative-position bucket each (query, key) token pair falls into.

The quantiser and the four 2D methods follow iRPE (Wu et al., ICCV 2021), which KP-RPE builds on.
Tokens sit on an ``h x w`` grid in row-major order. For a query ``i = (ri, ci)`` and a key
``j = (rj, cj)`` the per-axis offsets are ``dr = ri - rj`` and ``dc = ci - cj`` (query minus key),
quantised by the piecewise function

    g(x) = round(x)                                                              if |x| <= alpha
    g(x) = sign(x) * min(beta, round(alpha + ln(|x| / alpha) / ln(gamma / alpha) * (beta - alpha)))

with ``alpha = ratio, beta = 2 * ratio, gamma = 8 * ratio``. For the default ``ratio = 1.9``,
per-axis offsets 0, 1, 2, 3, >=4 fall into 0, 1, 2, 2, 3.

Methods (``b = int(beta)``, ``S = 2b + 1``):

* ``product`` (KP-RPE's): ``bucket = (g(dr) + b) * S + (g(dc) + b)``, ``K = S * S`` (49 for 1.9).
* ``euclidean``: ``g(round(sqrt(dr^2 + dc^2))) + b``, ``K = S``.
* ``quant``: ``g(dr^2 + dc^2) + b``, ``K = S``.
* ``cross``: two maps, ``g(dr) + b`` and ``g(dc) + b``, each with ``K = S``; the bias is the sum of two
  lookups (see :func:`cross_buckets`).
* ``exact`` (not iRPE's; Swin's relative-position index): every distinct offset is its own bucket,
  ``(dr + h - 1) * (2w - 1) + (dc + w - 1)``, ``K = (2h - 1) * (2w - 1)``.

``euclidean`` and ``quant`` distances are non-negative, so only half of their ``S`` buckets are ever
used; the count is kept as iRPE defines it so that its tables load unchanged.

Prefix tokens (a CLS token, registers) come before the grid tokens. With ``num_prefix_tokens = p``
every pair that involves a prefix token gets one extra bucket, index ``K``, and the map grows to
``(p + h*w, p + h*w)`` with ``K + 1`` buckets (iRPE's "skip").

Maps depend only on the grid, so they are computed once per ``(method, h, w, ratio, p, device)`` and
cached. The returned tensors are shared: treat them as read-only.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections import OrderedDict
from typing import Literal

import torch

__all__ = [
    "BucketMethod",
    "piecewise_index",
    "bucket_map",
    "product_buckets",
    "cross_buckets",
    "num_buckets",
    "check_buckets",
    "check_bucket_range",
]

BucketMethod = Literal["product", "euclidean", "quant", "cross", "exact"]
_METHODS = ("product", "euclidean", "quant", "cross", "exact")


def _coefficients(ratio: float) -> tuple[float, float, float]:
    """(alpha, beta, gamma) of the piecewise quantiser for a bucket ``ratio``."""
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive finite number, got {ratio!r}")
    return 1.0 * ratio, 2.0 * ratio, 8.0 * ratio


def piecewise_index(offsets: torch.Tensor, ratio: float = 1.9) -> torch.Tensor:
    """Quantise signed offsets with iRPE's piecewise function ``g`` (module docstring).

    Args:
        offsets: integer or float tensor of any shape.
        ratio: bucket ratio; ``alpha, beta, gamma = ratio, 2 ratio, 8 ratio``.

    Returns:
        ``int64`` tensor of the same shape with values in ``[-int(beta), int(beta)]``.
    """
    alpha, beta, gamma = _coefficients(ratio)
    x = offsets.to(torch.float64)
    near = x.abs() <= alpha
    far_abs = x.abs().clamp_min(alpha)  # keeps log() finite where the branch is not used
    far = torch.sign(x) * (alpha + torch.log(far_abs / alpha) / math.log(gamma / alpha) * (beta - alpha))
    # round first, then cap at beta (a float), then truncate towards zero: exactly iRPE's order
    far = far.round().clamp(min=-beta, max=beta)
    return torch.where(near, x.round(), far).to(torch.int64)


def num_buckets(
    method: BucketMethod = "product",
    ratio: float = 1.9,
    num_prefix_tokens: int = 0,
    grid_size: tuple[int, int] | None = None,
) -> int:
    """Number of buckets ``K`` of a method (per map for ``cross``), +1 when prefix tokens exist.

    ``exact`` depends on the grid, so it needs ``grid_size``; the iRPE methods do not.
    """
    _check_method(method)
    if method == "exact":
        if grid_size is None:
            raise ValueError("method='exact' has (2h-1)*(2w-1) buckets: pass grid_size=(h, w)")
        k = (2 * grid_size[0] - 1) * (2 * grid_size[1] - 1)
    else:
        _, beta, _ = _coefficients(ratio)
        side = 2 * int(beta) + 1
        k = side * side if method == "product" else side
    return k + (1 if num_prefix_tokens > 0 else 0)


def bucket_map(
    h: int,
    w: int,
    method: BucketMethod = "product",
    ratio: float = 1.9,
    num_prefix_tokens: int = 0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, int]:
    """Bucket map of an ``h x w`` token grid.

    Args:
        h, w: grid height and width in tokens (any positive sizes, e.g. 14x14 or a 3x5 Swin window).
        method: ``"product"`` (default, KP-RPE), ``"euclidean"``, ``"quant"`` or ``"exact"``.
            ``"cross"`` needs two maps: use :func:`cross_buckets`.
        ratio: bucket ratio (1.9 in every released KP-RPE/iRPE config).
        num_prefix_tokens: tokens (e.g. CLS) placed before the grid; they share the extra bucket ``K``.
        device: where the map lives.

    Returns:
        ``(buckets, K)``: ``buckets`` is a cached, read-only ``int64`` tensor of shape
        ``(p + h*w, p + h*w)`` indexed ``[query, key]``; ``K`` is the number of buckets
        (values lie in ``[0, K)``).
    """
    _check_method(method)
    if method == "cross":
        raise ValueError("method='cross' has two bucket maps (rows and columns); use cross_buckets()")
    _check_grid(h, w)
    _check_prefix(num_prefix_tokens)
    device = torch.device(device) if device is not None else torch.device("cpu")
    buckets = _cached_map(method, int(h), int(w), float(ratio), int(num_prefix_tokens), str(device))
    return buckets, num_buckets(method, ratio, num_prefix_tokens, (h, w))


def product_buckets(
    h: int,
    w: int,
    ratio: float = 1.9,
    num_prefix_tokens: int = 0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, int]:
    """The ``product`` bucket map that KP-RPE uses: ``(buckets (N, N) int64, K)``; K = 49 for 1.9.

    Example:
        >>> buckets, K = product_buckets(14, 14)
        >>> buckets.shape, K
        (torch.Size([196, 196]), 49)
    """
    return bucket_map(h, w, "product", ratio, num_prefix_tokens, device)


def cross_buckets(
    h: int,
    w: int,
    ratio: float = 1.9,
    num_prefix_tokens: int = 0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The two maps of iRPE's ``cross`` method: ``(row_buckets, col_buckets, K)``.

    The bias of a pair is ``table_rows[row_buckets[i, j]] + table_cols[col_buckets[i, j]]``.
    """
    _check_grid(h, w)
    _check_prefix(num_prefix_tokens)
    device = torch.device(device) if device is not None else torch.device("cpu")
    args = (int(h), int(w), float(ratio), int(num_prefix_tokens), str(device))
    rows = _cached_map("cross_rows", *args)
    cols = _cached_map("cross_cols", *args)
    return rows, cols, num_buckets("cross", ratio, num_prefix_tokens)


def check_buckets(buckets: torch.Tensor, num_queries: int, num_keys: int, num_table_buckets: int) -> None:
    """Raise a clear error when a bucket map does not fit the tokens or the table it indexes.

    Shape and dtype are checked at every call. The value range ``0 <= buckets < num_table_buckets`` needs
    the map's minimum and maximum, a device synchronisation on an accelerator, so it is checked once per
    map, table width and in-place version (see :func:`check_bucket_range`); it is skipped while tracing or
    compiling.
    """
    if buckets.dim() != 2:
        raise ValueError(f"buckets must be a 2D (N, N) map, got shape {tuple(buckets.shape)}")
    if tuple(buckets.shape) != (num_queries, num_keys):
        raise ValueError(
            f"bucket map of shape {tuple(buckets.shape)} does not match {num_queries} query and "
            f"{num_keys} key tokens: was it built for another grid (or without the prefix tokens)?"
        )
    if buckets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"buckets must be an int64/int32 tensor, got {buckets.dtype}")
    if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
        check_bucket_range(buckets, num_table_buckets)


# maps whose range was checked: key -> a weak reference to the map (a key whose map was freed, and whose
# memory may now hold another map, never matches)
_range_checked: OrderedDict[tuple, weakref.ref] = OrderedDict()
_RANGE_CHECKED_MAX = 64


def check_bucket_range(buckets: torch.Tensor, num_table_buckets: int) -> None:
    """Raise unless every bucket lies in ``[0, num_table_buckets)``; once per map.

    A map is remembered by identity, device, shape, dtype, table width and in-place version: models pass
    the same bucket buffer at every call, so the check (one device synchronisation on CUDA) runs once, and
    an edited or another map is checked again. Without it an out-of-range bucket reads outside the table
    row silently in the Triton kernel (which loads buckets as int8 and does not check bounds) and stops a
    CUDA gather with a device-side assert that does not say which map is wrong.
    """
    key = (buckets.data_ptr(), buckets.device, tuple(buckets.shape), buckets.dtype, buckets._version, num_table_buckets)
    held = _range_checked.get(key)
    if held is not None and held() is buckets:
        _range_checked.move_to_end(key)
        return
    if buckets.numel():
        low, high = (int(v) for v in torch.stack([buckets.min(), buckets.max()]).tolist())
        if high >= num_table_buckets:
            raise ValueError(
                f"bucket map refers to bucket {high} but the table has only {num_table_buckets} buckets: "
                "map and table come from different settings (ratio, prefix)"
            )
        if low < 0:
            raise ValueError(f"bucket map has a negative bucket ({low}); buckets must lie in [0, {num_table_buckets})")
    _range_checked[key] = weakref.ref(buckets)
    while len(_range_checked) > _RANGE_CHECKED_MAX:
        _range_checked.popitem(last=False)


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"unknown bucket method {method!r}; choose one of {_METHODS}")


def _check_grid(h: int, w: int) -> None:
    if not (isinstance(h, int) and isinstance(w, int)) or h < 1 or w < 1:
        raise ValueError(f"grid size must be two positive ints, got ({h!r}, {w!r})")


def _check_prefix(num_prefix_tokens: int) -> None:
    if not isinstance(num_prefix_tokens, int) or num_prefix_tokens < 0:
        raise ValueError(f"num_prefix_tokens must be a non-negative int, got {num_prefix_tokens!r}")


@functools.lru_cache(maxsize=128)
def _cached_map(method: str, h: int, w: int, ratio: float, num_prefix: int, device: str) -> torch.Tensor:
    rows = torch.arange(h).repeat_interleave(w)  # (N,) row of each token
    cols = torch.arange(w).repeat(h)  # (N,) column of each token
    dr = rows[:, None] - rows[None, :]  # (N, N) query minus key
    dc = cols[:, None] - cols[None, :]
    b = int(_coefficients(ratio)[1])
    if method == "product":
        ids = (piecewise_index(dr, ratio) + b) * (2 * b + 1) + (piecewise_index(dc, ratio) + b)
    elif method == "euclidean":
        ids = piecewise_index((dr.square() + dc.square()).double().sqrt().round(), ratio) + b
    elif method == "quant":
        ids = piecewise_index(dr.square() + dc.square(), ratio) + b
    elif method == "cross_rows":
        ids = piecewise_index(dr, ratio) + b
    elif method == "cross_cols":
        ids = piecewise_index(dc, ratio) + b
    elif method == "exact":
        ids = (dr + h - 1) * (2 * w - 1) + (dc + w - 1)
    else:  # pragma: no cover - guarded by _check_method
        raise AssertionError(method)
    if num_prefix:
        base_k = num_buckets(method if method in _METHODS else "cross", ratio, 0, (h, w))
        n = h * w
        full = torch.full((num_prefix + n, num_prefix + n), base_k, dtype=torch.int64)
        full[num_prefix:, num_prefix:] = ids
        ids = full
    ids = ids.contiguous().to(device)
    ids.requires_grad_(False)
    return ids
