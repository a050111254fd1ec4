"""``kprpe-gait pretreat-gait3d``: Gait3D -> OpenGait pickles with joints in the silhouette frame.

Three inputs::

    kprpe-gait pretreat-gait3d --root Gait3D --out Gait3D-kprpe-pkl            # raw frames + poses
    kprpe-gait pretreat-gait3d --sils Gait3D/2D_Silhouettes --poses Gait3D/2D_Poses --out OUT
    kprpe-gait pretreat-gait3d --from-pickles Gait3D-sils-64-64-pkl --poses Gait3D/2D_Poses --out OUT

The third form is for when only OpenGait's silhouette pickles are left: each frame's crop is then
*estimated* (see :mod:`kprpe_gait.data.recover` for the approximation and its measured error). The work is
:func:`kprpe_gait.data.pretreat.pretreat_gait3d` / :func:`kprpe_gait.data.recover.convert_opengait_pickles`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HELP = "Gait3D -> OpenGait pickles with joints in the silhouette frame"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kprpe_gait.data.pretreat_cli import SKIPPED_LOG_NAME

    src = parser.add_argument_group("input (one of)")
    src.add_argument("--root", type=Path, help="Gait3D root holding 2D_Silhouettes/ and 2D_Poses/")
    src.add_argument("--sils", type=Path, help="Gait3D's 2D_Silhouettes folder (with --poses)")
    src.add_argument(
        "--from-pickles",
        type=Path,
        metavar="DIR",
        help="OpenGait silhouette pickles (<id>/<type>/<view>/<view>.pkl) when the raw frames are gone (with --poses); "
        "crops are estimated, see kprpe_gait.data.recover",
    )
    src.add_argument("--poses", type=Path, help="Gait3D's 2D_Poses folder")
    parser.add_argument("--out", type=Path, required=True, help="output root (an OpenGait dataset_root)")
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="processes (default: %(default)s)"
    )
    parser.add_argument(
        "--pose-offset",
        type=float,
        default=0.5,
        help="added to pose x, y: 0.5 for HRNet's pixel-index convention (default), 0 if already pixel-centre",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="redo every sequence, also into an output made with other settings (recorded in OUT/pretreat-gait3d.json)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="abort on the first unreadable PNG or malformed pose file (default: skip such frames, count them "
        "by reason in the summary and list them in the skipped-files log)",
    )
    parser.add_argument(
        "--skipped-log",
        type=Path,
        help=f"where to list the skipped files (default: OUT/{SKIPPED_LOG_NAME}; written only when files were skipped)",
    )
    parser.add_argument("--summary-json", type=Path, help="also write the summary to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from kprpe_gait.data.io import DataFormatError, atomic_write_bytes
    from kprpe_gait.data.pretreat import pretreat_gait3d
    from kprpe_gait.data.pretreat_cli import SKIPPED_LOG_NAME, _inputs
    from kprpe_gait.data.recover import convert_opengait_pickles

    try:
        mode, sil_root, pose_root = _inputs(args)
        if args.workers < 1:
            raise DataFormatError(f"--workers must be >= 1, got {args.workers}")
        fn = pretreat_gait3d if mode == "raw" else convert_opengait_pickles
        summary = fn(
            sil_root,
            pose_root,
            args.out,
            workers=args.workers,
            pose_offset=args.pose_offset,
            overwrite=args.overwrite,
            strict=args.strict,
            progress=not args.quiet,
        )
    except (DataFormatError, FileNotFoundError) as err:
        print(f"kprpe-gait pretreat-gait3d: error: {err}", file=sys.stderr)
        return 1
    if summary.bad_files:
        log = args.skipped_log or args.out / SKIPPED_LOG_NAME
        atomic_write_bytes(log, summary.bad_files_log().encode())
        print(f"skipped files listed in {log}")
    print(summary.format())
    if mode == "pickles" and summary.written:
        print(
            "NOTE: OpenGait's pickles do not say which frame each row is. A pose file missing at a sequence's end "
            "together with a silhouette missing inside it still shifts the frames in between by one; see "
            "kprpe_gait.data.recover and benchmarks/RESULTS.md for the measured rate."
        )
    if args.summary_json is not None:
        data = dict(summary.to_dict(), mode=mode, silhouettes=str(sil_root), poses=str(pose_root), out=str(args.out))
        atomic_write_bytes(args.summary_json, (json.dumps(data, indent=2) + "\n").encode())
    return 0
