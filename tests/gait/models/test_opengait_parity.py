"""SwinGait-2D's parts against OpenGait's own code (needs a clone at $OPENGAIT_ROOT and its dependencies).

OpenGait's SwinGait-3D transformer with a temporal window of 1 and patch ``[1, 2, 2]`` is exactly a
frame-by-frame 2D Swin, so with its weights copied over ours must compute the same numbers.
"""

import pytest
import torch

from kprpe_gait.models import HorizontalPoolingPyramid, SeparateBNNecks, SeparateFCs, SwinTransformer2D, temporal_max
from kprpe_gait.models.modules import BasicBlock2D

pytestmark = pytest.mark.opengait


def test_pooling_fcs_bnnecks_and_temporal_max_match_opengait(opengait_module):
    og = opengait_module("modeling.modules")
    torch.manual_seed(0)
    x = torch.randn(3, 8, 15, 10)
    torch.testing.assert_close(HorizontalPoolingPyramid([15, 5])(x), og.HorizontalPoolingPyramid([15, 5])(x))

    ours, theirs = SeparateFCs(16, 8, 6), og.SeparateFCs(16, 8, 6)
    theirs.fc_bin.data.copy_(ours.fc_bin.data)
    parts = torch.randn(3, 8, 16)
    torch.testing.assert_close(ours(parts), theirs(parts))

    ours, theirs = SeparateBNNecks(16, 8, 5), og.SeparateBNNecks(16, 8, 5)
    theirs.load_state_dict(ours.state_dict())
    for a, b in zip(ours(parts), theirs(parts)):
        torch.testing.assert_close(a, b)

    seqs = torch.randn(1, 8, 9, 15, 10)  # OpenGait pools [n, c, s, h, w] along dim 2
    lengths = [2, 4, 3]
    expected = og.PackSequenceWrapper(torch.max)(seqs, torch.tensor([lengths]), options={"dim": 2})[0]
    torch.testing.assert_close(temporal_max(seqs.transpose(1, 2), lengths), expected)


def test_basic_block_matches_opengait(opengait_module):
    og = opengait_module("modeling.modules")
    torch.manual_seed(0)
    ours = BasicBlock2D(8, 16, stride=2).eval()
    down = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2, bias=False), torch.nn.BatchNorm2d(16))
    theirs = og.BasicBlock2D(8, 16, stride=2, downsample=down).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 32, 22)
    torch.testing.assert_close(ours(x), theirs(x))


def test_swin_transformer_matches_opengait_swingait_with_frame_windows(opengait_module):
    sg = opengait_module("modeling.models.swingait")
    torch.manual_seed(0)
    frames, channels, grid = 3, 16, (15, 10)
    theirs = sg.SwinTransformer3D(
        patch_size=[1, 2, 2], in_chans=channels, embed_dim=256, depths=[2, 2], num_heads=[16, 32],
        window_size=[1, 3, 5], downsample=[1, 0], drop_path_rate=0.0, patch_norm=True,
    )  # fmt: skip
    theirs.eval()  # its train() override returns None, so no chaining
    ours = SwinTransformer2D(
        channels, 256, (2, 2), (16, 32), grid, (3, 5), 0.0, rel_pos="swin", backend="reference"
    ).eval()
    mapped = {}
    for key, value in theirs.state_dict().items():
        if key.endswith("relative_position_index"):
            continue
        new = key.replace("layers.", "stages.")
        if key == "patch_embed.proj.weight":
            value = value[:, :, 0]  # Conv3d kernel [1, 2, 2] -> Conv2d 2x2
        if key.endswith("relative_position_bias_table"):  # (offsets, heads) -> (heads, offsets), same order
            new, value = new.replace("relative_position_bias_table", "rpe.weight"), value.t()
        mapped[new] = value
    ours.load_state_dict(mapped, strict=True)
    x = torch.randn(1, channels, frames, 2 * grid[0], 2 * grid[1])
    with torch.no_grad():
        expected = theirs(x)[0].permute(1, 2, 3, 0)  # (s, h, w, c)
        got = ours(x[0].transpose(0, 1))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
