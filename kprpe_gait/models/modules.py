"""The convolutional and pooling pieces around SwinGait-2D's transformer (OpenGait semantics).

* :class:`BasicBlock2D` and :func:`make_res_layer`: the ResNet basic block of the conv stem;
* :func:`temporal_max`: max over frames, per sequence when sequences are packed along time (``seqL``);
* :class:`HorizontalPoolingPyramid`: horizontal strips, ``mean + max`` per strip;
* :class:`SeparateFCs`: one linear map per part;
* :class:`SeparateBNNecks`: BNNeck (one BatchNorm over all parts) and a cosine classifier per part.

Everything is pure PyTorch; shapes follow OpenGait's ``[n, c, p]`` part layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BasicBlock2D",
    "HorizontalPoolingPyramid",
    "SeparateBNNecks",
    "SeparateFCs",
    "make_res_layer",
    "seq_lengths",
    "temporal_max",
]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock2D(nn.Module):
    """ResNet basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    The shortcut is a strided 1x1 conv + BN when the stride or the channel count changes.

    Shape:
        ``(B, in_channels, H, W)`` -> ``(B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


def make_res_layer(in_channels: int, out_channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """``blocks`` basic blocks; only the first one strides and changes the width."""
    if blocks < 1:
        raise ValueError(f"a residual layer needs at least one block, got {blocks}")
    layers = [BasicBlock2D(in_channels, out_channels, stride)]
    layers += [BasicBlock2D(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def seq_lengths(seqL: Sequence[int] | torch.Tensor | None, total: int) -> list[int] | None:
    """Normalise ``seqL`` to a list of positive ints summing to ``total`` (``None`` stays ``None``).

    Accepts a list, a 1D tensor or OpenGait's ``(1, k)`` tensor.
    """
    if seqL is None:
        return None
    lengths = [int(v) for v in (seqL.reshape(-1).tolist() if torch.is_tensor(seqL) else seqL)]
    if not lengths or any(v < 1 for v in lengths):
        raise ValueError(f"seqL must be a non-empty list of positive lengths, got {lengths}")
    if sum(lengths) != total:
        raise ValueError(f"seqL sums to {sum(lengths)} but the packed input has {total} frames")
    return lengths


def temporal_max(x: torch.Tensor, seqL: list[int] | None = None) -> torch.Tensor:
    """Max over time, per sequence.

    Args:
        x: ``(n, s, ...)`` frame features.
        seqL: ``None`` (every sample has ``s`` frames) or, when ``n == 1``, the lengths of the
            sequences packed along ``s`` (already validated by :func:`seq_lengths`).

    Returns:
        ``(n, ...)`` or ``(len(seqL), ...)``.
    """
    if seqL is None:
        return x.amax(dim=1)
    if x.shape[0] != 1:
        raise ValueError(f"packed sequences (seqL) need a batch of 1, got {x.shape[0]}")
    return torch.stack([part.amax(dim=1)[0] for part in x.split(seqL, dim=1)])


class HorizontalPoolingPyramid(nn.Module):
    """Split the map into ``b`` horizontal strips per entry of ``bin_num``; ``mean + max`` per strip.

    Shape:
        ``(n, c, h, w)`` -> ``(n, c, sum(bin_num))``; ``h`` must be divisible by every bin count.
    """

    def __init__(self, bin_num: Sequence[int] = (16, 8, 4, 2, 1)) -> None:
        super().__init__()
        self.bin_num = tuple(int(b) for b in bin_num)
        if not self.bin_num or any(b < 1 for b in self.bin_num):
            raise ValueError(f"bin_num must be positive ints, got {bin_num!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, _ = x.shape
        feats = []
        for bins in self.bin_num:
            if h % bins:
                raise ValueError(f"feature height {h} is not divisible into {bins} horizontal bins")
            z = x.reshape(n, c, bins, -1)  # (n, c, bins, h/bins * w)
            feats.append(z.mean(-1) + z.amax(-1))
        return torch.cat(feats, dim=-1)

    def extra_repr(self) -> str:
        return f"bin_num={self.bin_num}"


class SeparateFCs(nn.Module):
    """One ``in_channels -> out_channels`` linear map (no bias) per part.

    Shape:
        ``(n, in_channels, p)`` -> ``(n, out_channels, p)``
    """

    def __init__(self, parts_num: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.parts_num = parts_num
        self.fc_bin = nn.Parameter(torch.empty(parts_num, in_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.fc_bin)  # OpenGait's init, fans of the 3D (p, c_in, c_out) tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.permute(2, 0, 1).matmul(self.fc_bin)  # (p, n, c_out)
        return out.permute(1, 2, 0)

    def extra_repr(self) -> str:
        p, cin, cout = self.fc_bin.shape
        return f"parts_num={p}, in_channels={cin}, out_channels={cout}"


class SeparateBNNecks(nn.Module):
    """BNNeck over all parts at once, then a cosine classifier per part (OpenGait's ``norm=True``).

    Returns ``(features, logits)``: the batch-normalised, L2-normalised part features and their
    cosine similarities to the normalised class weights (a loss scales them, e.g. by 16).

    Shape:
        ``(n, c, p)`` -> features ``(n, c, p)``, logits ``(n, class_num, p)``
    """

    def __init__(self, parts_num: int, in_channels: int, class_num: int) -> None:
        super().__init__()
        if class_num < 1:
            raise ValueError(f"class_num must be positive, got {class_num}")
        self.parts_num = parts_num
        self.class_num = class_num
        self.fc_bin = nn.Parameter(torch.empty(parts_num, in_channels, class_num))
        self.bn1d = nn.BatchNorm1d(in_channels * parts_num)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.fc_bin)
        self.bn1d.reset_parameters()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, p = x.shape
        x = self.bn1d(x.reshape(n, c * p)).view(n, c, p)
        feature = F.normalize(x.permute(2, 0, 1), dim=-1)  # (p, n, c)
        logits = feature.matmul(F.normalize(self.fc_bin, dim=1))  # (p, n, class_num)
        return feature.permute(1, 2, 0), logits.permute(1, 2, 0)

    def extra_repr(self) -> str:
        p, c, k = self.fc_bin.shape
        return f"parts_num={p}, in_channels={c}, class_num={k}"
