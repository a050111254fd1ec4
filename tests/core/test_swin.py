import math

import pytest
import torch
import torch.nn.functional as F

from kprpe.core import ContinuousPositionBias, KeypointRPE, PatchMerging, SwinBlock, product_buckets


def swin_offset_slots(wh: int, ww: int) -> dict[tuple[int, int], int]:
    """Swin's bias table layout, by enumeration: one slot per distinct in-window offset (query minus key),
    row offsets outer and column offsets inner, each from the most negative up."""
    offsets = [(dr, dc) for dr in range(-(wh - 1), wh) for dc in range(-(ww - 1), ww)]
    return {offset: slot for slot, offset in enumerate(offsets)}


def naive_swin_block(
    block: SwinBlock, x: torch.Tensor, table: torch.Tensor | None, swin_bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Token-by-token re-derivation of a (shifted) window block, independent of kprpe.core.windows.

    Pairs inside one window attend to each other unless the cyclic shift wrapped exactly one of them
    around an axis (Swin's mask); the bias of a pair is the query token's stage-table row read at the
    window-local product bucket (zero rows for padding tokens), or with ``swin_bias`` ``(H, slots)`` Swin's
    learned bias at the slot of the pair's in-window offset (:func:`swin_offset_slots`). A Swin V2 block
    (``post_norm``, cosine attention) follows Swin V2's equations: no norm before attention, logits
    ``cos(q, k) * exp(min(s, log 100))`` from a qkv without its key bias, ``x + norm1(attn)``, ``x + norm2(mlp)``.
    """
    batch, h, w, c = x.shape
    (wh, ww), (sh, sw) = block.window_size, block.shift_size
    hp, wp = h + (-h) % wh, w + (-w) % ww
    heads, d = block.attn.num_heads, block.attn.head_dim
    local_buckets, _ = product_buckets(wh, ww)
    slots = swin_offset_slots(wh, ww)
    v2 = block.post_norm
    y = x if v2 else block.norm1(x)
    qkv_bias = block.attn.qkv.bias.clone()
    if v2:
        qkv_bias[c : 2 * c] = 0
    out = torch.zeros(batch, hp, wp, c, dtype=x.dtype)
    for b in range(batch):
        for r0 in range(0, hp, wh):
            for c0 in range(0, wp, ww):
                cells = [(r0 + a, c0 + e) for a in range(wh) for e in range(ww)]  # rolled coordinates
                orig = [((r + sh) % hp, (cc + sw) % wp) for r, cc in cells]
                feats = torch.stack([y[b, r, cc] if r < h and cc < w else torch.zeros(c) for r, cc in orig])
                qkv = F.linear(feats, block.attn.qkv.weight, qkv_bias).view(len(cells), 3, heads, d)
                q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # (Nw, H, d)
                if v2:
                    scale = block.attn.logit_scale.clamp(max=math.log(100)).exp().view(heads, 1, 1)
                    logits = torch.einsum("ihd,jhd->hij", F.normalize(q, dim=-1), F.normalize(k, dim=-1)) * scale
                else:
                    logits = torch.einsum("ihd,jhd->hij", q, k) * d**-0.5
                for i, (ri, ci) in enumerate(cells):
                    for j, (rj, cj) in enumerate(cells):
                        wrap_i = (ri >= hp - sh if sh else False, ci >= wp - sw if sw else False)
                        wrap_j = (rj >= hp - sh if sh else False, cj >= wp - sw if sw else False)
                        if wrap_i != wrap_j:
                            logits[:, i, j] += -100.0
                        if table is not None:
                            oi = orig[i]
                            if oi[0] < h and oi[1] < w:
                                logits[:, i, j] += table[b, :, oi[0] * w + oi[1], local_buckets[i, j]]
                        if swin_bias is not None:
                            logits[:, i, j] += swin_bias[:, slots[(ri - rj, ci - cj)]]
                attn = logits.softmax(-1)
                o = torch.einsum("hij,jhd->ihd", attn, v).reshape(len(cells), c)
                o = block.attn.proj(o)
                for (r, cc), val in zip(orig, o):
                    out[b, r, cc] = val
    if v2:
        x = x + block.norm1(out[:, :h, :w])
        return x + block.norm2(block.mlp(x))
    x = x + out[:, :h, :w]
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("grid, shift", [((6, 10), (0, 0)), ((6, 10), (1, 2)), ((5, 7), (1, 2))])
def test_table_block_matches_token_level_rederivation(grid, shift):
    torch.manual_seed(0)
    block = SwinBlock(16, 2, grid, (3, 5), shift, rel_pos="table", backend="reference").eval()
    x = torch.randn(2, *grid, 16)
    table = torch.randn(2, 2, grid[0] * grid[1], 49)
    with torch.no_grad():
        torch.testing.assert_close(block(x, table), naive_swin_block(block, x, table), rtol=1e-4, atol=1e-5)


def test_backends_agree_inside_the_block_with_gradients():
    torch.manual_seed(1)
    grid = (15, 10)
    outs, grads = {}, {}
    for backend in ("reference", "sdpa"):
        torch.manual_seed(1)
        block = SwinBlock(32, 4, grid, (3, 5), (1, 2), rel_pos="table", backend=backend)
        x = torch.randn(3, *grid, 32)
        table = torch.randn(3, 4, 150, 49, requires_grad=True)
        out = block(x, table)
        out.square().mean().backward()
        outs[backend], grads[backend] = out.detach(), table.grad
    torch.testing.assert_close(outs["sdpa"], outs["reference"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads["sdpa"], grads["reference"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("grid, window, shift", [((6, 10), (3, 5), (1, 2)), ((5, 7), (2, 3), (0, 0))])
def test_swin_bias_block_matches_token_level_rederivation(grid, window, shift):
    """Swin's learned bias (a random table, so every slot matters) against the loop-level block that
    reads it at each pair's in-window offset; a wrong offset index (axes swapped, key minus query) fails."""
    torch.manual_seed(2)
    block = SwinBlock(16, 2, grid, window, shift, rel_pos="swin", backend="reference").eval()
    with torch.no_grad():
        block.attn.rpe.weight.normal_()
        x = torch.randn(2, *grid, 16)
        expected = naive_swin_block(block, x, None, swin_bias=block.attn.rpe.weight)
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_kprpe_block_at_init_equals_no_bias_block():
    torch.manual_seed(3)
    grid = (15, 10)
    rpe = KeypointRPE(17, grid, num_heads=4, depth=1)
    kp_block = SwinBlock(32, 4, grid, (3, 5), (1, 2), rel_pos="table").eval()
    plain = SwinBlock(32, 4, grid, (3, 5), (1, 2), rel_pos="none").eval()
    plain.load_state_dict(kp_block.state_dict())
    x = torch.randn(2, *grid, 32)
    (table,) = rpe(torch.rand(2, 17, 3))
    with torch.no_grad():
        torch.testing.assert_close(kp_block(x, table), plain(x))


def test_window_larger_than_grid_is_clamped_and_unshifted():
    block = SwinBlock(8, 2, (2, 10), (3, 5), (1, 2), rel_pos="swin")
    assert block.window_size == (2, 5) and block.shift_size == (0, 2)
    assert block(torch.randn(1, 2, 10, 8)).shape == (1, 2, 10, 8)


def test_errors_name_the_problem():
    block = SwinBlock(8, 2, (6, 10), (3, 5), (1, 2), rel_pos="table")
    with pytest.raises(ValueError, match="stage table is required"):
        block(torch.randn(1, 6, 10, 8))
    with pytest.raises(ValueError, match="6x5 feature map|\\(6, 10\\) grid"):
        block(torch.randn(1, 6, 5, 8), torch.zeros(1, 2, 30, 49))
    with pytest.raises(ValueError, match="unknown rel_pos"):
        SwinBlock(8, 2, (6, 10), (3, 5), rel_pos="kprpe")
    with pytest.raises(ValueError, match="shift"):
        SwinBlock(8, 2, (6, 10), (3, 5), (3, 0))


def v2_block(grid, window, shift, rel_pos, seed):
    torch.manual_seed(seed)
    block = SwinBlock(16, 2, grid, window, shift, rel_pos=rel_pos, backend="reference", post_norm=True,
                      cosine_attention=True).eval()  # fmt: skip
    with torch.no_grad():  # non-trivial values everywhere the V2 equations read
        block.attn.qkv.bias.normal_()
        block.attn.logit_scale.copy_(torch.tensor([math.log(10.0), math.log(200.0)]).view(2, 1, 1))  # one clamped
        for norm in (block.norm1, block.norm2):
            norm.weight.normal_(1, 0.2)
            norm.bias.normal_(0, 0.2)
    return block


@pytest.mark.parametrize("grid, shift", [((7, 7), (0, 0)), ((7, 7), (2, 2)), ((10, 10), (2, 2))])
def test_v2_table_block_matches_token_level_rederivation(grid, shift):
    """Swin V2 (the authors' face Swin): cosine logits, clamped scale, no key bias, post-norm; the KP-RPE
    table of the stage grid read through the 5x5 window's buckets, padded rows zero."""
    block = v2_block(grid, (5, 5), shift, "table", 4)
    x = torch.randn(2, *grid, 16)
    table = torch.randn(2, 2, grid[0] * grid[1], 49)
    with torch.no_grad():
        torch.testing.assert_close(block(x, table), naive_swin_block(block, x, table), rtol=1e-4, atol=1e-5)
        assert block.attn.qkv.bias[16:32].abs().sum() > 0  # the key bias is held at zero in the forward only


def test_v2_cpb_block_matches_token_level_rederivation():
    block = v2_block((7, 7), (5, 5), (2, 2), "cpb", 5)
    table = block.attn.rpe()[0, :, 0]  # (H, 81): one value per (head, offset)
    x = torch.randn(2, 7, 7, 16)
    with torch.no_grad():
        torch.testing.assert_close(block(x), naive_swin_block(block, x, None, swin_bias=table), rtol=1e-4, atol=1e-5)


def test_continuous_position_bias_follows_swin_v2_equations():
    """Offset (dr, dc) -> 16 * sigmoid(MLP(sign(t) log2(|t| + 1) / 3)) with t = 8 * (dr, dc) / (w - 1)."""
    torch.manual_seed(6)
    cpb = ContinuousPositionBias(3, (5, 3), hidden_dim=8)
    table = cpb()[0, :, 0]  # (3, 9 * 5)
    slots = swin_offset_slots(5, 3)
    for (dr, dc), slot in [((-4, -2), slots[(-4, -2)]), ((0, 0), slots[(0, 0)]), ((3, -1), slots[(3, -1)])]:
        t = torch.tensor([8 * dr / 4, 8 * dc / 2])
        coords = torch.sign(t) * torch.log2(t.abs() + 1) / 3
        expected = 16 * torch.sigmoid(cpb.cpb_mlp(coords))
        torch.testing.assert_close(table[:, slot], expected)
    assert cpb.buckets.shape == (15, 15) and int(cpb.buckets.max()) == 9 * 5 - 1


def test_patch_merging_groups_2x2_tokens_in_swin_order():
    torch.manual_seed(7)
    merge = PatchMerging(3)
    x = torch.randn(1, 5, 3, 3)  # odd sides: zero-padded to 6 x 4
    out = merge(x)
    assert out.shape == (1, 3, 2, 6)
    padded = torch.zeros(1, 6, 4, 3)
    padded[:, :5, :3] = x
    group = torch.cat([padded[0, 2, 0], padded[0, 3, 0], padded[0, 2, 1], padded[0, 3, 1]])  # token (1, 0)
    torch.testing.assert_close(out[0, 1, 0], merge.norm(merge.reduction(group)))
    v1 = PatchMerging(3, norm_first=True)
    torch.testing.assert_close(v1(x)[0, 1, 0], v1.reduction(v1.norm(group)))


def test_cosine_attention_rejects_contextual_rpe():
    from kprpe.core import Attention, ContextualRPE

    with pytest.raises(ValueError, match="cosine"):
        Attention(16, 2, rpe=ContextualRPE(8, 2, (3, 3)), cosine=True)
