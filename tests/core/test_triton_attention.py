"""The fused Triton backend against the ``reference`` backend: values and gradients of q, k, v and the table.

Without a GPU the kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1``, set by
``tests/conftest.py`` before anything imports triton); with CUDA they run compiled.
"""

import pytest
import torch

pytest.importorskip("triton", reason="the triton backend needs the triton package (pip install triton)")

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"

import kprpe.core.triton_attention as ta  # noqa: E402

if not CUDA and not ta.interpreted_kernels():
    pytest.skip("no CUDA and TRITON_INTERPRET is not 1 (tests/conftest.py sets it)", allow_module_level=True)

from kprpe.core import (  # noqa: E402
    KeypointRPE,
    SwinBlock,
    VisionTransformer,
    bucket_map,
    explain_backend,
    kprpe_attention,
    product_buckets,
    shifted_window_mask,
)

SMALL = ta.BlockSizes(16, 16)  # several blocks per sequence, so the tails and the loops are exercised


def _inputs(batch, heads, nq, nk, d, dv, k_buckets, dtype=torch.float32, seed=0, table_shape=None):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, nq, d, generator=gen)
    k = torch.randn(batch, heads, nk, d, generator=gen)
    v = torch.randn(batch, heads, nk, dv, generator=gen)
    table = torch.randn(*(table_shape or (batch, heads)), nq, k_buckets, generator=gen)
    return [t.to(DEVICE, dtype).requires_grad_() for t in (q, k, v, table)]


def _compare(inputs, buckets, mask=None, atol=2e-5, rtol=1e-4, blocks=SMALL):
    grad_out = torch.randn_like(inputs[0][..., :1].expand(*inputs[0].shape[:-1], inputs[2].shape[-1]))
    out = ta.triton_kprpe_attention(*inputs, buckets, mask, blocks=blocks)
    grads = torch.autograd.grad(out, inputs, grad_out)
    ref = kprpe_attention(*[t.float() for t in inputs], buckets, "reference", mask)
    ref_grads = torch.autograd.grad(ref, inputs, grad_out.float())
    assert out.dtype == inputs[0].dtype and out.shape == ref.shape
    torch.testing.assert_close(out.float(), ref, atol=atol, rtol=rtol)
    for name, g, r in zip("qkvT", grads, ref_grads):
        assert g.shape == r.shape, name
        torch.testing.assert_close(g.float(), r.float(), atol=atol, rtol=rtol, msg=lambda m, n=name: f"grad {n}: {m}")


@pytest.mark.parametrize(
    "grid, d, dv",
    [((5, 7), 24, 24), ((3, 5), 16, 16), ((4, 4), 20, 12), ((2, 9), 64, 64)],
    ids=["5x7-d24", "window3x5-d16", "4x4-d20-dv12", "2x9-d64"],
)
def test_matches_reference_values_and_gradients(grid, d, dv):
    buckets, k = product_buckets(*grid)
    n = buckets.shape[0]
    _compare(_inputs(2, 2, n, n, d, dv, k), buckets)


def test_default_block_sizes_with_196_tokens():
    buckets, k = product_buckets(14, 14)  # the face ViT grid: 196 = 3 full 64-blocks and a tail of 4
    _compare(_inputs(1, 1, 196, 196, 32, 32, k), buckets, blocks=ta.BlockSizes())


def test_prefix_bucket_and_rectangular_maps():
    buckets, k = product_buckets(3, 4, num_prefix_tokens=1)  # CLS token with its own bucket K = 49
    assert k == 50
    _compare(_inputs(1, 2, 13, 13, 16, 16, k), buckets)
    gen = torch.Generator().manual_seed(1)
    rect = torch.randint(0, 10, (21, 35), generator=gen)  # cross attention: Nq != Nk, any bucket map
    _compare(_inputs(2, 1, 21, 35, 16, 8, 10), rect)


