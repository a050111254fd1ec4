"""Fused KP-RPE attention in Triton: ``softmax(q k^T * scale + T[i, buckets[i, j]] + mask) v``.

Flash-attention style: the dense ``(B, H, Nq, Nk)`` bias, logits and probabilities never exist in memory.
Each program streams key blocks past one block of queries, reads its bias from the query rows of the
table (``BLOCK_M x K`` values, on-chip cached) through the bucket map, and keeps an online softmax.

Backward (two kernels, no atomics anywhere):

* ``_bwd_kv``: one program per key block, looping over query blocks: ``dK``, ``dV``.
* ``_bwd_q_table``: one program per query block, looping over key blocks: ``dQ`` and the table
  gradient. ``dT[i, k] = sum_j dS[i, j] [buckets[i, j] == k]`` is a reduction along the query's own
  row, so the program that owns the row owns its ``K`` gradient values and accumulates them on chip.

Tables may be broadcast views (stride 0 over batch or heads, e.g. the shared KP-RPE variants): the
kernels read them through their strides and the gradient is summed over the broadcast dimensions.

Short sequences (Swin windows of 15 tokens) are packed: ``G`` sequences side by side fill one
program's 64-row tiles, block-diagonally (pairs from different sequences get ``-inf``), instead of
each padding a tile of its own (:meth:`BlockSizes.for_shape` picks ``G``).

Runs on CUDA tensors; with ``TRITON_INTERPRET=1`` set before this module is imported, Triton's
interpreter runs the same kernels on CPU tensors (how the tests check them without a GPU).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from .buckets import check_buckets
from .masks import additive_mask

__all__ = ["BlockSizes", "Separable", "find_separable", "interpreted_kernels", "triton_kprpe_attention"]

_LOG2E = 1.4426950408889634


_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def interpreted_kernels() -> bool:
    """Whether this module's kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return _INTERPRETED


