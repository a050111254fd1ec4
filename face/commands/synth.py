"""``kprpe-face synth``: render a SynthFace set (see :mod:`face.synth`).

::

    kprpe-face synth --out data/synthface --preset demo [--ids 300 --images-per-id 10 --pairs 600] [--workers 2]

Writes aligned training folders + landmark CSV (optionally RecordIO), aligned / unaligned / raw verification
``.bin`` files with landmark (and box) sidecars, ``preview.png`` and ``synthface.json``. A folder that
already holds the same set is reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "render a SynthFace set (train folders, aligned/unaligned/raw verification pairs, preview)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--preset", default="demo", help="tiny (tests) or demo (default)")
    parser.add_argument("--ids", type=int, help="training identities")
    parser.add_argument("--images-per-id", type=int, help="aligned training images per identity")
    parser.add_argument("--test-ids", type=int, help="held-out identities of the test pairs")
    parser.add_argument("--test-images-per-id", type=int, help="photos per test identity")
    parser.add_argument("--pairs", type=int, help="verification pairs (half same, half different)")
    parser.add_argument("--photo-size", type=int, help="side of the raw photos")
    parser.add_argument("--max-roll", type=float, help="largest in-plane rotation, degrees")
    parser.add_argument("--recordio", action="store_true", default=None, help="also write train.rec / train.idx")
    parser.add_argument("--image-format", choices=("jpeg", "png"), help="encoding of written images")
    parser.add_argument("--seed", type=int, help="seed (the output depends on it only)")
    parser.add_argument("--workers", type=int, help="rendering processes")
    parser.add_argument("--overwrite", action="store_true", help="replace a SynthFace of another config in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from face.synth import generate, synth_config

    keys = ("ids", "images_per_id", "test_ids", "test_images_per_id", "pairs", "photo_size", "max_roll", "recordio",
            "image_format", "seed", "workers")  # fmt: skip
    config = synth_config(args.preset, **{key: getattr(args, key) for key in keys})
    files = generate(config, args.out, progress=not args.no_progress, overwrite=args.overwrite)
    width = max(len(name) for name in files)
    for name, path in files.items():
        print(f"{name:<{width}}  {path}")
    return 0
