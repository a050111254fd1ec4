from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kprpe.core import (
    attention,
    backend_unavailable,
    explain_backend,
    gather_bias,
    kprpe_attention,
    product_buckets,
    select_backend,
)


def naive_attention(q, k, v, table, buckets, mask=None):
    """Loop-level definition: softmax_j(q_i.k_j / sqrt(d) + table[i, bucket(i, j)] (+ mask)) v_j."""
    batch, heads, n, d = q.shape
    out = torch.zeros(batch, heads, n, v.shape[-1], dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            tb = table[min(b, table.shape[0] - 1), min(h, table.shape[1] - 1)]
            for i in range(n):
                logits = torch.stack(
                    [
                        q[b, h, i].double() @ k[b, h, j].double() / d**0.5 + tb[i, buckets[i, j]].double()
                        for j in range(k.shape[2])
                    ]
                )
                if mask is not None:
                    logits = logits + mask[b, 0, i].double()
                out[b, h, i] = logits.softmax(0) @ v[b, h].double()
    return out


def make_inputs(batch=2, heads=3, h=3, w=4, d=8, k_buckets=None, dtype=torch.float64, prefix=0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    buckets, k = product_buckets(h, w, num_prefix_tokens=prefix)
    n = buckets.shape[0]
    q, kk, v = (torch.randn(batch, heads, n, d, generator=gen, dtype=dtype) for _ in range(3))
    table = torch.randn(batch, heads, n, k, generator=gen, dtype=dtype)
    return q, kk, v, table, buckets


def test_reference_matches_loop_definition():
    q, k, v, table, buckets = make_inputs(batch=1, heads=2, h=2, w=3, d=4)
    torch.testing.assert_close(
        kprpe_attention(q, k, v, table, buckets, "reference"), naive_attention(q, k, v, table, buckets)
    )


def test_gather_bias_picks_table_entries():
    table = torch.arange(2 * 1 * 4 * 49, dtype=torch.float32).view(2, 1, 4, 49)
    buckets, _ = product_buckets(2, 2)
    bias = gather_bias(table, buckets)
    for i in range(4):
        for j in range(4):
            assert bias[1, 0, i, j] == table[1, 0, i, buckets[i, j]]


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
def test_float64_gradcheck_q_k_v_table(backend):
    q, k, v, table, buckets = make_inputs(batch=1, heads=2, h=2, w=3, d=4)
    inputs = tuple(t.requires_grad_() for t in (q, k, v, table))
    assert torch.autograd.gradcheck(lambda a, b, c, t: kprpe_attention(a, b, c, t, buckets, backend), inputs)


def test_float64_gradcheck_with_prefix_mask_and_broadcast_table():
    q, k, v, table, buckets = make_inputs(batch=2, heads=2, h=2, w=2, d=4, prefix=1)
    table = table[:1, :1].clone()  # (1, 1, N, K): one table for the whole batch and all heads
    mask = torch.zeros(2, 1, 5, 5, dtype=torch.float64)
    mask[:, :, :, 3] = -100.0
    inputs = tuple(t.requires_grad_() for t in (q, k, v, table))
    for backend in ("reference", "sdpa"):
        assert torch.autograd.gradcheck(lambda a, b, c, t: kprpe_attention(a, b, c, t, buckets, backend, mask), inputs)
    torch.testing.assert_close(
        kprpe_attention(q, k, v, table, buckets, "sdpa", mask), naive_attention(q, k, v, table, buckets, mask)
    )


@pytest.mark.parametrize("shape", [(2, 8, 14, 14, 64), (3, 16, 14, 14, 32), (64, 16, 3, 5, 16), (2, 4, 5, 7, 16)])
def test_sdpa_matches_reference_forward_and_backward_float32(shape):
    batch, heads, h, w, d = shape
    q, k, v, table, buckets = make_inputs(batch, heads, h, w, d, dtype=torch.float32, seed=3)
    grads = {}
    outs = {}
    for backend in ("reference", "sdpa"):
        inputs = [t.clone().requires_grad_() for t in (q, k, v, table)]
        out = kprpe_attention(*inputs[:3], inputs[3], buckets, backend)
        out.backward(torch.ones_like(out))
        outs[backend] = out.detach()
        grads[backend] = [t.grad for t in inputs]
    torch.testing.assert_close(outs["sdpa"], outs["reference"], rtol=1e-4, atol=1e-5)
    for g_sdpa, g_ref in zip(grads["sdpa"], grads["reference"]):
        torch.testing.assert_close(g_sdpa, g_ref, rtol=1e-3, atol=1e-4)


def test_bfloat16_backends_agree_within_bf16_tolerance():
    q, k, v, table, buckets = make_inputs(4, 8, 7, 7, 32, dtype=torch.float32, seed=5)
    exact = kprpe_attention(q, k, v, table, buckets, "reference")
    for backend in ("reference", "sdpa"):
        out = kprpe_attention(*(t.bfloat16() for t in (q, k, v, table)), buckets, backend)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), exact, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("shape", [(2, 4, 14, 14, 32), (2, 2, 3, 5, 16), (1, 2, 9, 11, 64)])
def test_flex_forward_matches_reference_on_cpu(shape):
    batch, heads, h, w, d = shape
    q, k, v, table, buckets = make_inputs(batch, heads, h, w, d, dtype=torch.float32, seed=7)
    with torch.no_grad():
        torch.testing.assert_close(
            kprpe_attention(q, k, v, table, buckets, "flex"),
            kprpe_attention(q, k, v, table, buckets, "reference"),
            rtol=1e-4,
            atol=1e-5,
        )


def test_flex_forward_with_mask_and_prefix():
    q, k, v, table, buckets = make_inputs(2, 2, 3, 3, 16, dtype=torch.float32, prefix=1, seed=9)
    mask = torch.randn(2, 1, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(
            kprpe_attention(q, k, v, table, buckets, "flex", mask),
            kprpe_attention(q, k, v, table, buckets, "reference", mask),
            rtol=1e-4,
            atol=1e-5,
        )


def test_flex_refuses_cpu_backward_with_a_clear_message():
    q, k, v, table, buckets = make_inputs(1, 2, 3, 3, 16, dtype=torch.float32)
    with pytest.raises(NotImplementedError, match="no backward on CPU"):
        kprpe_attention(q.requires_grad_(), k, v, table, buckets, "flex")


def test_bool_mask_means_attend():
    q, k, v, table, buckets = make_inputs(1, 1, 2, 2, 4)
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[:, 2] = False
    additive = torch.zeros(4, 4, dtype=torch.float64)
    additive[:, 2] = float("-inf")
    torch.testing.assert_close(
        kprpe_attention(q, k, v, table, buckets, "reference", keep),
        kprpe_attention(q, k, v, table, buckets, "reference", additive),
    )


def test_zero_table_is_plain_attention():
    q, k, v, table, buckets = make_inputs(2, 2, 3, 3, 8, dtype=torch.float32)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    for backend in ("reference", "sdpa"):
        torch.testing.assert_close(kprpe_attention(q, k, v, torch.zeros_like(table), buckets, backend), expected)


def test_auto_on_cpu_picks_sdpa_for_inference_reference_for_training_and_explains_why():
    q, k, v, table, buckets = make_inputs(1, 2, 14, 14, 32, dtype=torch.float32)
    assert select_backend(q) == "sdpa"
    name, reasons = explain_backend(q)
    assert name == "sdpa" and any("flex" in r and "cpu" in r for r in reasons)
    name, reasons = explain_backend(q, needs_grad=True)
    assert name == "reference" and any(r.startswith("sdpa:") for r in reasons)
    torch.testing.assert_close(
        kprpe_attention(q, k, v, table, buckets),
        kprpe_attention(q, k, v, table, buckets, "reference"),
        rtol=1e-4,
        atol=1e-5,
    )


def cuda_queries(batch=2, heads=8, tokens=196, dim=64):
    """What ``explain_backend`` reads of ``q`` (device and shape), for a CUDA device this machine may lack."""
    return SimpleNamespace(device=torch.device("cuda"), shape=(batch, heads, tokens, dim))


def test_auto_on_cuda_trains_with_sdpa_and_uses_flex_only_for_inference():
    q = cuda_queries()
    assert explain_backend(q)[0] == "flex"
    name, reasons = explain_backend(q, needs_grad=True)
    assert name == "sdpa"
    assert any(r.startswith("flex:") and "known to train" in r for r in reasons)
    assert explain_backend(cuda_queries(tokens=15))[0] == "sdpa"  # Swin windows: dense kernels


@pytest.mark.parametrize("version", ["2.5.1+cu124", "2.5.0"])
def test_flex_needs_the_torch_release_with_table_gradients(monkeypatch, version):
    monkeypatch.setattr(torch, "__version__", version)
    name, reasons = explain_backend(cuda_queries())
    assert name == "sdpa" and any(r.startswith("flex:") and "< 2.6" in r for r in reasons)
    assert "< 2.6" in backend_unavailable("flex", "cuda")
    q, k, v, table, buckets = make_inputs(1, 1, 2, 2, 16, dtype=torch.float32)
    with pytest.raises(RuntimeError, match=r"backend='flex' cannot run here: torch 2\.5.* < 2\.6"):
        kprpe_attention(q, k, v, table, buckets, "flex")


def test_the_torch_floor_is_the_flex_floor():
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    floor = ".".join(map(str, attention.FLEX_MIN_TORCH))
    assert f'"torch>={floor}"' in pyproject.read_text()
    assert attention._torch_release() >= attention.FLEX_MIN_TORCH


def test_integer_masks_are_rejected_not_added():
    q, k, v, table, buckets = make_inputs(1, 1, 2, 2, 4)
    with pytest.raises(TypeError, match="bool .* or an additive float mask, got torch.int64"):
        kprpe_attention(q, k, v, table, buckets, "reference", torch.ones(4, 4, dtype=torch.int64))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda q, k, v, t, b: (q[0], k, v, t, b), "q must be 4D"),
        (lambda q, k, v, t, b: (q, k[:, :1], v, t, b), "share"),
        (lambda q, k, v, t, b: (q, k, v, t[:, :, :-1], b), "another grid"),
        (lambda q, k, v, t, b: (q, k, v, t, product_buckets(4, 4)[0]), "another grid"),
        (lambda q, k, v, t, b: (q, k, v, t[..., :20], b), "only 20 buckets"),
    ],
)
def test_shape_errors_are_clear(mutate, match):
    args = mutate(*make_inputs(2, 2, 3, 4, 8))
    with pytest.raises(ValueError, match=match):
        kprpe_attention(*args, backend="reference")


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend"):
        kprpe_attention(*make_inputs(1, 1, 2, 2, 4), backend="cuda-magic")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape", [(4, 8, 14, 14, 64), (4, 16, 14, 14, 32), (3, 4, 9, 11, 16)])
def test_flex_matches_reference_on_gpu_forward_and_backward(shape):
    batch, heads, h, w, d = shape
    q, k, v, table, buckets = (t.cuda() for t in make_inputs(batch, heads, h, w, d, dtype=torch.float32, seed=11))
    results = {}
    for backend in ("reference", "flex"):
        inputs = [t.clone().bfloat16().requires_grad_() for t in (q, k, v, table)]
        out = kprpe_attention(*inputs, buckets.cuda(), backend)
        out.float().sum().backward()
        results[backend] = [out.float()] + [t.grad.float() for t in inputs]
    for got, exp in zip(results["flex"], results["reference"]):
        torch.testing.assert_close(got, exp, rtol=0.05, atol=0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_out_of_range_bucket_map_is_an_error_on_cuda_too():
    q, k, v, table, buckets = (t.cuda() for t in make_inputs(1, 2, 3, 3, 16, dtype=torch.float32))
    for backend in ("reference", "sdpa"):
        with pytest.raises(ValueError, match="bucket 40 but the table has only 30"):
            kprpe_attention(q, k, v, table[..., :30], buckets, backend)