class BlockSizes:
    """Tile sizes of the kernels (rows of queries x keys per program step) and launch shape."""

    def __init__(
        self, block_m: int = 64, block_n: int = 64, num_warps: int = 4, num_stages: int = 2, group: int = 1
    ) -> None:
        for name, value in (("block_m", block_m), ("block_n", block_n)):
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16, got {value}")
        if not isinstance(group, int) or group < 1:
            raise ValueError(f"group must be a positive int, got {group!r}")
        self.block_m, self.block_n, self.num_warps, self.num_stages = block_m, block_n, num_warps, num_stages
        self.group = group  # sequences packed side by side into one program's rows (small windows)

    @classmethod
    def for_shape(cls, queries: int, keys: int, dtype: torch.dtype = torch.bfloat16) -> BlockSizes:
        """Default tiles: 64 x 64 with 4 warps in half precision, 32 x 32 in float32 (its 3xTF32 products
        need about twice the registers). Sequences of at most half a tile (SwinGait's 15-token windows)
        are packed side by side, ``tile // length`` per program, instead of padding each to a tile.

        Chosen from the register and spill counts of ``tools/triton_resources.py`` (sm_90); GPU timings
        (``tools/bench_attention.py``) are the final word."""
        tile = 32 if dtype == torch.float32 else 64
        longest = max(queries, keys, 1)
        return cls(tile, tile, num_warps=4, group=tile // longest if 2 * longest <= tile else 1)

    def __repr__(self) -> str:
        return (
            f"BlockSizes(block_m={self.block_m}, block_n={self.block_n}, num_warps={self.num_warps}, "
            f"group={self.group})"
        )


# the kernels' arguments stay grouped per tensor (pointers, then each tensor's strides): not reformatted
# fmt: off
@triton.jit
def _mm(a, b, FP32: tl.constexpr):
    """``a @ b`` accumulated in float32; float32 inputs use 3xTF32 (about float32 accuracy on tensor cores)."""
    if FP32:
        return tl.dot(a, b, input_precision="tf32x3")
    return tl.dot(a, b)


@triton.jit
def _rows(start, BLOCK: tl.constexpr, N: tl.constexpr, G: tl.constexpr, b0, B):
    """A block of packed rows: ``G`` sequences of ``N`` tokens side by side, from sequence ``b0`` on.

    Returns ``(local, tok, valid)``: each row's sequence within the group (``row // N``; the scalar 0
    when ``G == 1``, so that single sequences keep scalar base addresses), its token ``row % N``, and
    whether it exists (inside the ``G * N`` rows and the batch).
    """
    rows = start + tl.arange(0, BLOCK)
    local = 0
    tok = rows
    valid = rows < N  # one sequence per program: the grid has exactly one program row per sequence
    if G > 1:  # a compile-time branch
        local = rows // N
        tok = rows % N
        valid = (rows < G * N) & (b0 + local < B)
    return local, tok, valid


@triton.jit
def _load_rows(base, row_offsets, row_valid, cols, stride_col, n_cols):
    """Rows at ``base + row_offsets`` (one offset per row), columns ``cols``; outside entries read as 0."""
    mask = row_valid[:, None] & (cols[None, :] < n_cols)
    return tl.load(base + row_offsets[:, None] + cols[None, :] * stride_col, mask=mask, other=0.0)


@triton.jit
def _store_rows(base, values, row_offsets, row_valid, cols, stride_col, n_cols):
    """Store ``values`` (cast to the destination type) at the rows and columns of :func:`_load_rows`."""
    mask = row_valid[:, None] & (cols[None, :] < n_cols)
    ptrs = base + row_offsets[:, None] + cols[None, :] * stride_col
    tl.store(ptrs, values.to(base.dtype.element_ty), mask=mask)


@triton.jit
def _scores(
    q, k, BKT, table_rows, mask_base, loc_m, tok_m, valid_m, loc_n, tok_n, valid_n, Nk, qk_scale, stk,
    smb, smn, smk, G: tl.constexpr, HAS_MASK: tl.constexpr, FP32: tl.constexpr,
):
    """Logits of one (query block, key block) tile in log2 units, ``(BLOCK_M, BLOCK_N)`` float32, and the
    tile's buckets (``-1`` where the pair does not attend).

    ``q`` is ``(BLOCK_M, D_PAD)``, ``k`` ``(BLOCK_N, D_PAD)`` (zero-padded); ``table_rows`` points at each
    query's table row, ``mask_base`` at the group's first mask. Pairs from different sequences of a
    packed block, and missing rows, get ``-inf``.
    """
    attend = valid_m[:, None] & valid_n[None, :]  # both rows exist and, when packed, share a sequence
    if G > 1:
        attend = attend & (loc_m[:, None] == loc_n[None, :])
    s = _mm(q, tl.trans(k), FP32)
    bucket = tl.load(BKT + tok_m[:, None] * Nk + tok_n[None, :], mask=attend, other=0)
    bias = tl.load(table_rows[:, None] + bucket * stk, mask=attend, other=0.0).to(tl.float32)
    s = s * qk_scale + bias * 1.4426950408889634
    if HAS_MASK:
        mask_ptrs = mask_base + tok_m[:, None] * smn + tok_n[None, :] * smk
        if G > 1:
            mask_ptrs += loc_m[:, None] * smb
        s += tl.load(mask_ptrs, mask=attend, other=0.0).to(tl.float32) * 1.4426950408889634
    return tl.where(attend, s, float("-inf")), tl.where(attend, bucket.to(tl.int32), -1)


@triton.jit
def _fwd(
    Q, K, V, T, BKT, MASK, O, LSE,
    sqb, sqh, sqn, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
    stb, sth, stn, stk, smb, smh, smn, smk, sob, soh, son, sod,
    B, H, D, DV, qk_scale,
    Nq: tl.constexpr, Nk: tl.constexpr, G: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr, DV_PAD: tl.constexpr,
    HAS_MASK: tl.constexpr, FP32: tl.constexpr,
):
    """Output and per-row log2-sum-exp (for the backward) of one block of (packed) query rows."""
    b0 = tl.program_id(0) // H * G  # first sequence of this program's group
    h = tl.program_id(0) % H
    loc_m, tok_m, valid_m = _rows(tl.program_id(1) * BLOCK_M, BLOCK_M, Nq, G, b0, B)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, DV_PAD)
    q = _load_rows(Q + b0 * sqb + h * sqh, loc_m * sqb + tok_m * sqn, valid_m, offs_d, sqd, D)
    table_rows = T + b0 * stb + h * sth + loc_m * stb + tok_m * stn
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, DV_PAD], tl.float32)
    for start_n in range(0, G * Nk, BLOCK_N):
        loc_n, tok_n, valid_n = _rows(start_n, BLOCK_N, Nk, G, b0, B)
        k = _load_rows(K + b0 * skb + h * skh, loc_n * skb + tok_n * skn, valid_n, offs_d, skd, D)
        s, _ = _scores(
            q, k, BKT, table_rows, MASK + b0 * smb + h * smh, loc_m, tok_m, valid_m, loc_n, tok_n, valid_n, Nk,
            qk_scale, stk, smb, smn, smk, G, HAS_MASK, FP32,
        )
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows masked out so far stay at zero weight
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = _load_rows(V + b0 * svb + h * svh, loc_n * svb + tok_n * svn, valid_n, offs_dv, svd, DV)
        acc = acc * alpha[:, None] + _mm(p.to(v.dtype), v, FP32)
        m_i = m_new
    l_i = tl.where(valid_m, l_i, 1.0)  # rows that do not exist: no 0/0 (they are not stored)
    _store_rows(O + b0 * sob + h * soh, acc / l_i[:, None], loc_m * sob + tok_m * son, valid_m, offs_dv, sod, DV)
    tl.store(LSE + ((b0 + loc_m) * H + h) * Nq + tok_m, m_i + tl.log2(l_i), mask=valid_m)