@pytest.mark.parametrize("table_shape", [(1, 1), (2, 1), (1, 3)], ids=["shared", "per-sample", "per-head"])
def test_broadcast_tables_get_summed_gradients(table_shape):
    buckets, k = product_buckets(3, 5)
    inputs = _inputs(2, 3, 15, 15, 16, 16, k, table_shape=table_shape)
    _compare(inputs, buckets)
    # a stride-0 view, as KeypointRPE's shared variants return: values and the gradient of the table under it
    expanded = inputs[3].expand(2, 3, 15, k)
    grad_out = torch.randn(2, 3, 15, 16, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    out = ta.triton_kprpe_attention(*inputs[:3], expanded, buckets, blocks=SMALL)
    grads = torch.autograd.grad(out, inputs, grad_out)
    ref = kprpe_attention(*inputs[:3], inputs[3].expand(2, 3, 15, k), buckets, "reference")
    ref_grads = torch.autograd.grad(ref, inputs, grad_out)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    for name, g, r in zip("qkvT", grads, ref_grads):
        torch.testing.assert_close(g, r, atol=2e-5, rtol=1e-4, msg=lambda m, n=name: f"grad {n}: {m}")


def test_swin_shift_mask():
    buckets, k = product_buckets(3, 5)
    mask = shifted_window_mask((6, 10), (3, 5), (1, 2)).to(DEVICE)  # (nW, Nw, Nw) additive, -100 / 0
    windows = mask.shape[0]
    mask4 = mask[:, None].repeat(2, 1, 1, 1)  # (B*nW, 1, Nw, Nw) as SwinBlock passes it
    _compare(_inputs(2 * windows, 2, 15, 15, 16, 16, k), buckets, mask=mask4)


def test_bool_mask_means_attend_and_integer_masks_are_rejected():
    buckets, k = product_buckets(3, 5)
    keep = torch.rand(2, 1, 15, 15, generator=torch.Generator().manual_seed(4)) > 0.3
    keep[..., 0] = True  # every query attends somewhere
    additive = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    inputs = _inputs(2, 2, 15, 15, 16, 16, k, seed=4)
    out = ta.triton_kprpe_attention(*inputs, buckets, keep.to(DEVICE), blocks=SMALL)
    expected = kprpe_attention(*inputs, buckets, "reference", additive.to(DEVICE))
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-4)
    _compare(inputs, buckets, mask=keep.to(DEVICE))  # values and gradients against kprpe_attention's conversion
    with pytest.raises(TypeError, match="got torch.int64"):
        ta.triton_kprpe_attention(*inputs, buckets, keep.long().to(DEVICE), blocks=SMALL)


def test_bucket_map_is_range_checked_and_wide_maps_keep_their_values():
    """Buckets are read as int8 for K <= 127: an out-of-range map is an error, not a read outside the table
    row; a map with K > 127 buckets (here 143, Swin's exact offsets of a 6x7 window) is read as int16."""
    buckets, k = product_buckets(3, 3)
    inputs = _inputs(1, 1, 9, 9, 16, 16, k)
    with pytest.raises(ValueError, match="bucket 40 but the table has only 40"):
        ta.triton_kprpe_attention(*inputs[:3], inputs[3][..., :40], buckets)  # product buckets of a 3x3 grid reach 40
    with pytest.raises(ValueError, match="does not match 9 query and 9 key tokens"):
        ta.triton_kprpe_attention(*inputs, product_buckets(2, 2)[0])
    exact, k = bucket_map(6, 7, "exact")
    assert k == 143
    inputs = _inputs(1, 1, 42, 42, 16, 16, k, seed=6)
    with torch.no_grad():
        out = ta.triton_kprpe_attention(*inputs, exact, blocks=ta.BlockSizes(32, 32))
        torch.testing.assert_close(out, kprpe_attention(*inputs, exact, "reference"), atol=2e-5, rtol=1e-4)


