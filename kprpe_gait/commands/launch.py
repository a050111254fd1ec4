"""``kprpe-gait launch``: run OpenGait's own ``main.py`` with this plugin registered.

::

    kprpe-gait launch --opengait-root R -- --cfgs configs/gait3d/swingait2d_kprpe.yaml --phase train
    kprpe-gait launch --opengait-root R --cpu -- --cfgs configs/gait3d/synthgait_smoke_kprpe.yaml --phase train

What happens in each process is :func:`kprpe_gait.opengait.launcher.launch` (also
``python -m kprpe_gait.opengait.launcher`` under ``torchrun``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run OpenGait's main.py with this plugin registered"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``kprpe-gait launch`` (everything after ``--`` goes to ``main.py``)."""
    parser.add_argument(
        "--opengait-root",
        required=True,
        type=Path,
        help="OpenGait clone: the folder holding opengait/main.py, configs/, datasets/",
    )
    parser.add_argument(
        "--cpu", action="store_true", help="run without a GPU: gloo process group, no CUDA calls (smoke tests, laptops)"
    )
    parser.add_argument(
        "--shim",
        action="store_true",
        help="register nothing here: rely on the shim of 'kprpe-gait register', as OpenGait's own "
        "command does (with --cpu: that path without a GPU)",
    )
    # the deprecated torch.distributed.launch passes --local-rank=N to the script; main.py's default is fine
    parser.add_argument("--local-rank", "--local_rank", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "main_args",
        nargs=argparse.REMAINDER,
        help="'--' then OpenGait main.py's arguments, e.g. -- --cfgs C.yaml --phase train",
    )


def run(args: argparse.Namespace) -> int:
    main_args = list(args.main_args)
    if main_args[:1] == ["--"]:
        main_args = main_args[1:]
    from kprpe_gait.opengait.launcher import launch

    return launch(args.opengait_root, main_args, cpu=args.cpu, shim=args.shim)
