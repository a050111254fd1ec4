import pytest
import torch
from torch import nn

from face.models import PRESETS, FaceViT, build_model


def tiny(**kwargs):
    torch.manual_seed(0)
    return build_model({"preset": "vit_tiny", "depth": 2, **kwargs})


def randomise_tables(model):
    """Bias tables start at zero; give them values so the bias matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "kprpe" in name or ".rpe." in name:
                p.normal_(0, 0.5)


@pytest.mark.parametrize("rpe", ["none", "irpe", "kprpe"])
def test_forward_shape_and_every_parameter_gets_a_gradient(rpe):
    model = tiny(rpe=rpe).train()
    randomise_tables(model)
    out = model(torch.randn(3, 3, 112, 112), torch.rand(3, 5, 2))
    assert out.shape == (3, 512) and torch.isfinite(out).all()
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or torch.count_nonzero(p.grad) == 0]
    assert not missing, missing


def test_layers_are_the_authors(build_uninitialised):
    model = build_uninitialised("vit_small")
    assert model.patch_embed.kernel_size == (8, 8) and model.pos_embed.shape == (1, 196, 512)
    block = model.blocks[0]
    assert block.attn.qkv.bias is None and isinstance(block.mlp.act, nn.ReLU6)
    assert block.mlp.fc1.out_features == 2560 and block.norm1.eps == 1e-5
    head = model.head
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.Linear, nn.BatchNorm1d]
    assert head[0].in_features == 196 * 512 and head[0].bias is None and head[2].bias is None
    assert head[1].eps == head[3].eps == 2e-5
    base = build_uninitialised("vit_base")
    assert (
        len(base.blocks) == 24 and base.blocks[0].attn.num_heads == 16 and base.blocks[0].mlp.fc1.out_features == 1536
    )


def test_kprpe_at_init_is_the_plain_model_and_tables_change_it():
    plain, kp = tiny(rpe="none").eval(), tiny(rpe="kprpe").eval()
    missing, unexpected = plain.load_state_dict(kp.state_dict(), strict=False)
    assert not missing and unexpected == ["kprpe.proj.weight", "kprpe.proj.bias"]
    x, lm = torch.randn(2, 3, 112, 112), torch.rand(2, 5, 2)
    with torch.no_grad():
        torch.testing.assert_close(kp(x, lm), plain(x), rtol=0, atol=0)
        randomise_tables(kp)
        assert not torch.allclose(kp(x, lm), plain(x))
        # landmarks move the embedding
        assert not torch.allclose(kp(x, lm), kp(x, torch.rand(2, 5, 2)))


@pytest.mark.parametrize("variant", ["absolute", "relative", "per_head", "per_layer", "multihead"])
def test_every_kprpe_variant_runs(variant):
    model = tiny(rpe="kprpe", kprpe_variant=variant).eval()
    randomise_tables(model)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 3, 112, 112), torch.rand(2, 5, 3))).all()


def test_missing_landmarks_never_nan_and_equal_zeroed_confidence():
    model = tiny(rpe="kprpe").eval()
    randomise_tables(model)
    x = torch.randn(2, 3, 112, 112)
    lm = torch.rand(2, 5, 3) * 0.8 + 0.1
    nan = lm.clone()
    nan[0, 2, :2] = float("nan")
    nan[1] = float("nan")  # a face with no landmark at all
    zero_conf = lm.clone()
    zero_conf[0, 2, 2] = 0
    zero_conf[1, :, 2] = 0
    with torch.no_grad():
        a, b = model(x, nan), model(x, zero_conf)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_landmarks_ignored_without_kprpe():
    model = tiny(rpe="irpe").eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x, torch.rand(2, 5, 2)), rtol=0, atol=0)


def test_clear_errors():
    model = tiny(rpe="kprpe").eval()
    x = torch.randn(2, 3, 112, 112)
    with pytest.raises(ValueError, match="needs landmarks"):
        model(x)
    with pytest.raises(ValueError, match=r"\(B, 3, 112, 112\)"):
        model(torch.randn(2, 1, 112, 112), torch.rand(2, 5, 2))
    with pytest.raises(ValueError, match=r"\(B, 3, 112, 112\)"):
        model(torch.randn(2, 3, 96, 96), torch.rand(2, 5, 2))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(2, 3, 112, 112, dtype=torch.uint8), torch.rand(2, 5, 2))
    with pytest.raises(ValueError, match="sample 1 .*normalise_landmarks"):
        model(x, torch.stack([torch.rand(5, 2), torch.rand(5, 2) * 112]))
    with pytest.raises(ValueError, match="built for 5"):
        model(x, torch.rand(2, 4, 2))
    with pytest.raises(ValueError, match="3 landmark sets"):
        model(x, torch.rand(3, 5, 2))
    with pytest.raises(ValueError, match="unknown.*rpe"):
        build_model({"preset": "vit_tiny", "rpe": "bias"})
    with pytest.raises(ValueError, match="mask_ratio"):
        build_model({"preset": "vit_tiny", "rpe": "kprpe", "mask_ratio": 0.1})
    with pytest.raises(ValueError, match="dpeth"):
        build_model({"preset": "vit_tiny", "dpeth": 3})
    with pytest.raises(ValueError, match="vit_huge"):
        build_model("vit_huge")


def test_config_rebuilds_the_model_and_presets_are_overridable():
    model = build_model({"preset": "vit_tiny", "rpe": "kprpe", "kprpe_variant": "per_head", "depth": 3})
    assert model.config["depth"] == 3 and model.config["embed_dim"] == PRESETS["vit_tiny"]["embed_dim"]
    again = FaceViT(**model.config)
    again.load_state_dict(model.state_dict(), strict=True)
    assert build_model(dict(model.config)).config == model.config


def test_mask_ratio_drops_tokens_in_training_only():
    model = tiny(mask_ratio=0.5)
    x = torch.randn(2, 3, 112, 112)
    model.eval()
    with torch.no_grad():
        tokens = model.forward_features(x)
        torch.testing.assert_close(tokens, model.forward_features(x), rtol=0, atol=0)
    model.train()
    torch.manual_seed(3)
    masked = model.forward_features(x)
    is_mask = (masked == model.mask_token).all(-1)  # (B, N)
    assert is_mask.sum(1).tolist() == [98, 98]
    assert "mask_token" in model.state_dict() and "mask_token" not in tiny().state_dict()
