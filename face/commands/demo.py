"""``kprpe-face demo``: SynthFace -> vit_tiny per arm of :data:`face.demo.ARMS` -> misalignment sweeps + reliance.

See :mod:`face.demo` for the steps. ``--quick`` runs the same pipeline on a tiny set and model in seconds.
"""

from __future__ import annotations

import argparse

HELP = ("SynthFace demo: the small ViT with no RPE, iRPE, KP-RPE (two parametrisations) and the constant-landmark "
        "control, tested under controlled misalignments with the keypoint-reliance probe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/face_demo", help="output folder (default runs/face_demo)")
    parser.add_argument("--quick", action="store_true", help="tiny data and model, a few steps (a smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="seeds SynthFace and the training (default 0)")
    from face.demo import ARMS

    parser.add_argument("--models", default=",".join(ARMS), help="comma-separated arms to train: " + ", ".join(ARMS))
    parser.add_argument("--iterations", type=int, help="override the training steps of the preset")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from face.demo import PRESETS, format_table, run_demo, with_overrides

    preset = with_overrides(PRESETS["quick" if args.quick else "default"], iterations=args.iterations)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    results = run_demo(args.out, preset, args.seed, models, args.threads, progress=not args.no_progress)
    print(format_table(results))
    print(f"\n{len(results['models'])} models in {results['seconds']:.0f} s; results.json, table.md and results.png "
          f"in {args.out}")  # fmt: skip
    return 0