@triton.jit
def _bwd_kv(
    Q, K, V, T, BKT, MASK, DO, LSE, DELTA, DK, DV_,
    sqb, sqh, sqn, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
    stb, sth, stn, stk, smb, smh, smn, smk, sob, soh, son, sod,
    B, H, D, DV, qk_scale, scale,
    Nq: tl.constexpr, Nk: tl.constexpr, G: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr, DV_PAD: tl.constexpr,
    HAS_MASK: tl.constexpr, FP32: tl.constexpr,
):
    """dK and dV of one block of (packed) key rows; ``DO`` has the strides ``so*``, ``DK``/``DV_`` are
    contiguous ``(B, H, Nk, D|DV)``."""
    b0 = tl.program_id(0) // H * G  # first sequence of this program's group
    h = tl.program_id(0) % H
    loc_n, tok_n, valid_n = _rows(tl.program_id(1) * BLOCK_N, BLOCK_N, Nk, G, b0, B)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, DV_PAD)
    k = _load_rows(K + b0 * skb + h * skh, loc_n * skb + tok_n * skn, valid_n, offs_d, skd, D)
    v = _load_rows(V + b0 * svb + h * svh, loc_n * svb + tok_n * svn, valid_n, offs_dv, svd, DV)
    dk = tl.zeros([BLOCK_N, D_PAD], tl.float32)
    dv = tl.zeros([BLOCK_N, DV_PAD], tl.float32)
    for start_m in range(0, G * Nq, BLOCK_M):
        loc_m, tok_m, valid_m = _rows(start_m, BLOCK_M, Nq, G, b0, B)
        q = _load_rows(Q + b0 * sqb + h * sqh, loc_m * sqb + tok_m * sqn, valid_m, offs_d, sqd, D)
        do = _load_rows(DO + b0 * sob + h * soh, loc_m * sob + tok_m * son, valid_m, offs_dv, sod, DV)
        stats = ((b0 + loc_m) * H + h) * Nq + tok_m
        lse = tl.load(LSE + stats, mask=valid_m, other=0.0)
        delta = tl.load(DELTA + stats, mask=valid_m, other=0.0)
        table_rows = T + b0 * stb + h * sth + loc_m * stb + tok_m * stn
        s, _ = _scores(
            q, k, BKT, table_rows, MASK + b0 * smb + h * smh, loc_m, tok_m, valid_m, loc_n, tok_n, valid_n, Nk,
            qk_scale, stk, smb, smn, smk, G, HAS_MASK, FP32,
        )
        p = tl.exp2(s - lse[:, None])  # (BLOCK_M, BLOCK_N); 0 where the pair does not attend (s = -inf)
        dv += _mm(tl.trans(p.to(do.dtype)), do, FP32)
        ds = p * (_mm(do, tl.trans(v), FP32) - delta[:, None])
        dk += _mm(tl.trans(ds.to(q.dtype)), q, FP32)
    _store_rows(DK, dk * scale, (((b0 + loc_n) * H + h) * Nk + tok_n) * D, valid_n, offs_d, 1, D)
    _store_rows(DV_, dv, (((b0 + loc_n) * H + h) * Nk + tok_n) * DV, valid_n, offs_dv, 1, DV)


