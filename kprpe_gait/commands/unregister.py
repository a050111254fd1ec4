"""``kprpe-gait unregister``: remove the shim installed by ``kprpe-gait register``.

::

    kprpe-gait unregister --opengait-root R

The shim file and its rules are :mod:`kprpe_gait.opengait.shim`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "remove the shim installed by 'register'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--opengait-root", required=True, type=Path, help="OpenGait clone: the folder holding opengait/main.py"
    )


def run(args: argparse.Namespace) -> int:
    from kprpe_gait.opengait.shim import unregister

    removed = unregister(args.opengait_root)
    print("removed: " + ", ".join(map(str, removed)) if removed else "nothing to remove: no shim installed")
    return 0
