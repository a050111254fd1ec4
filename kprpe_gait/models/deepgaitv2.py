"""Start SwinGait-2D from a trained OpenGait DeepGaitV2: its conv stem, SeparateFCs and BNNecks.

OpenGait's SwinGait recipe (``configs/swingait/swingait3D_B1442C2_Gait3D.yaml``) restores the layers it
shares with DeepGaitV2 (``restore_hint: <DeepGaitV2 checkpoint>``, ``restore_ckpt_strict: false``: the
keys both models have are loaded, the rest keep their initialisation) and trains them at 0.1 x the
learning rate. SwinGait-2D shares the same layers but not their names (OpenGait wraps 2D layers in
``SetBlockWrapper``, ``.forward_block``; this plugin's network sits under ``net.``), so a DeepGaitV2
checkpoint is converted once::

    kprpe-gait convert-deepgaitv2 --checkpoint output/Gait3D/DeepGaitV2/DeepGaitV2/checkpoints/DeepGaitV2-60000.pt \\
        --out output/Gait3D/DeepGaitV2/swingait2d_init.pt

and ``configs/gait3d/swingait2d_kprpe_deepgaitv2.yaml`` restores the result. Mapping (DeepGaitV2 with
``layers: [1, 4, ...]``, ``channels: [64, 128, ...]`` as in OpenGait's Gait3D config):

====================================  =====================================  ===========================
DeepGaitV2                            SwinGait-2D                            note
====================================  =====================================  ===========================
``layer0.forward_block.{0,1}``        ``net.layer0.{0,1}``                   conv 3x3 -> 64, BN
``layer1.forward_block.<i>.*``        ``net.layer1.<i>.*``                   2D basic blocks, 64
``layer2[.forward_block].<i>.*``      ``net.layer2.<i>.*``                   ``mode: 2d``: as is
``layer2.<i>.conv1.forward_block.0``  ``net.layer2.<i>.conv1`` (``bn1``...)  ``mode: p3d``: the 2D convs
``layer2.<i>.downsample.{0,1}``       ``net.layer2.<i>.downsample.{0,1}``    p3d: 1x1x1 conv -> 1x1
``FCs.fc_bin``                        ``net.fcs.fc_bin``                     16 x 512 x 256
``BNNecks.*``                         ``net.bnnecks.*``                      BN + classifier (3000 ids)
====================================  =====================================  ===========================

A ``p3d`` block's temporal shortcut (``shortcut3d``, ``sbn``) has no 2D counterpart and is dropped, so
a ``p3d`` stem is an initialisation, not the same function; a DeepGaitV2 trained with ``mode: 2d``
transfers exactly. Deeper layers (``layer3``, ``layer4``) have no place in SwinGait-2D.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

__all__ = ["convert_deepgaitv2"]

_P3D_PARTS = {"conv1.forward_block.0": "conv1", "conv1.forward_block.1": "bn1",
              "conv2.forward_block.0": "conv2", "conv2.forward_block.1": "bn2"}  # fmt: skip
_DROPPED = ("shortcut3d", "sbn")


def _state(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, Mapping) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError("not a DeepGaitV2 checkpoint: expected OpenGait's {'model': state_dict}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def convert_deepgaitv2(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """SwinGait-2D plugin keys (``net.*``) for the stem, FCs and BNNecks of a DeepGaitV2 checkpoint.

    Args:
        checkpoint: OpenGait's checkpoint dict (``{"model": state_dict, ...}``) or a bare state dict.

    Returns:
        a state dict to save as ``{"model": ...}`` and restore with ``restore_ckpt_strict: false``.

    Raises:
        ValueError: no DeepGaitV2 stem in the checkpoint (no ``layer0.forward_block.0.weight``).
    """
    state = _state(checkpoint)
    if "layer0.forward_block.0.weight" not in state:
        raise ValueError("no DeepGaitV2 stem in the checkpoint: 'layer0.forward_block.0.weight' is missing")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("layer0.forward_block."):
            out["net.layer0." + key.removeprefix("layer0.forward_block.")] = value
        elif key.startswith("layer1.forward_block."):
            out["net.layer1." + key.removeprefix("layer1.forward_block.")] = value
        elif key.startswith("layer2."):
            rest = key.removeprefix("layer2.").removeprefix("forward_block.")
            match = re.match(r"(\d+)\.(.+)", rest)
            if match is None:
                continue
            block, name = match.groups()
            if name.startswith(_DROPPED):
                continue
            for p3d, plain in _P3D_PARTS.items():
                if name.startswith(p3d + "."):
                    name = plain + name[len(p3d) :]
            if name.startswith("downsample.0.") and value.dim() == 5:  # p3d: Conv3d 1x1x1 -> Conv2d 1x1
                value = value[:, :, 0]
            out[f"net.layer2.{block}.{name}"] = value
        elif key.startswith("FCs."):
            out["net.fcs." + key.removeprefix("FCs.")] = value
        elif key.startswith("BNNecks."):
            out["net.bnnecks." + key.removeprefix("BNNecks.")] = value
    return out


# ------------------------------------------------------------------------------------------- CLI
# The command-line glue is kprpe_gait.commands.convert_deepgaitv2 (one module per sub-command, as face.commands);
# these names stay importable from here for code written before the move.
from kprpe_gait.commands import convert_deepgaitv2 as _cli  # noqa: E402

add_arguments, run = _cli.add_arguments, _cli.run