@triton.jit
def _bwd_q_table(
    Q, K, V, T, BKT, MASK, DO, LSE, DELTA, DQ, DT,
    sqb, sqh, sqn, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
    stb, sth, stn, stk, smb, smh, smn, smk, sob, soh, son, sod, sgb, sgh, sgn, sgk,
    B, H, D, DV, qk_scale, scale,
    Nq: tl.constexpr, Nk: tl.constexpr, G: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr, DV_PAD: tl.constexpr,
    NB: tl.constexpr, NB_PAD: tl.constexpr, HAS_MASK: tl.constexpr, TABLE_GRAD: tl.constexpr, FP32: tl.constexpr,
    SEP_S: tl.constexpr, S_PAD: tl.constexpr, KW: tl.constexpr, KH: tl.constexpr, KH_PAD: tl.constexpr,
):
    """dQ and the table gradient of one block of (packed) query rows (``DQ`` contiguous; ``DT`` a
    ``(B, H, Nq, NB)`` tensor with strides ``sg*``: the table's own layout, or dense float32 to be
    reduced over the dimensions a broadcast table was expanded along).

    Table gradient, generic maps (``SEP_S == 0``): one masked row sum per bucket and key tile.
    Separable maps (``SEP_S = S > 0``: ``bucket = a * S + c`` where ``a`` depends only on the query and
    the key's row ``j // KW``, as in the product map of a grid ``KW`` wide): per column bucket ``c``,
    ``Y[i, c, r] = sum_j dS[i, j] [c(i, j) == c] [j // KW == r]`` is one tensor-core product with the
    keys' row one-hot, and ``dT[i, a * S + c] = sum_r [a(i, r) == a] Y[i, c, r]`` is done once at the end.
    """
    b0 = tl.program_id(0) // H * G  # first sequence of this program's group
    h = tl.program_id(0) % H
    loc_m, tok_m, valid_m = _rows(tl.program_id(1) * BLOCK_M, BLOCK_M, Nq, G, b0, B)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, DV_PAD)
    offs_k = tl.arange(0, NB_PAD)
    offs_s = tl.arange(0, S_PAD)
    offs_r = tl.arange(0, KH_PAD)
    q = _load_rows(Q + b0 * sqb + h * sqh, loc_m * sqb + tok_m * sqn, valid_m, offs_d, sqd, D)
    do = _load_rows(DO + b0 * sob + h * soh, loc_m * sob + tok_m * son, valid_m, offs_dv, sod, DV)
    stats = ((b0 + loc_m) * H + h) * Nq + tok_m  # this row's index in (B, H, Nq)
    lse = tl.load(LSE + stats, mask=valid_m, other=0.0)
    delta = tl.load(DELTA + stats, mask=valid_m, other=0.0)
    table_rows = T + b0 * stb + h * sth + loc_m * stb + tok_m * stn
    dq = tl.zeros([BLOCK_M, D_PAD], tl.float32)
    dt = tl.zeros([BLOCK_M, NB_PAD], tl.float32)  # generic table gradient
    y3 = tl.zeros([BLOCK_M, S_PAD, KH_PAD], tl.float32)  # separable: per (column bucket, key row) sums
    for start_n in range(0, G * Nk, BLOCK_N):
        loc_n, tok_n, valid_n = _rows(start_n, BLOCK_N, Nk, G, b0, B)
        k = _load_rows(K + b0 * skb + h * skh, loc_n * skb + tok_n * skn, valid_n, offs_d, skd, D)
        v = _load_rows(V + b0 * svb + h * svh, loc_n * svb + tok_n * svn, valid_n, offs_dv, svd, DV)
        s, bucket = _scores(
            q, k, BKT, table_rows, MASK + b0 * smb + h * smh, loc_m, tok_m, valid_m, loc_n, tok_n, valid_n, Nk,
            qk_scale, stk, smb, smn, smk, G, HAS_MASK, FP32,
        )
        p = tl.exp2(s - lse[:, None])  # 0 where the pair does not attend (s = -inf)
        ds = p * (_mm(do, tl.trans(v), FP32) - delta[:, None])  # gradient of the logits = of the bias
        dq += _mm(ds.to(k.dtype), k, FP32)
        if TABLE_GRAD:  # pairs that do not attend have bucket -1 and match no bucket
            if SEP_S > 0:
                col_bucket = bucket % SEP_S  # -1 stays -1
                key_rows = ((tok_n // KW)[:, None] == offs_r[None, :]).to(k.dtype)  # (BLOCK_N, KH_PAD) one-hot
                for c in range(SEP_S):  # a loop, not unrolled: 7 live copies of the tile would spill
                    yc = _mm(tl.where(col_bucket == c, ds, 0.0).to(k.dtype), key_rows, FP32)
                    y3 += tl.where(offs_s[None, :, None] == c, yc[:, None, :], 0.0)
            else:
                for kk in range(NB):
                    col = tl.sum(tl.where(bucket == kk, ds, 0.0), 1)  # (BLOCK_M,)
                    dt += tl.where(offs_k[None, :] == kk, col[:, None], 0.0)
    _store_rows(DQ, dq * scale, stats * D, valid_m, offs_d, 1, D)
    if TABLE_GRAD:
        if SEP_S > 0:
            # the row bucket of (query, key row r) is that of the row's first key
            rows_valid = valid_m[:, None] & (offs_r[None, :] < KH)
            first_keys = tl.load(BKT + tok_m[:, None] * Nk + offs_r[None, :] * KW, mask=rows_valid, other=0)
            row_bucket = tl.where(rows_valid, first_keys.to(tl.int32) // SEP_S, -1)
            for a in range(SEP_S):
                za = tl.sum(tl.where(row_bucket[:, None, :] == a, y3, 0.0), 2)  # (BLOCK_M, S_PAD) over c
                grad_rows = DT + b0 * sgb + h * sgh + a * SEP_S * sgk
                _store_rows(grad_rows, za, loc_m * sgb + tok_m * sgn, valid_m, offs_s, sgk, SEP_S)
        else:
            _store_rows(DT + b0 * sgb + h * sgh, dt, loc_m * sgb + tok_m * sgn, valid_m, offs_k, sgk, NB)


# fmt: on


def _pad(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _pad_small(n: int) -> int:
    return max(2, triton.next_power_of_2(n))


class Separable(NamedTuple):
    """How a bucket map factors: ``bucket = a * radix + c`` with ``a`` fixed per (query, key row of
    ``key_width`` keys); ``radix == 0`` means it does not (generic path)."""

    radix: int
    key_width: int
    key_rows: int


_GENERIC = Separable(0, 1, 1)
_MAX_KEY_ROWS = 64  # beyond this the per-row sums cost more than the generic reduction saves


def find_separable(buckets: torch.Tensor, num_buckets: int) -> Separable:
    """The separable structure of a bucket map, if any.

    Tries ``radix = sqrt(K)`` (the product map's ``S``) and the widest key rows first: for a product
    map over an ``h x w`` grid this finds ``key_width = w``. Maps with prefix tokens (their extra
    bucket ``K = S*S``) and other methods fall back to the generic reduction.
    """
    radix = math.isqrt(num_buckets)
    nq, nk = buckets.shape
    if radix > 1 and radix * radix == num_buckets:
        row_bucket = buckets.to(torch.int64) // radix
        for width in sorted((w for w in range(2, nk + 1) if nk % w == 0), reverse=True):
            rows = row_bucket.view(nq, nk // width, width)
            if nk // width <= _MAX_KEY_ROWS and bool((rows == rows[..., :1]).all()):
                return Separable(radix, width, nk // width)
    return _GENERIC


class _PreparedMap(NamedTuple):
    source: torch.Tensor  # the caller's map, held so that its memory (and so its key) cannot be reused
    version: int
    index: torch.Tensor
    separable: Separable


_prepared: OrderedDict[tuple, _PreparedMap] = OrderedDict()
_PREPARED_MAX = 32


def _prepare_map(buckets: torch.Tensor, num_buckets: int, device: torch.device) -> tuple[torch.Tensor, Separable]:
    """The map as a compact contiguous index on ``device`` and its factorisation, cached per map.

    Models pass the same bucket buffer at every call, so the conversion and the structure check run once.
    """
    key = (buckets.data_ptr(), tuple(buckets.shape), buckets.dtype, buckets.device, num_buckets, device)
    entry = _prepared.get(key)
    if entry is not None and entry.source is buckets and entry.version == buckets._version:
        _prepared.move_to_end(key)
        return entry.index, entry.separable
    index_dtype = torch.int8 if num_buckets <= 127 else torch.int16 if num_buckets <= 32767 else torch.int32
    index = buckets.to(device=device, dtype=index_dtype).contiguous()  # small: tile loads stay in cache
    entry = _PreparedMap(buckets, buckets._version, index, find_separable(index, num_buckets))
    _prepared[key] = entry
    while len(_prepared) > _PREPARED_MAX:
        _prepared.popitem(last=False)
    return entry.index, entry.separable


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t``'s elements fill its memory span exactly once (a permutation of a contiguous layout)."""
    if any(st <= 0 for st, n in zip(t.stride(), t.shape) if n > 1):
        return False
    span = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()))
    return span == t.numel()


def _strides4(t: torch.Tensor | None) -> tuple[int, int, int, int]:
    return (0, 0, 0, 0) if t is None else tuple(t.stride())  # type: ignore[return-value]


def _launch_args(q, k, v, table, mask, blocks: BlockSizes) -> tuple[tuple, tuple, dict]:
    """What every kernel takes: the table and mask pointers (expanded to ``(B, H, Nq, ...)``; a
    placeholder for no mask), the strides of q, k, v, table and mask, and the compile-time meta."""
    batch, heads, nq, dim = q.shape
    table4 = table.expand(batch, heads, nq, table.shape[-1])
    mask4 = None if mask is None else mask.expand(batch, heads, nq, k.shape[2])
    strides = (*q.stride(), *k.stride(), *v.stride(), *table4.stride(), *_strides4(mask4))
    meta = {
        "Nq": nq, "Nk": k.shape[2], "G": blocks.group, "BLOCK_M": blocks.block_m, "BLOCK_N": blocks.block_n,
        "D_PAD": _pad(dim), "DV_PAD": _pad(v.shape[-1]), "HAS_MASK": mask4 is not None,
        "FP32": q.dtype == torch.float32, "num_warps": blocks.num_warps, "num_stages": blocks.num_stages,
    }  # fmt: skip
    return (table4, q if mask4 is None else mask4), strides, meta


class _KPRPEAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, table, buckets, mask, scale, blocks, separable):
        batch, heads, nq, dim = q.shape
        dim_v = v.shape[-1]
        (table4, mask_arg), strides, meta = _launch_args(q, k, v, table, mask, blocks)
        out = torch.empty(batch, heads, nq, dim_v, device=q.device, dtype=q.dtype)
        lse = torch.empty(batch * heads, nq, device=q.device, dtype=torch.float32)
        grid = (triton.cdiv(batch, blocks.group) * heads, triton.cdiv(blocks.group * nq, blocks.block_m))
        _fwd[grid](
            q, k, v, table4, buckets, mask_arg, out, lse, *strides, *out.stride(),
            batch, heads, dim, dim_v, scale * _LOG2E, **meta,
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, table, buckets, mask, out, lse)
        ctx.scale, ctx.blocks, ctx.separable = scale, blocks, separable
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, table, buckets, mask, out, lse = ctx.saved_tensors
        scale, blocks = ctx.scale, ctx.blocks
        batch, heads, nq, dim = q.shape
        nk, dim_v, num_buckets = k.shape[2], v.shape[-1], table.shape[-1]
        (table4, mask_arg), strides, meta = _launch_args(q, k, v, table, mask, blocks)
        grad_out = grad_out.contiguous() if grad_out.stride(-1) != 1 else grad_out
        delta = (grad_out.float() * out.float()).sum(-1).reshape(batch * heads, nq)
        table_grad = ctx.needs_input_grad[3]
        sep = ctx.separable if table_grad else _GENERIC
        dq = torch.empty(batch, heads, nq, dim, device=q.device, dtype=q.dtype)
        dk = torch.empty(batch, heads, nk, dim, device=q.device, dtype=k.dtype)
        dv = torch.empty(batch, heads, nk, dim_v, device=q.device, dtype=v.dtype)
        # the table's gradient goes straight into the table's own layout and dtype (for KP-RPE's per-layer
        # views that is the layout of the linear map's output, so its backward needs no copy); a table
        # broadcast over batch or heads gets a dense float32 buffer, summed over those dimensions below
        in_place_layout = tuple(table.shape[:2]) == (batch, heads) and _dense(table)
        if not table_grad:
            dt = lse
        elif in_place_layout:
            dt = torch.empty_strided(table.shape, table.stride(), device=q.device, dtype=table.dtype)
        else:
            dt = torch.empty(batch, heads, nq, num_buckets, device=q.device, dtype=torch.float32)
        common = (*strides, *grad_out.stride())
        programs = triton.cdiv(batch, blocks.group) * heads
        _bwd_kv[(programs, triton.cdiv(blocks.group * nk, blocks.block_n))](
            q, k, v, table4, buckets, mask_arg, grad_out, lse, delta, dk, dv,
            *common, batch, heads, dim, dim_v, scale * _LOG2E, scale, **meta,
        )  # fmt: skip
        _bwd_q_table[(programs, triton.cdiv(blocks.group * nq, blocks.block_m))](
            q, k, v, table4, buckets, mask_arg, grad_out, lse, delta, dq, dt,
            *common, *(dt.stride() if table_grad else (0, 0, 0, 0)), batch, heads, dim, dim_v, scale * _LOG2E, scale,
            NB=num_buckets, NB_PAD=triton.next_power_of_2(num_buckets), TABLE_GRAD=table_grad,
            SEP_S=sep.radix, S_PAD=_pad_small(sep.radix), KW=sep.key_width, KH=sep.key_rows,
            KH_PAD=_pad(sep.key_rows), **meta,
        )  # fmt: skip
        grad_table = None
        if table_grad and in_place_layout:
            grad_table = dt
        elif table_grad:
            dims = [d for d in (0, 1) if table.shape[d] == 1 and dt.shape[d] != 1]
            grad_table = (dt.sum(dim=dims, keepdim=True) if dims else dt).to(table.dtype)
        return dq, dk, dv, grad_table, None, None, None, None, None


def triton_kprpe_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    table: torch.Tensor,
    buckets: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
    blocks: BlockSizes | None = None,
    separable_grad: bool = True,
) -> torch.Tensor:
    """Fused attention with a bucket-table bias (the ``"triton"`` backend of ``kprpe_attention``).

    Args:
        q: ``(B, H, Nq, d)``; k: ``(B, H, Nk, d)``; v: ``(B, H, Nk, dv)`` (float32, float16 or bfloat16).
        table: ``(B|1, H|1, Nq, K)`` bias table (any strides; broadcast views are not copied).
        buckets: ``(Nq, Nk)`` int64/int32 map with values in ``[0, K)`` (checked once per map; the kernels
            read it as int8 for ``K <= 127``, int16 or int32 above).
        attn_mask: optional mask broadcastable to ``(B, H, Nq, Nk)`` (no gradient): additive float, or
            bool with ``True`` = attend (converted to ``0`` / ``-inf``); integer masks are an error.
        scale: logit scale, ``d ** -0.5`` by default.
        blocks: tile sizes (default: :meth:`BlockSizes.for_shape`).
        separable_grad: reduce the table gradient with the separable product-map scheme when the map
            allows it (see :func:`find_separable`); ``False`` forces the generic reduction.

    Returns:
        ``(B, H, Nq, dv)`` in ``q``'s dtype. Differentiable in ``q``, ``k``, ``v`` and ``table``.
    """
    if q.device.type != "cuda" and not _INTERPRETED:
        raise RuntimeError(
            "the triton backend runs on CUDA tensors (or on CPU in Triton's interpreter: set "
            "TRITON_INTERPRET=1 before importing kprpe)"
        )
    largest = max(t.numel() for t in (q, k, v, table) if t is not None)
    if largest >= 2**31:
        raise ValueError(
            f"the triton backend indexes with 32-bit offsets; a tensor has {largest} >= 2**31 elements: split the batch"
        )
    if attn_mask is not None and attn_mask.requires_grad:
        raise NotImplementedError("the triton backend has no gradient for attn_mask")
    if attn_mask is not None and not attn_mask.is_floating_point():  # bool (True = attend) -> 0 / -inf
        attn_mask = additive_mask(attn_mask, q.dtype)  # (integer masks: an error)
    if attn_mask is not None and attn_mask.dim() < 4:
        attn_mask = attn_mask.view((1,) * (4 - attn_mask.dim()) + tuple(attn_mask.shape))
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    check_buckets(buckets, q.shape[2], k.shape[2], table.shape[-1])  # the value range: once per map
    index, separable = _prepare_map(buckets, table.shape[-1], q.device)
    if not separable_grad:
        separable = _GENERIC
    return _KPRPEAttention.apply(
        q,
        k,
        v,
        table,
        index,
        attn_mask,
        float(scale),
        blocks or BlockSizes.for_shape(q.shape[2], k.shape[2], q.dtype),
        separable,
    )
