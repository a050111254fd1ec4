import pytest
import torch

from kprpe_gait.models import SwinGait2D, build_from_model_cfg, checkpoint_filter_fn, load_weights

SMALL_CFG = {
    "model": "SwinGait2D",
    "Backbone": {"in_channels": 1, "layers": [1, 1, 2, 2], "channels": [8, 16]},
    "bin_num": [15],
    "SeparateBNNecks": {"in_channels": 16, "class_num": 6, "parts_num": 16},
    "embed_dim": 16,
    "num_heads": [2, 4],
}


def test_opengait_style_cfg_builds_the_paper_model():
    cfg = {
        "model": "SwinGait2DKPRPE",
        "Backbone": {"in_channels": 1, "layers": [1, 4, 4, 2], "channels": [64, 128]},
        "bin_num": [15],
        "SeparateBNNecks": {"in_channels": 256, "class_num": 3000, "parts_num": 16},
    }
    net = build_from_model_cfg(cfg)
    ref = SwinGait2D(3000, rel_pos="kprpe")
    assert net.rel_pos == "kprpe" and net.num_classes == 3000
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def test_cfg_options_and_num_classes_override():
    net = build_from_model_cfg({**SMALL_CFG, "rel_pos": "none", "window_size": [5, 5]}, num_classes=11)
    assert net.rel_pos == "none" and net.num_classes == 11 and net.window_size == (5, 5)
    assert net.transformer.stages[1].blocks[0].attn.num_heads == 4
    out = net.eval()(torch.rand(1, 2, 32, 22))
    assert out["logits"].shape == (1, 11, 15) and out["embeddings"].shape == (1, 16, 15)


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"rel_pos": "kprpe", "lr": 1}, r"model_cfg: unknown key 'lr'"),
        (
            {"Backbone": {"in_channels": 1, "layers": [1, 1, 2, 2], "channel": [8, 16]}},
            r"model_cfg.Backbone: unknown key 'channel'",
        ),
        ({"SeparateBNNecks": {"in_channels": 16, "class_num": 6, "parts_num": 16, "norm": True}}, "SeparateBNNecks"),
        ({"model": "SwinGait"}, "not a SwinGait-2D"),
        ({"model": "SwinGait2DKPRPE", "rel_pos": "swin"}, "implies rel_pos 'kprpe'"),
        ({"SeparateBNNecks": {"in_channels": 16, "parts_num": 16}}, "no class count"),
        ({"rel_pos": "bias"}, "unknown rel_pos"),
    ],
)
def test_cfg_errors_name_the_problem(patch, match):
    with pytest.raises(ValueError, match=match):
        build_from_model_cfg({**SMALL_CFG, **patch})


def test_checkpoint_filter_unwraps_and_strips_prefixes():
    sd = {"a.weight": torch.zeros(1), "b": torch.ones(2)}
    assert (
        checkpoint_filter_fn({"model": {f"module.net.{k}": v for k, v in sd.items()}, "iteration": 3}).keys()
        == sd.keys()
    )
    assert checkpoint_filter_fn({"state_dict": {f"net.{k}": v for k, v in sd.items()}}).keys() == sd.keys()
    mixed = {"net.a.weight": torch.zeros(1), "b": torch.ones(2)}
    assert checkpoint_filter_fn(mixed).keys() == mixed.keys()  # only strips a prefix every key has
    with pytest.raises(ValueError, match="no state dict"):
        checkpoint_filter_fn({"iteration": 3})


def test_load_weights_round_trip_and_strictness(tmp_path):
    torch.manual_seed(0)
    src = build_from_model_cfg({**SMALL_CFG, "rel_pos": "kprpe"}).eval()
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {f"module.net.{k}": v for k, v in src.state_dict().items()}, "iteration": 7}, path)
    torch.manual_seed(1)
    dst = build_from_model_cfg({**SMALL_CFG, "rel_pos": "kprpe"}).eval()
    load_weights(dst, path)
    sils, joints = torch.rand(1, 2, 32, 22), torch.rand(1, 2, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(dst(sils, joints)["embeddings"], src(sils, joints)["embeddings"])
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(build_from_model_cfg({**SMALL_CFG, "rel_pos": "swin"}), path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_weights(dst, tmp_path / "absent.pt")