def test_table_without_gradient_and_non_contiguous_inputs():
    buckets, k = product_buckets(4, 5)
    gen = torch.Generator().manual_seed(3)
    qkv = torch.randn(2, 20, 3, 2, 16, generator=gen).to(DEVICE).requires_grad_()
    q, kk, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # strided views, as Attention makes them
    table = torch.randn(2, 2, 20, k, generator=gen).to(DEVICE)
    out = ta.triton_kprpe_attention(q, kk, v, table, buckets, blocks=SMALL)
    (grad,) = torch.autograd.grad(out.square().sum(), qkv)
    ref = kprpe_attention(q, kk, v, table, buckets, "reference")
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), qkv)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(grad, ref_grad, atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_precision_within_tolerance(dtype):
    if dtype == torch.bfloat16 and not CUDA:
        pytest.skip("Triton's CPU interpreter computes tl.dot on bfloat16 wrongly (3.6); bf16 is checked on CUDA")
    buckets, k = product_buckets(4, 6)
    _compare(_inputs(1, 2, 24, 24, 32, 32, k, dtype=dtype), buckets, atol=3e-2, rtol=3e-2)


def test_through_kprpe_attention_and_a_keypoint_vit():
    torch.manual_seed(0)
    kwargs = {"img_size": 24, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2, "rpe": "kprpe"}
    ref_model = VisionTransformer(**kwargs, backend="reference").to(DEVICE)
    torch.nn.init.normal_(ref_model.kprpe.proj.weight, std=0.3)  # a non-trivial bias (W_L starts at zero)
    model = VisionTransformer(**kwargs, backend="triton").to(DEVICE)
    model.load_state_dict(ref_model.state_dict())
    images = torch.randn(2, 3, 24, 24, device=DEVICE)
    landmarks = torch.rand(2, 5, 2, device=DEVICE)
    out, ref = model(images, landmarks), ref_model(images, landmarks)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    out.square().sum().backward()
    ref.square().sum().backward()
    ref_params = dict(ref_model.named_parameters())
    for name, p in model.named_parameters():
        if ref_params[name].grad is not None:
            torch.testing.assert_close(p.grad, ref_params[name].grad, atol=1e-4, rtol=1e-3, msg=name)
    assert model.kprpe.proj.weight.grad.abs().sum() > 0  # W_L is trained through the kernel's table gradient


def test_keypoint_rpe_tables_are_accepted_as_views():
    rpe = KeypointRPE(num_keypoints=5, grid_size=(4, 4), num_heads=2, depth=1, variant="relative").to(DEVICE)
    torch.nn.init.normal_(rpe.proj.weight, std=0.3)
    landmarks = torch.rand(2, 5, 2, device=DEVICE)
    (table,) = rpe(landmarks)  # (2, 2, 16, 49), stride 0 over heads
    assert table.stride(1) == 0
    q, k, v = (torch.randn(2, 2, 16, 16, device=DEVICE) for _ in range(3))
    out = kprpe_attention(q, k, v, table, rpe.buckets, backend="triton")
    (grad,) = torch.autograd.grad(out.sum(), rpe.proj.weight)
    ref = kprpe_attention(q, k, v, rpe(landmarks)[0], rpe.buckets, backend="reference")
    (ref_grad,) = torch.autograd.grad(ref.sum(), rpe.proj.weight)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(grad, ref_grad, atol=1e-4, rtol=1e-4)


def test_clear_errors():
    buckets, k = product_buckets(3, 3)
    q, kk, v, table = _inputs(1, 1, 9, 9, 16, 16, k)
    with pytest.raises(NotImplementedError, match="dropout"):
        kprpe_attention(q, kk, v, table, buckets, backend="triton", dropout_p=0.1)
    with pytest.raises(NotImplementedError, match="attn_mask"):
        ta.triton_kprpe_attention(q, kk, v, table, buckets, torch.zeros(9, 9, device=DEVICE, requires_grad=True))
    with pytest.raises(ValueError, match="power of two"):
        ta.BlockSizes(24, 16)
    with pytest.raises(ValueError, match="table of shape"):  # the shared shape checks run first
        kprpe_attention(q, kk, v, table[..., :5, :], buckets, backend="triton")


def test_cpu_without_interpreter_names_the_fix(monkeypatch):
    monkeypatch.setattr(ta, "_INTERPRETED", False)
    buckets, k = product_buckets(2, 2)
    q, kk, v, table = (t.detach().cpu() for t in _inputs(1, 1, 4, 4, 16, 16, k))
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ta.triton_kprpe_attention(q, kk, v, table, buckets)


def test_auto_does_not_pick_triton_yet():
    name, reasons = explain_backend(torch.randn(1, 1, 4, 16))
    assert name != "triton" and any(r.startswith("triton:") for r in reasons)


def test_product_maps_factor_by_key_rows():
    for grid in [(14, 14), (3, 5), (5, 7), (2, 9)]:
        buckets, k = product_buckets(*grid)
        assert ta.find_separable(buckets, k) == ta.Separable(7, grid[1], grid[0]), grid
    buckets, k = product_buckets(3, 4, num_prefix_tokens=1)
    assert ta.find_separable(buckets, k).radix == 0  # the CLS bucket breaks the factorisation
    scrambled, k = product_buckets(4, 4)
    scrambled = scrambled[:, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    assert ta.find_separable(scrambled, k).radix == 0


@pytest.mark.parametrize("grid", [(5, 7), (3, 5)])
def test_separable_and_generic_table_gradients_agree(grid):
    buckets, k = product_buckets(*grid)
    n = buckets.shape[0]
    inputs = _inputs(2, 2, n, n, 16, 16, k, seed=5)
    grads = []
    for separable in (True, False):
        out = ta.triton_kprpe_attention(*inputs, buckets, blocks=SMALL, separable_grad=separable)
        grads.append(torch.autograd.grad(out.sum(), inputs[3])[0])
    torch.testing.assert_close(grads[0], grads[1], atol=2e-5, rtol=1e-4)
    _compare(inputs, buckets)  # and both match the reference (the default is the separable path)


def test_prepared_map_follows_in_place_changes():
    buckets, k = product_buckets(3, 3)
    buckets = buckets.clone()
    inputs = _inputs(1, 1, 9, 9, 16, 16, k, seed=7)
    _compare(inputs, buckets)
    buckets[0, 1] = 48  # edited in place: the cached index must not be reused
    _compare(inputs, buckets)


def test_shifted_window_block_matches_reference_with_gradients():
    grid = (6, 10)
    results = {}
    for backend in ("reference", "triton"):
        torch.manual_seed(2)
        block = SwinBlock(16, 2, grid, (3, 5), (1, 2), rel_pos="table", backend=backend).to(DEVICE)
        x = torch.randn(2, *grid, 16, device=DEVICE)
        table = torch.randn(2, 2, grid[0] * grid[1], 49, device=DEVICE, requires_grad=True)
        out = block(x, table)  # stage table -> shifted, partitioned window tables + Swin's shift mask
        out.square().mean().backward()
        results[backend] = (out.detach(), table.grad, block.attn.qkv.weight.grad)
    for got, want in zip(results["triton"], results["reference"]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("group, blocks", [(4, (64, 64)), (3, (32, 16)), (2, (16, 16))], ids=["4x15", "3x15", "2x15"])
def test_packed_windows_match_reference(group, blocks):
    """Several short sequences side by side in one program's rows (block-diagonal), incl. a ragged last
    group (batch 2*5 windows is not a multiple of 4 or 3), tiles smaller than a group, and a shift mask."""
    buckets, k = product_buckets(3, 5)
    mask = shifted_window_mask((6, 10), (3, 5), (1, 2)).to(DEVICE)  # 4 windows
    mask4 = torch.cat([mask, mask[:1]])[:, None].repeat(2, 1, 1, 1)  # (10, 1, 15, 15)
    packed = ta.BlockSizes(*blocks, group=group)
    _compare(_inputs(10, 2, 15, 15, 16, 16, k, seed=group), buckets, mask=mask4, blocks=packed)
    _compare(_inputs(10, 2, 15, 15, 16, 8, k, seed=group, table_shape=(1, 2)), buckets, blocks=packed)


def test_table_gradient_is_written_in_the_tables_own_layout():
    """KP-RPE's per-layer table is a (B, H, N, K) view of the linear map's (B, N, H*K) output: its gradient
    comes back in that layout (no copy in the linear map's backward) and matches the reference."""
    buckets, k = product_buckets(4, 5)
    gen = torch.Generator().manual_seed(4)
    rows = torch.randn(2, 20, 3 * k, generator=gen).to(DEVICE).requires_grad_()
    table = rows.view(2, 20, 3, k).permute(0, 2, 1, 3)
    layouts = []
    table.register_hook(lambda grad: layouts.append(grad.stride()))
    q, kk, v = (torch.randn(2, 3, 20, 16, generator=gen).to(DEVICE) for _ in range(3))
    out = ta.triton_kprpe_attention(q, kk, v, table, buckets, blocks=SMALL)
    (grad,) = torch.autograd.grad(out.square().sum(), rows)
    ref = kprpe_attention(q, kk, v, rows.view(2, 20, 3, k).permute(0, 2, 1, 3), buckets, "reference")
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), rows)
    assert layouts == [table.stride()]
    torch.testing.assert_close(grad, ref_grad, atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "grid, heads, d, batch", [((14, 14), 2, 64, 1), ((3, 5), 2, 16, 9)], ids=["vit-s-layer", "swin-windows"]
)
def test_model_shapes_in_half_precision_with_default_tiles(grid, heads, d, batch):
    """The benchmarked shapes (a face ViT-S layer; SwinGait windows, packed) in the precision models train
    in: bfloat16 on CUDA, float16 in the interpreter (whose bfloat16 products are wrong)."""
    dtype = torch.bfloat16 if CUDA else torch.float16
    buckets, k = product_buckets(*grid)
    n = buckets.shape[0]
    inputs = _inputs(batch, heads, n, n, d, d, k, dtype=dtype, seed=11)
    tol = 6e-2 if dtype == torch.bfloat16 else 3e-2
    _compare(inputs, buckets, atol=tol, rtol=tol, blocks=ta.BlockSizes.for_shape(n, n, dtype))
