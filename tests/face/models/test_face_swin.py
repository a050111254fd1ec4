"""FaceSwin: the authors' face Swin-KP-RPE on kprpe.core (shapes, pairing, landmarks, gradients, backends)."""

import math

import pytest
import torch
from cvlface_swin_reference import their_swin_layout

from face.models import FaceSwin, build_model
from face.models.swin import stage_grids
from kprpe.core import KeypointRPE
from kprpe.skip_init import no_weight_init


def tiny(rpe="kprpe", seed=0, **extra):
    torch.manual_seed(seed)
    return build_model({"preset": "swin_tiny", "rpe": rpe, **extra})


def test_grids_and_parameter_counts_are_the_released_networks():
    assert stage_grids(112, 3, 4) == [(37, 37), (19, 19), (10, 10), (5, 5)]
    for preset, depths in (("swin_small", [2, 2, 12, 2]), ("swin_base", [2, 2, 18, 2])):
        with no_weight_init():
            model = build_model({"preset": preset})
        theirs = their_swin_layout(128, depths, [4, 8, 16, 32], 512, "kprpe")
        their_params = sum(
            math.prod(s) for k, s in theirs.items() if not k.endswith(("_table", "_index", "running_mean",
                                                                       "running_var", "num_batches_tracked"))
        )  # fmt: skip
        assert sum(p.numel() for p in model.parameters()) == their_params
        assert model.grids[-1] == (5, 5) and model.num_features == 1024


def test_kprpe_starts_as_the_same_network_without_a_bias():
    """W_L is zero at init and the position modules draw from a forked stream, so the KP-RPE model and the
    no-bias model built from one seed share every other weight and compute the same embedding."""
    kp, none, cpb = tiny("kprpe").eval(), tiny("none").eval(), tiny("cpb").eval()
    shared = none.state_dict()
    for other in (kp, cpb):
        for key, value in other.state_dict().items():
            if key in shared:
                assert torch.equal(value, shared[key]), key
    images, landmarks = torch.rand(2, 3, 112, 112) * 2 - 1, torch.rand(2, 5, 2)
    with torch.no_grad():
        torch.testing.assert_close(kp(images, landmarks), none(images))
        assert (cpb(images) - none(images)).abs().max() > 1e-3  # Swin V2's bias is 16 * sigmoid(.) > 0 at init


def test_landmarks_are_checked_and_missing_ones_are_harmless():
    model = tiny().eval()
    with torch.no_grad():
        for stage in model.stages:
            stage.rpe.proj.weight.normal_()
    images = torch.rand(3, 3, 112, 112) * 2 - 1
    landmarks = torch.rand(3, 5, 3)
    landmarks[0, 1, :2] = float("nan")
    landmarks[2, 4, 2] = 0
    with torch.no_grad():
        assert torch.isfinite(model(images, landmarks)).all()
    with pytest.raises(ValueError, match="needs landmarks"):
        model(images)
    with pytest.raises(ValueError, match="far outside the image"):
        model(images, torch.rand(3, 5, 2) * 112)
    with pytest.raises(ValueError, match=r"images must be \(B, 3, 112, 112\)"):
        model(torch.rand(3, 3, 96, 96), landmarks)
    with pytest.raises(ValueError, match="2 landmark sets for a batch of 3"):
        model(images, landmarks[:2])
    assert tiny("cpb").eval()(images, None).shape == (3, 512)  # landmarks are ignored without KP-RPE


def test_every_stage_table_gets_gradients_and_weight_decay_spares_position_and_scale():
    model = tiny()
    images, landmarks = torch.rand(4, 3, 112, 112) * 2 - 1, torch.rand(4, 5, 2)
    model(images, landmarks).square().mean().backward()
    for i, stage in enumerate(model.stages):
        assert isinstance(stage.rpe, KeypointRPE) and stage.rpe.grid_size == model.grids[i]
        assert stage.rpe.proj.weight.grad.abs().sum() > 0, i
    skip = model.no_weight_decay()
    assert "stages.0.rpe.proj.weight" in skip and "stages.3.blocks.1.attn.logit_scale" in skip
    assert "stages.0.blocks.0.attn.qkv.weight" not in skip
    assert "stages.1.blocks.0.attn.rpe.cpb_mlp.0.weight" in tiny("cpb").no_weight_decay()


