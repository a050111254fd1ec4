"""``kprpe-face convert``: an authors' (CVLface) checkpoint -> our format (``model.safetensors`` + ``config.json``).

``kprpe-face convert --checkpoint IN --out FOLDER`` reads a CVLface Hugging Face folder or a bare checkpoint
file (see :mod:`face.models.pretrained`), checks it strictly and writes ``FOLDER/model.safetensors`` and
``FOLDER/config.json``, which ``face.models.load_pretrained(FOLDER)`` reads back. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert an authors' (CVLface) face checkpoint to model.safetensors + config.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="CVLface model folder or checkpoint file")
    parser.add_argument("--out", type=Path, required=True, help="folder to write model.safetensors + config.json to")
    parser.add_argument(
        "--num-heads", type=int, default=None, help="head count, only for a model of no preset shape that hides it"
    )


def run(args: argparse.Namespace) -> int:
    from face.models import load_pretrained, save_pretrained

    model = load_pretrained(args.checkpoint, num_heads=args.num_heads)
    save_pretrained(model, args.out)
    params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    if "depths" in cfg:  # FaceSwin
        shape = f"Swin, depths {cfg['depths']}, width {cfg['embed_dim']}, heads {cfg['num_heads']}, rpe={cfg['rpe']}"
    else:
        shape = f"depth {cfg['depth']}, width {cfg['embed_dim']}, {cfg['num_heads']} heads, rpe={cfg['rpe']}" + (
            f" ({cfg['kprpe_variant']})" if cfg["rpe"] == "kprpe" else ""
        )
    print(f"wrote {args.out}: {shape}, {params:,} parameters")
    return 0
