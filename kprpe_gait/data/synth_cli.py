"""``kprpe-gait synth``: generate SynthGait (see :mod:`kprpe_gait.data.synth`).

::

    kprpe-gait synth --out synthgait-small --size small --seed 0 --workers 2
    kprpe-gait synth --out big --size large --ids 1000 --train-ids 700 --mis-rotate 12
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from .misalign import MisalignConfig

#: ``--mis-<name>`` flags -> MisalignConfig fields
_MISALIGN_FLAGS = {f.name: f.name.replace("_", "-") for f in fields(MisalignConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .synth import PRESETS

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
    for name, flag in _MISALIGN_FLAGS.items():
        mis.add_argument(f"--mis-{flag}", type=float, dest=f"mis_{name}", help=f"default {getattr(defaults, name)}")


def build_config(args: argparse.Namespace):
    """The :class:`~kprpe_gait.data.synth.SynthConfig` the arguments describe (raises ValueError)."""
    from .synth import PRESETS, SynthConfig

    base = dict(PRESETS[args.size])
    if args.ids is not None:
        base["num_ids"] = args.ids
        if args.train_ids is None:  # keep the preset's train share
            base["num_train_ids"] = max(
                1, min(args.ids - 1, round(args.ids * base["num_train_ids"] / PRESETS[args.size]["num_ids"]))
            )
    for arg, key in (
        ("train_ids", "num_train_ids"),
        ("seqs_per_id", "seqs_per_id"),
        ("min_frames", "min_frames"),
        ("max_frames", "max_frames"),
    ):
        if getattr(args, arg) is not None:
            base[key] = getattr(args, arg)
    if args.min_frames is not None and args.max_frames is None:
        base["max_frames"] = max(base["max_frames"], args.min_frames)
    mis = {name: getattr(args, f"mis_{name}") for name in _MISALIGN_FLAGS if getattr(args, f"mis_{name}") is not None}
    return SynthConfig.from_dict({**base, "seed": args.seed, "misalign": MisalignConfig(**mis)})


_SIZE_ARGS = ("ids", "train_ids", "seqs_per_id", "min_frames", "max_frames")


def describe_size(args: argparse.Namespace, cfg) -> str:
    """The preset's name in quotes, or, once a size flag changed it, what was generated instead."""
    if all(getattr(args, arg) is None for arg in _SIZE_ARGS):
        return f"'{args.size}'"
    return (
        f"custom size ({cfg.num_ids} identities, {cfg.num_train_ids} for training, {cfg.seqs_per_id} sequences "
        f"each, {cfg.min_frames}-{cfg.max_frames} frames; from preset '{args.size}')"
    )


def run(args: argparse.Namespace) -> int:
    from .synth import generate

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
