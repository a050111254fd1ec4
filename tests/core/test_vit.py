import itertools

import pytest
import torch

from kprpe.core import Block, KeypointRPE, VisionTransformer
from kprpe.core.decay import position_parameter_names

CONFIGS = [
    dict(pos_embed="learned", rpe="none"),
    dict(pos_embed="none", rpe="bias"),
    dict(pos_embed="learned", rpe="bias", rpe_method="cross"),
    dict(pos_embed="none", rpe="contextual"),
    dict(pos_embed="learned", rpe="kprpe", kprpe_variant="absolute"),
    dict(pos_embed="learned", rpe="kprpe", kprpe_variant="relative"),
    dict(pos_embed="learned", rpe="kprpe", kprpe_variant="multihead"),
    dict(pos_embed="learned", rpe="kprpe", kprpe_variant="multihead", class_token=True, global_pool="token"),
    dict(pos_embed="none", rpe="kprpe", kprpe_variant="per_head", kprpe_hidden_dim=16, global_pool="flatten"),
]


def small_vit(**kwargs):
    base = dict(img_size=(16, 12), patch_size=4, in_chans=1, num_classes=7, embed_dim=32, depth=2, num_heads=4)
    base.update(kwargs)
    return VisionTransformer(**base)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_forward_backward_every_parameter_gets_a_gradient(cfg):
    torch.manual_seed(0)
    model = small_vit(**cfg)
    x, kp = torch.randn(3, 1, 16, 12), torch.rand(3, 5, 3)
    # the bias tables start at zero; give them values so that gradients flow everywhere
    with torch.no_grad():
        for name, p in model.named_parameters():
            if torch.count_nonzero(p) == 0 and p.dim() > 1:
                p.normal_(0, 0.1)
    out = model(x, kp)
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    out.logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or torch.count_nonzero(p.grad) == 0]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("variant", ["absolute", "relative", "multihead"])
def test_kprpe_model_at_init_equals_the_same_model_without_bias(variant):
    torch.manual_seed(1)
    kp_model = small_vit(rpe="kprpe", kprpe_variant=variant).eval()
    plain = small_vit(rpe="none").eval()
    missing, unexpected = plain.load_state_dict(kp_model.state_dict(), strict=False)
    assert not missing and all(k.startswith("kprpe.") for k in unexpected)
    x = torch.randn(4, 1, 16, 12)
    with torch.no_grad():
        torch.testing.assert_close(kp_model(x, torch.rand(4, 5, 2)), plain(x), rtol=0, atol=0)


def test_state_dict_round_trip_is_strict_and_exact():
    torch.manual_seed(2)
    a = small_vit(rpe="kprpe").eval()
    torch.nn.init.normal_(a.kprpe.proj.weight, std=0.1)
    b = small_vit(rpe="kprpe").eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x, kp = torch.randn(2, 1, 16, 12), torch.rand(2, 5, 2)
    with torch.no_grad():
        assert torch.equal(a(x, kp), b(x, kp))


def test_backends_give_the_same_model_output_and_gradients():
    torch.manual_seed(3)
    outs, grads = [], []
    for backend in ("reference", "sdpa"):
        torch.manual_seed(3)
        model = small_vit(rpe="kprpe", backend=backend)
        torch.nn.init.normal_(model.kprpe.proj.weight, std=0.2)
        out = model(torch.randn(2, 1, 16, 12), torch.rand(2, 5, 2))
        out.sum().backward()
        outs.append(out.detach())
        grads.append(model.kprpe.proj.weight.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-6)


def test_clear_errors():
    with pytest.raises(ValueError, match="needs keypoints"):
        small_vit(rpe="kprpe")(torch.randn(1, 1, 16, 12))
    with pytest.raises(ValueError, match="built for 5"):
        small_vit(rpe="kprpe")(torch.randn(1, 1, 16, 12), torch.rand(1, 17, 2))
    with pytest.raises(ValueError, match="expected images"):
        small_vit()(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="keypoint sets"):
        small_vit(rpe="kprpe")(torch.randn(2, 1, 16, 12), torch.rand(3, 5, 2))
    with pytest.raises(ValueError, match="class_token"):
        small_vit(global_pool="token")
    with pytest.raises(ValueError, match="unknown rpe"):
        small_vit(rpe="alibi")


def test_no_weight_decay_lists_embeddings_norms_biases_and_tables():
    names = small_vit(rpe="bias", class_token=True, global_pool="token").no_weight_decay()
    assert {"pos_embed", "cls_token", "blocks.0.attn.rpe.weight", "norm.weight", "head.bias"} <= names
    assert "blocks.0.attn.qkv.weight" not in names


class _KPBlock(torch.nn.Module):
    def __init__(self, backend):
        super().__init__()
        self.rpe = KeypointRPE(5, (4, 4), 4, 1)
        torch.nn.init.normal_(self.rpe.proj.weight, std=0.5)
        self.block = Block(32, 4, backend=backend)

    def forward(self, x, keypoints):
        (table,) = self.rpe(keypoints)
        return self.block(x, table, self.rpe.buckets)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("backend, dynamo", [("reference", False), ("sdpa", False), ("reference", True)])
def test_block_exports_to_onnx_and_runs_in_onnxruntime(tmp_path, backend, dynamo):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    if dynamo:
        pytest.importorskip("onnxscript")
    torch.manual_seed(4)
    model = _KPBlock(backend).eval()
    x, kp = torch.randn(2, 16, 32), torch.rand(2, 5, 3)
    path = tmp_path / "block.onnx"
    torch.onnx.export(model, (x, kp), str(path), input_names=["x", "keypoints"], output_names=["y"], dynamo=dynamo)
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x_in, kp_in in itertools.islice(((x, kp), (torch.randn(2, 16, 32), torch.rand(2, 5, 3))), 2):
        (y,) = session.run(None, {"x": x_in.numpy(), "keypoints": kp_in.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(y), model(x_in, kp_in), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden_dim", [None, 8])
def test_kprpe_w_l_is_not_weight_decayed_like_every_position_table(hidden_dim):
    vit = small_vit(rpe="kprpe", kprpe_hidden_dim=hidden_dim)
    kprpe_names = {f"kprpe.{n}" for n, _ in vit.kprpe.named_parameters()}
    assert "kprpe.proj.weight" in kprpe_names and kprpe_names <= vit.no_weight_decay()
    assert kprpe_names == position_parameter_names(vit)


def test_mlp_act_and_embed_encode_split():
    torch.manual_seed(5)
    model = small_vit(mlp_act="relu6", rpe="kprpe").eval()
    assert all(isinstance(b.mlp.act, torch.nn.ReLU6) for b in model.blocks)
    x, kp = torch.randn(2, 1, 16, 12), torch.rand(2, 5, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(model.embed(x), kp), model.forward_features(x, kp), rtol=0, atol=0)
        block = model.blocks[0]
        h = torch.randn(2, 12, 32)
        expected = block.mlp.fc2(block.mlp.fc1(h).clamp(0, 6))
        torch.testing.assert_close(block.mlp(h), expected)
    with pytest.raises(ValueError, match="mlp_act"):
        small_vit(mlp_act="swish")
