"""The inputs of ``kprpe-gait pretreat-gait3d``: which of ``--root`` / ``--sils`` / ``--from-pickles`` was given.

The command (``add_arguments``, ``run``, the three input forms) is :mod:`kprpe_gait.commands.pretreat_gait3d`,
re-exported here; the work is :mod:`kprpe_gait.data.pretreat` and :mod:`kprpe_gait.data.recover`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .io import DataFormatError

#: default skipped-files log, at the output root (OpenGait reads only the identity folders its partition names)
SKIPPED_LOG_NAME = "pretreat-gait3d-skipped.log"


def _inputs(args: argparse.Namespace) -> tuple[str, Path, Path]:
    from .pretreat import resolve_gait3d_root

    given = [name for name in ("root", "sils", "from_pickles") if getattr(args, name) is not None]
    if len(given) != 1:
        raise DataFormatError("give exactly one of --root, --sils (with --poses), --from-pickles (with --poses)")
    if args.root is not None:
        if args.poses is not None:
            raise DataFormatError("--poses is implied by --root (ROOT/2D_Poses); give one or the other")
        sil_root, pose_root = resolve_gait3d_root(args.root)
        return "raw", sil_root, pose_root
    if args.poses is None:
        raise DataFormatError(f"--{given[0].replace('_', '-')} needs --poses (Gait3D's 2D_Poses folder)")
    return ("raw" if args.sils is not None else "pickles"), (args.sils or args.from_pickles), args.poses


# The command-line glue is kprpe_gait.commands.pretreat_gait3d (one module per sub-command, as face.commands);
# these names stay importable from here for code written before the move.
from kprpe_gait.commands import pretreat_gait3d as _cli  # noqa: E402

add_arguments, run = _cli.add_arguments, _cli.run
