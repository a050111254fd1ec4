"""Attention with a per-query bucket-table bias: ``softmax(q k^T / sqrt(d) + B) v``.

``B[b, h, i, j] = table[b, h, i, buckets[i, j]]`` is added to the *already scaled* logits (never scaled
again). The same function serves KP-RPE (tables from keypoints), iRPE's contextual key-side RPE (tables
from the queries) and learned RPE bias tables (one row shared by every query).

Backends (all agree with ``reference`` in value and gradient, tested):

* ``reference``: plain PyTorch, the ground truth: gather, add, softmax (float32 for half types), matmul.
* ``sdpa``: one ``torch.gather`` into a dense ``(B, H, N, N)`` mask for
  ``F.scaled_dot_product_attention`` (memory-efficient / math kernels; differentiable in the mask).
* ``flex``: ``torch.nn.attention.flex_attention`` with a ``score_mod`` that reads the table through
  the bucket map, so the dense bias never exists. Compiled on CUDA; on CPU PyTorch only runs it
  eagerly and has no backward, so there it is for inference and tests.
* ``triton``: our fused Triton kernel (:mod:`kprpe.core.triton_attention`): forward and backward
  read the bias from the query rows of the table through the bucket map, never building the dense
  bias, and reduce the table gradient per query row on chip (no atomics). Needs the ``triton``
  package and CUDA tensors (or ``TRITON_INTERPRET=1`` on CPU, for tests).
* ``auto``: ``flex`` for inference on CUDA with sequences of at least 64 tokens (tiny Swin windows
  lose to dense kernels); ``sdpa`` for training on CUDA (a path known to train: flex's GPU backward is
  untested in this project, and its table gradient uses atomics) and for inference elsewhere;
  ``reference`` for training on CPU, where it measured faster forward+backward than ``sdpa``'s math
  path with a mask (``benchmarks/RESULTS.md``). ``auto`` does not pick ``triton`` until a GPU run of
  ``tools/bench_models.py`` has shown where it wins. :func:`explain_backend` says why.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .buckets import check_buckets
from .masks import additive_mask  # its own module: triton_attention needs it too (no import cycle)

__all__ = [
    "BACKENDS",
    "additive_mask",
    "backend_unavailable",
    "explain_backend",
    "gather_bias",
    "kprpe_attention",
    "select_backend",
]

logger = logging.getLogger(__name__)

#: Sequences shorter than this use dense kernels under ``auto`` (flex pads to 64/128-token blocks).
FLEX_MIN_TOKENS = 64

#: The first PyTorch release whose compiled ``flex_attention`` takes gradients into captured tensors (our
#: table); the ``flex`` backend refuses older ones. ``pyproject.toml`` requires it for the whole package.
FLEX_MIN_TORCH = (2, 6)


def gather_bias(table: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
    """Dense bias ``B[b, h, i, j] = table[b, h, i, buckets[i, j]]``.

    Args:
        table: ``(B, H, Nq, K)`` (``B``, ``H`` and ``Nq`` may be broadcast views).
        buckets: ``(Nq, Nk)`` integer map.

    Returns:
        ``(B, H, Nq, Nk)``.
    """
    batch, heads = table.shape[:2]
    index = buckets.to(device=table.device, dtype=torch.int64)
    return table.gather(-1, index.expand(batch, heads, *index.shape))  # backward: scatter_add into the table


def _check_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    table: torch.Tensor,
    buckets: torch.Tensor,
    attn_mask: torch.Tensor | None,
) -> None:
    for name, t in (("q", q), ("k", k), ("v", v), ("table", table)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4D, got shape {tuple(t.shape)}")
    batch, heads, queries, dim = q.shape
    if k.shape[:2] != (batch, heads) or v.shape[:2] != (batch, heads) or k.shape[-1] != dim:
        raise ValueError(
            f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} must share (B, H) and q, k the head dim"
        )
    if k.shape[2] != v.shape[2]:
        raise ValueError(f"k has {k.shape[2]} tokens but v has {v.shape[2]}")
    tb, th, tq, tk = table.shape
    if tb not in (1, batch) or th not in (1, heads) or tq != queries:
        raise ValueError(
            f"table of shape {tuple(table.shape)} does not fit q of shape {tuple(q.shape)}: expected "
            f"(B or 1, H or 1, {queries}, K) with B={batch}, H={heads}; was it built for another grid, "
            "head count or prefix-token count?"
        )
    check_buckets(buckets, queries, k.shape[2], tk)  # the value range: once per map (a sync on CUDA)
    if attn_mask is not None:
        try:
            torch.broadcast_shapes(attn_mask.shape, (batch, heads, queries, k.shape[2]))
        except RuntimeError as e:
            raise ValueError(
                f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to "
                f"{(batch, heads, queries, k.shape[2])}"
            ) from e


def _reference(q, k, v, table, buckets, attn_mask, dropout_p, scale):
    logits = (q * scale) @ k.transpose(-2, -1)  # (B, H, Nq, Nk)
    logits = logits + gather_bias(table, buckets).to(logits.dtype)
    if attn_mask is not None:
        logits = logits + attn_mask
    low_precision = logits.dtype in (torch.float16, torch.bfloat16)
    attn = (logits.float() if low_precision else logits).softmax(dim=-1).to(q.dtype)
    if dropout_p > 0.0:
        attn = F.dropout(attn, p=dropout_p)
    return attn @ v


def _sdpa(q, k, v, table, buckets, attn_mask, dropout_p, scale):
    bias = gather_bias(table, buckets).to(q.dtype)  # (B, H, Nq, Nk)
    if attn_mask is not None:
        bias = bias + attn_mask
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)


_compiled_flex: Callable | None = None


def _flex_kernel() -> Callable:
    """``flex_attention``, compiled once on first use (never at import)."""
    global _compiled_flex
    if _compiled_flex is None:
        from torch.nn.attention.flex_attention import flex_attention

        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex


def _flex(q, k, v, table, buckets, attn_mask, dropout_p, scale):
    from torch.nn.attention.flex_attention import flex_attention

    if dropout_p > 0.0:
        raise NotImplementedError("backend='flex' has no attention dropout; use backend='sdpa'")
    if (missing := _flex_unavailable()) is not None:
        raise RuntimeError(f"backend='flex' cannot run here: {missing}; use backend='sdpa'")
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, table))
    if q.device.type == "cpu" and needs_grad:
        raise NotImplementedError(
            "PyTorch's flex_attention has no backward on CPU; use backend='sdpa' (or 'auto') to train on CPU"
        )
    batch, heads, queries, _ = q.shape
    table = table.expand(batch, heads, queries, table.shape[-1])
    index = buckets.to(device=q.device, dtype=torch.int32)
    if attn_mask is None:

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + table[b, h, q_idx, index[q_idx, kv_idx]]

    else:
        mask = attn_mask.expand(batch, heads, queries, k.shape[2])

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + table[b, h, q_idx, index[q_idx, kv_idx]] + mask[b, h, q_idx, kv_idx]

    if q.device.type == "cuda":
        kernel_options = {"BLOCK_M": 64, "BLOCK_N": 64}  # compiles for head dims 16-64 (ViT-S needs it)
        return _flex_kernel()(q, k, v, score_mod=score_mod, scale=scale, kernel_options=kernel_options)
    with warnings.catch_warnings():  # eager on CPU is intended: compiling takes ~20 s for a test-sized call
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        return flex_attention(q, k, v, score_mod=score_mod, scale=scale)


def _triton(q, k, v, table, buckets, attn_mask, dropout_p, scale):
    if dropout_p > 0.0:
        raise NotImplementedError("backend='triton' has no attention dropout; use backend='sdpa'")
    try:
        from .triton_attention import triton_kprpe_attention
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"backend='triton' needs the triton package ({e}); pip install triton") from e
    return triton_kprpe_attention(q, k, v, table, buckets, attn_mask, scale)


#: name -> implementation ``fn(q, k, v, table, buckets, attn_mask, dropout_p, scale)``
BACKENDS: dict[str, Callable] = {"reference": _reference, "sdpa": _sdpa, "flex": _flex, "triton": _triton}


def _torch_release() -> tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _flex_unavailable() -> str | None:
    """Why this PyTorch cannot run the ``flex`` backend, or ``None``."""
    if _torch_release() < FLEX_MIN_TORCH:
        return (
            f"torch {torch.__version__} < {'.'.join(map(str, FLEX_MIN_TORCH))}: its compiled flex_attention cannot "
            "take gradients into the captured table"
        )
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the build
        return "this PyTorch has no torch.nn.attention.flex_attention"
    return None


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def backend_unavailable(backend: str, device: torch.device | str) -> str | None:
    """Why ``backend`` cannot run natively on ``device`` here, or ``None`` when it can (forward at least)."""
    if backend not in BACKENDS and backend != "auto":
        raise ValueError(f"unknown backend {backend!r}; choose 'auto' or one of {sorted(BACKENDS)}")
    device_type = torch.device(device).type
    if backend == "flex":
        return _flex_unavailable()
    if backend == "triton":
        if not _triton_available():
            return "the triton package is not installed"
        if device_type != "cuda":
            return f"Triton kernels need CUDA, not {device_type!r} (TRITON_INTERPRET=1 runs them on CPU, for tests)"
    return None


def explain_backend(
    q: torch.Tensor, table: torch.Tensor | None = None, dropout_p: float = 0.0, needs_grad: bool = False
) -> tuple[str, list[str]]:
    """The backend ``auto`` picks for these inputs, and why each faster one was not taken.

    ``needs_grad``: whether a backward pass will follow (``kprpe_attention`` passes it: true when grad
    mode is on and q, k, v or the table requires grad).
    """
    reasons: list[str] = ["triton: opt-in (backend='triton') until GPU benchmarks show where it wins"]
    flex_missing = _flex_unavailable()
    if q.device.type != "cuda":
        reasons.append(f"flex: not compiled for device {q.device.type!r} (no CPU backward in PyTorch)")
    elif flex_missing:
        reasons.append(f"flex: {flex_missing}")
    elif needs_grad:
        reasons.append(
            "flex: not for training until a GPU run has checked its backward (untested in this project; "
            "its table gradient uses atomics); sdpa is the path known to train"
        )
    elif q.shape[2] < FLEX_MIN_TOKENS:
        reasons.append(f"flex: {q.shape[2]} tokens < {FLEX_MIN_TOKENS}; dense kernels win on tiny windows")
    elif dropout_p > 0.0:
        reasons.append("flex: attention dropout is not supported")
    elif q.shape[-1] < 16 or q.shape[-1] & (q.shape[-1] - 1):
        reasons.append(f"flex: head dim {q.shape[-1]} is not a power of two >= 16")
    else:
        return "flex", reasons
    if q.device.type == "cpu" and needs_grad:
        reasons.append("sdpa: its CPU backward with a float mask is slower than reference's (measured)")
        return "reference", reasons
    return "sdpa", reasons


def select_backend(
    q: torch.Tensor, table: torch.Tensor | None = None, dropout_p: float = 0.0, needs_grad: bool = False
) -> str:
    """Name of the backend ``auto`` uses for these inputs (see :func:`explain_backend`)."""
    name, reasons = explain_backend(q, table, dropout_p, needs_grad)
    if reasons and logger.isEnabledFor(logging.DEBUG):
        logger.debug("kprpe_attention auto -> %s; %s", name, "; ".join(reasons))
    return name


def kprpe_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    table: torch.Tensor,
    buckets: torch.Tensor,
    backend: str = "auto",
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention plus a bucket-table bias.

    Args:
        q: ``(B, H, Nq, d)`` queries, unscaled.
        k: ``(B, H, Nk, d)`` keys.
        v: ``(B, H, Nk, dv)`` values.
        table: ``(B|1, H|1, Nq, K)`` bias table per query row (e.g. one of ``KeypointRPE``'s tables).
        buckets: ``(Nq, Nk)`` integer bucket map with values in ``[0, K)``.
        backend: ``"auto"``, ``"reference"``, ``"sdpa"``, ``"flex"`` or ``"triton"``.
        attn_mask: optional mask broadcastable to ``(B, H, Nq, Nk)``: additive float (e.g. Swin's
            shifted-window mask) or bool with ``True`` = attend.
        dropout_p: attention dropout probability (pass 0 in eval).
        scale: logit scale, ``d ** -0.5`` by default.

    Returns:
        ``(B, H, Nq, dv)``.
    """
    _check_inputs(q, k, v, table, buckets, attn_mask)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if backend == "auto":
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, table))
        backend = select_backend(q, table, dropout_p, needs_grad)
    try:
        fn = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose 'auto' or one of {sorted(BACKENDS)}") from None
    return fn(q, k, v, table, buckets, additive_mask(attn_mask, q.dtype), dropout_p, scale)
