"""``kprpe-gait convert-deepgaitv2``: a trained OpenGait DeepGaitV2 -> the layers that start SwinGait-2D.

::

    kprpe-gait convert-deepgaitv2 --checkpoint DeepGaitV2-60000.pt --out swingait2d_init.pt

The key mapping is :mod:`kprpe_gait.models.deepgaitv2`.
"""

from __future__ import annotations

import argparse
import os

HELP = "a trained OpenGait DeepGaitV2 checkpoint -> the stem, FCs and BNNecks that start SwinGait-2D"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="OpenGait DeepGaitV2 checkpoint (.pt)")
    parser.add_argument("--out", required=True, help="where to write the SwinGait-2D initialisation (.pt)")


def run(args: argparse.Namespace) -> int:
    import torch

    from kprpe.checkpoint import save_checkpoint
    from kprpe_gait.models.deepgaitv2 import convert_deepgaitv2

    if not os.path.isfile(args.checkpoint):
        raise SystemExit(f"no checkpoint at {args.checkpoint}")
    state = convert_deepgaitv2(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    save_checkpoint(args.out, {"model": state})
    print(f"wrote {len(state)} tensors (stem, SeparateFCs, BNNecks) to {args.out}")
    return 0
