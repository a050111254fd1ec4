"""``kprpe-gait synth``: generate SynthGait (see :mod:`kprpe_gait.data.synth`).

::

    kprpe-gait synth --out synthgait-small --size small --seed 0 --workers 2
    kprpe-gait synth --out big --size large --ids 1000 --train-ids 700 --mis-rotate 12

The configuration the flags describe is :func:`kprpe_gait.data.synth_cli.build_config`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "generate SynthGait, a synthetic Gait3D in its raw and OpenGait layouts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kprpe_gait.data.misalign import MisalignConfig
    from kprpe_gait.data.synth import PRESETS
    from kprpe_gait.data.synth_cli import MISALIGN_FLAGS

    parser.add_argument("--out", type=Path, required=True, help="output folder (absent or empty)")
    parser.add_argument("--size", choices=list(PRESETS), default="small", help="preset (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--ids", type=int, help="identities (overrides the preset)")
    parser.add_argument("--train-ids", type=int, help="identities in TRAIN_SET (default: the preset's share)")
    parser.add_argument("--seqs-per-id", type=int, help="sequences per identity")
    parser.add_argument("--min-frames", type=int, help="shortest sequence (frames rendered)")
    parser.add_argument("--max-frames", type=int, help="longest sequence")
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="processes (default: %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    mis = parser.add_argument_group("misalignment of pkl-misaligned/ (defaults in kprpe_gait.data.misalign)")
    defaults = MisalignConfig()
    for name, flag in MISALIGN_FLAGS.items():
        mis.add_argument(f"--mis-{flag}", type=float, dest=f"mis_{name}", help=f"default {getattr(defaults, name)}")


def run(args: argparse.Namespace) -> int:
    from kprpe_gait.data.synth import generate
    from kprpe_gait.data.synth_cli import build_config, describe_size

    try:
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        cfg = build_config(args)
        summary = generate(args.out, cfg, workers=args.workers, progress=not args.quiet)
    except (ValueError, FileExistsError) as err:
        print(f"kprpe-gait synth: error: {err}", file=sys.stderr)
        return 1
    pre = summary["pretreat"]
    print(
        f"SynthGait {describe_size(args, cfg)} (seed {cfg.seed}) in {args.out}: {summary['sequences']} sequences, "
        f"{summary['raw']['frames']} frames rendered, "
        f"{pre['written']} pretreated sequences / {pre['frames_kept']} frames, "
        f"{summary['misaligned_sequences']} misaligned test sequences"
    )
    print("partition: " + json.dumps(summary["partition"]))
    print(
        f"frames dropped by the pretreatment: {json.dumps(pre['frames_dropped'])}; empty sequences: {len(pre['empty'])}"
    )
    print(f"look at {Path(args.out) / 'preview.png'}")
    return 0
