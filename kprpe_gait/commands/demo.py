"""``kprpe-gait demo``: SynthGait -> SwinGait-2D with and without KP-RPE -> aligned / misaligned results.

The steps are in :mod:`kprpe_gait.demo`; this module parses the command line and runs them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

HELP = "SynthGait -> train SwinGait-2D with and without KP-RPE -> aligned/misaligned table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kprpe_gait.demo import MODELS

    parser.add_argument("--out", default="runs/demo", help="output folder (data, checkpoints, logs, results)")
    parser.add_argument("--size", default=None, help="SynthGait size (tiny, small, medium, large); default: small")
    parser.add_argument("--data", default=None, help="use this SynthGait folder instead of generating one")
    parser.add_argument("--iters", type=int, default=None, help="training iterations per model (default 250)")
    parser.add_argument("--seed", type=int, default=0, help="seed of SynthGait and of both training runs")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: PyTorch's default)")
    parser.add_argument("--quick", action="store_true", help="tiny data, tiny model, 3 iterations: a smoke test")
    parser.add_argument("--opengait-root", default=None, help="run through OpenGait's main.py from this clone")
    parser.add_argument(
        "--kprpe-grid", choices=("stage", "window"), default=None,
        help="frame of KP-RPE's grid M: the stage's token grid or the attention window (default: stage)",
    )  # fmt: skip
    parser.add_argument(
        "--models", default=None, help=f"comma-separated models to train, of {','.join(MODELS)} (default: all)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from kprpe_gait.demo import MODELS, PRESETS, format_reliance, format_table, run_demo

    preset = PRESETS["quick" if args.quick else "default"]
    if args.size is not None:
        preset = replace(preset, size=args.size)
    if args.iters is not None:
        if args.iters < 1:
            raise SystemExit(f"--iters must be >= 1, got {args.iters}")
        preset = replace(preset, iterations=args.iters, sgdr_cycle=args.iters)
    if args.kprpe_grid is not None:
        preset = replace(preset, kprpe_grid=args.kprpe_grid)
    if args.models is not None:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        unknown = [m for m in models if m not in MODELS]
        if unknown or not models:
            raise SystemExit(f"--models: unknown {unknown or 'empty list'}; choose from {', '.join(MODELS)}")
        preset = replace(preset, models=models)
    if args.threads:
        torch.set_num_threads(args.threads)
    progress = not args.no_progress
    out_dir = Path(args.out)
    if args.opengait_root is not None:
        if args.kprpe_grid is not None or args.models is not None:
            raise SystemExit("--kprpe-grid and --models choose the compact runner's models; set kprpe_grid in the "
                             "OpenGait config instead")  # fmt: skip
        summary = _run_opengait(args, preset, out_dir, progress)
    else:
        summary = run_demo(out_dir, preset, args.seed, args.data, args.threads, progress)
    print(format_table(summary))
    if summary.get("reliance"):
        print("\nKeypoint reliance (the control arm sees the mean pose whatever it is given):\n")
        print(format_reliance(summary))
    print(f"\nresults: {out_dir / 'results.json'}, plot: {out_dir / 'results.png'}, TensorBoard: {out_dir / 'tb'}")
    return 0


def _run_opengait(args: argparse.Namespace, preset: Any, out_dir: Path, progress: bool) -> dict[str, Any]:
    """The demo through OpenGait's ``main.py`` (``--opengait-root``); ``preset`` is a ``DemoPreset``."""
    from kprpe_gait.data.synth import SynthConfig, generate
    from kprpe_gait.demo import write_results
    from kprpe_gait.opengait.demo import run_opengait_demo

    data_dir = Path(args.data) if args.data is not None else out_dir / f"synthgait-{preset.size}"
    generate(
        data_dir,
        SynthConfig.preset(preset.size, seed=args.seed),
        workers=min(4, os.cpu_count() or 1),
        progress=progress,
    )
    summary = run_opengait_demo(data_dir, out_dir / "opengait", args.opengait_root, iters=preset.iterations,
                                batch=preset.batch_size, frames=preset.frames, progress=progress)  # fmt: skip
    write_results(summary, out_dir)
    return summary
