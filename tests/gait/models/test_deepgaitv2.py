"""Starting SwinGait-2D from a DeepGaitV2 checkpoint (OpenGait's SwinGait recipe)."""

import pytest
import torch
from torch import nn

from kprpe_gait import cli
from kprpe_gait.models import SwinGait2D
from kprpe_gait.models.deepgaitv2 import convert_deepgaitv2

SMALL = {"channels": (8, 16), "layers": (1, 2, 2, 2), "embed_dim": 8, "num_heads": (2, 2), "out_channels": 8}


def opengait_deepgaitv2(og_models, mode: str, class_num: int) -> nn.Module:
    """OpenGait's own DeepGaitV2 layers (build_network only: no data, no GPU)."""
    model = og_models.DeepGaitV2.__new__(og_models.DeepGaitV2)
    nn.Module.__init__(model)
    cfg = {"Backbone": {"mode": mode, "in_channels": 1, "layers": [1, 2, 1, 1], "channels": [8, 16, 8, 16]},
           "SeparateBNNecks": {"class_num": class_num}}  # fmt: skip
    model.build_network(cfg)
    return model


class _PlugIn(nn.Module):  # the plugin's OpenGait model holds the network as `net`
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net


@pytest.mark.opengait
@pytest.mark.parametrize("mode", ["2d", "p3d"])
def test_opengait_deepgaitv2_checkpoint_feeds_the_stem_fcs_and_bnnecks(opengait_module, mode):
    og = opengait_module("modeling.models.deepgaitv2")
    torch.manual_seed(0)
    deep = opengait_deepgaitv2(og, mode, class_num=5)
    for m in deep.modules():  # non-trivial BN statistics
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    converted = convert_deepgaitv2({"model": deep.state_dict(), "iteration": 60000})
    ours = _PlugIn(SwinGait2D(5, **SMALL))
    missing, unexpected = ours.load_state_dict(converted, strict=False)
    assert not unexpected
    stem_and_heads = [k for k in ours.state_dict() if k.startswith(("net.layer", "net.fcs", "net.bnnecks"))]
    assert set(stem_and_heads) <= set(converted) and not set(stem_and_heads) & set(missing)
    if mode == "2d":  # the 2D stem transfers exactly: same features as DeepGaitV2's layer0..layer2
        deep.eval(), ours.eval()
        sils = torch.rand(2, 1, 3, 32, 22)  # OpenGait's (n, c, s, h, w)
        with torch.no_grad():
            theirs = deep.layer2(deep.layer1(deep.layer0(sils)))  # (n, c, s, h, w)
            net = ours.net
            frames = sils.transpose(1, 2).reshape(6, 1, 32, 22)
            mine = net.layer2(net.layer1(net.layer0(frames)))
        torch.testing.assert_close(mine, theirs.transpose(1, 2).reshape(6, 16, 16, 11))


def test_conversion_renames_2d_and_drops_the_temporal_shortcut_of_p3d_blocks(tmp_path):
    w = torch.randn(4, 4, 1, 1, 1)
    p3d = {
        "layer0.forward_block.0.weight": torch.zeros(8, 1, 3, 3),
        "layer1.forward_block.0.conv1.weight": torch.zeros(8, 8, 3, 3),
        "layer2.0.conv1.forward_block.0.weight": torch.ones(4, 8, 3, 3),
        "layer2.0.conv1.forward_block.1.running_var": torch.ones(4),
        "layer2.0.conv2.forward_block.1.weight": torch.ones(4),
        "layer2.0.shortcut3d.weight": torch.zeros(4, 4, 3, 1, 1),
        "layer2.0.sbn.weight": torch.zeros(4),
        "layer2.0.downsample.0.weight": w,
        "layer3.0.conv1.forward_block.0.weight": torch.zeros(1),
        "FCs.fc_bin": torch.zeros(16, 4, 2),
        "BNNecks.bn1d.weight": torch.zeros(32),
    }
    out = convert_deepgaitv2({"model": {f"module.{k}": v for k, v in p3d.items()}})
    assert set(out) == {
        "net.layer0.0.weight", "net.layer1.0.conv1.weight", "net.layer2.0.conv1.weight", "net.layer2.0.bn1.running_var",
        "net.layer2.0.bn2.weight", "net.layer2.0.downsample.0.weight", "net.fcs.fc_bin", "net.bnnecks.bn1d.weight",
    }  # fmt: skip
    torch.testing.assert_close(out["net.layer2.0.downsample.0.weight"], w[:, :, 0])
    with pytest.raises(ValueError, match="no DeepGaitV2 stem"):
        convert_deepgaitv2({"model": {"FCs.fc_bin": torch.zeros(1)}})
    src, dst = tmp_path / "deep.pt", tmp_path / "init.pt"
    torch.save({"model": p3d}, src)
    assert cli.main(["convert-deepgaitv2", "--checkpoint", str(src), "--out", str(dst)]) == 0
    assert set(torch.load(dst, weights_only=True)["model"]) == set(out)
