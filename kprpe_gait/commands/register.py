"""``kprpe-gait register``: install a shim so OpenGait's unmodified ``main.py`` finds the plugin.

::

    kprpe-gait register --opengait-root R

The shim file and its rules are :mod:`kprpe_gait.opengait.shim`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "install a shim so OpenGait's unmodified main.py finds the plugin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--opengait-root", required=True, type=Path, help="OpenGait clone: the folder holding opengait/main.py"
    )


def run(args: argparse.Namespace) -> int:
    from kprpe_gait.opengait.runtime import resolve_root
    from kprpe_gait.opengait.shim import register

    path = register(args.opengait_root)
    print(f"registered: {path}")
    print(
        f"run from {resolve_root(args.opengait_root)}: "
        "torchrun --nproc_per_node=N opengait/main.py --cfgs CONFIG.yaml --phase train"
    )
    return 0
