"""kprpe.core.probe: the recorded bias equals the reference gather, and the reliance reads ~0 for a model whose
W_L is zero and clearly non-zero for one built to depend on its keypoints."""

from __future__ import annotations

import pytest
import torch

from kprpe.core import SwinBlock, VisionTransformer, gather_bias
from kprpe.core.probe import AttentionRecorder, bias_reliance, format_bias_reliance


def _vit(rpe: str = "kprpe") -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, rpe=rpe,
                             num_keypoints=3).eval()  # fmt: skip


def test_recorded_bias_is_the_gathered_table_and_spread_the_row_std():
    model = _vit()
    torch.nn.init.normal_(model.kprpe.proj.weight, std=1.0)
    x, keypoints = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 2)
    with AttentionRecorder(model) as rec:
        model(x, keypoints)
    assert [r.layer for r in rec.records] == ["blocks.0.attn", "blocks.1.attn"]
    feats = model.kprpe.features(keypoints)
    expected = gather_bias(model.kprpe.layer_table(feats, 0), model.kprpe.buckets)
    torch.testing.assert_close(rec.records[0].bias, expected)
    # the spread of layer 0's logits, written out: the block's first norm, q k^T * scale + bias, std over keys
    attn = model.blocks[0].attn
    torch.set_grad_enabled(False)
    tokens = model.blocks[0].norm1(model.embed(x))
    q, k, _ = attn.qkv(tokens).view(2, 16, 3, 2, 8).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-2, -1) * attn.scale + expected
    assert rec.records[0].logit_spread == pytest.approx(float(logits.std(-1, unbiased=False).mean()), rel=1e-5)
    torch.set_grad_enabled(True)
    # hooks are removed on exit
    with torch.no_grad():
        model(x, keypoints)
    assert len(rec.records) == 2


def test_reliance_is_zero_for_zero_w_l_and_without_kprpe():
    x, keypoints, other = torch.randn(3, 3, 32, 32), torch.rand(3, 3, 2), torch.rand(3, 3, 2)
    model = _vit()  # W_L zero-initialised
    rows = bias_reliance(model, lambda: model(x, keypoints), lambda: model(x, other))
    assert len(rows) == 2 and all(r["keypoint_bias"] == 0.0 and r["bias"] == 0.0 for r in rows)
    assert all(r["logit_spread"] > 0 for r in rows)
    plain = _vit("bias")  # learned tables (trained away from their zero init): a bias, but no keypoint part
    with torch.no_grad():
        for block in plain.blocks:
            block.attn.rpe.weight.normal_()
    rows = bias_reliance(plain, lambda: plain(x), lambda: plain(x))
    assert all(r["bias"] > 0 and r["keypoint_bias"] == 0.0 for r in rows)
    assert "| blocks.0.attn |" in format_bias_reliance(rows)


def test_reliance_is_large_for_a_model_built_to_use_its_keypoints():
    model = _vit()
    with torch.no_grad():  # a strong bias that depends on the offsets to the keypoints only
        model.kprpe.proj.weight.normal_(std=5.0)
    x, keypoints = torch.randn(3, 3, 32, 32), torch.rand(3, 3, 2)
    shuffled = keypoints.roll(1, 0)
    rows = bias_reliance(model, lambda: model(x, keypoints), lambda: model(x, shuffled))
    assert all(r["keypoint_bias"] > 0.5 and r["keypoint_bias_over_spread"] > 0.1 for r in rows)
    # the same keypoints again: the keypoint part vanishes, the bias stays
    rows = bias_reliance(model, lambda: model(x, keypoints), lambda: model(x, keypoints.clone()))
    assert all(r["keypoint_bias"] == 0.0 and r["bias"] > 0.5 for r in rows)


def test_window_attention_spread_leaves_masked_pairs_out_and_runs_differ_is_an_error():
    block = SwinBlock(8, 2, (4, 6), (2, 3), shift_size=(1, 1), rel_pos="swin").eval()
    x = torch.randn(2, 4, 6, 8)
    with AttentionRecorder(block) as rec:
        block(x)
    (record,) = rec.records
    assert record.bias.shape == (2 * 4, 2, 6, 6) and record.logit_spread < 50  # -100 mask entries left out
    model = _vit()
    with pytest.raises(ValueError, match="different attention calls"):
        bias_reliance(model, lambda: model(torch.randn(1, 3, 32, 32), torch.rand(1, 3, 2)), lambda: None)
    with pytest.raises(ValueError, match="no kprpe.core Attention"):
        AttentionRecorder(torch.nn.Linear(2, 2))


def test_models_differing_only_in_position_encoding_start_from_identical_shared_weights():
    """Paired comparisons: the same seed gives every shared tensor the same values under any rpe."""
    from kprpe_gait.models import SwinGait2D

    def build(**kwargs):
        torch.manual_seed(0)
        return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, **kwargs).state_dict()

    def gait(**kwargs):
        torch.manual_seed(0)
        return SwinGait2D(5, channels=(4, 8), embed_dim=8, num_heads=(2, 2), out_channels=8, **kwargs).state_dict()

    for states in ([build(rpe=r) for r in ("none", "bias", "contextual", "kprpe")],
                   [gait(rel_pos="swin"), gait(rel_pos="kprpe"), gait(rel_pos="kprpe", kprpe_grid="window")]):  # fmt: skip
        first = states[0]
        for other in states[1:]:
            shared = [k for k in first if k in other and first[k].shape == other[k].shape]
            assert len(shared) >= 20
            assert [k for k in shared if not torch.equal(first[k], other[k])] == []
    # and the global stream after construction is the same too (dropout / drop-path draws stay paired)
    torch.manual_seed(0)
    VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, rpe="kprpe")
    after_kprpe = torch.rand(3)
    torch.manual_seed(0)
    VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2)
    assert torch.equal(after_kprpe, torch.rand(3))