def test_backends_agree_with_gradients():
    outs, grads = {}, {}
    images, landmarks = torch.rand(2, 3, 112, 112) * 2 - 1, torch.rand(2, 5, 2)
    for backend in ("reference", "sdpa"):
        model = tiny(backend=backend).eval()
        with torch.no_grad():
            for stage in model.stages:
                stage.rpe.proj.weight.normal_(0, 0.5)
        out = model(images, landmarks)
        out.square().mean().backward()
        outs[backend], grads[backend] = out.detach(), model.stages[0].rpe.proj.weight.grad
    torch.testing.assert_close(outs["sdpa"], outs["reference"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grads["sdpa"], grads["reference"], rtol=1e-3, atol=1e-5)


def test_build_model_dispatches_and_names_bad_keys():
    assert isinstance(build_model("swin_tiny"), FaceSwin)
    assert isinstance(build_model({"arch": "swin", "embed_dim": 32, "depths": [1, 1], "num_heads": [1, 2]}), FaceSwin)
    with pytest.raises(ValueError, match="unknown face model preset 'swin_huge'"):
        build_model("swin_huge")
    with pytest.raises(ValueError, match="preset 'vit_tiny' is not a 'swin' model"):
        build_model({"preset": "vit_tiny", "arch": "swin"})
    with pytest.raises(ValueError, match="depth"):  # a ViT key on the Swin: the check names the key
        build_model({"preset": "swin_tiny", "depth": 3})
    with pytest.raises(ValueError, match="not divisible"):
        build_model({"preset": "swin_tiny", "num_heads": [3, 2, 4, 8]})
    with pytest.raises(ValueError, match="unknown rpe 'irpe'"):
        build_model({"preset": "swin_tiny", "rpe": "irpe"})


def test_reliance_probe_reads_the_cosine_logits():
    """The probe recomputes each window attention's logits as the forward does (scaled cosine for Swin V2):
    its row spread equals a hand computation, and the keypoint part is 0 without KP-RPE, > 0 with it."""
    from kprpe.core.probe import AttentionRecorder, bias_reliance

    model = tiny().eval()
    with torch.no_grad():
        for stage in model.stages:
            stage.rpe.proj.weight.normal_()
    images, landmarks = torch.rand(2, 3, 112, 112) * 2 - 1, torch.rand(2, 5, 2) * 0.6 + 0.2
    block = model.stages[3].blocks[0]  # 5 x 5 grid: one window, no shift, no mask
    seen = {}
    block.attn.register_forward_pre_hook(lambda module, args: seen.update(x=args[0]))  # returns None: args kept
    with torch.no_grad(), AttentionRecorder(model) as recorder:
        model(images, landmarks)
        attn, x = block.attn, seen["x"]
        qkv = torch.nn.functional.linear(x, attn.qkv.weight, torch.cat([attn.qkv.bias[:256], torch.zeros(256),
                                                                        attn.qkv.bias[512:]]))  # fmt: skip
        q, k, _ = qkv.view(2, 25, 3, 8, 32).permute(2, 0, 3, 1, 4)
        cos = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(k, dim=-1).transpose(-2, -1)
        record = next(r for r in recorder.records if r.layer.endswith("stages.3.blocks.0.attn"))
        logits = cos * attn.logit_scale.clamp(max=math.log(100)).exp() + record.bias
    assert record.logit_spread == pytest.approx(float(logits.std(-1, unbiased=False).mean()), rel=1e-5)
    shuffled = landmarks.flip(0)
    rows = bias_reliance(model, lambda: model(images, landmarks), lambda: model(images, shuffled))
    assert all(r["keypoint_bias"] > 0 for r in rows) and len(rows) == 8
    cpb = tiny("cpb")
    rows = bias_reliance(cpb, lambda: cpb(images, landmarks), lambda: cpb(images, shuffled))
    assert all(r["keypoint_bias"] == 0 and r["bias"] > 0 for r in rows)
