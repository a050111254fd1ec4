"""``kprpe-face eval``: verification / identification metrics of a face model, and the Fig. 5 path.

::

    kprpe-face eval --model MODEL_DIR --bin lfw.bin cfp_fp.bin --out results.json
    kprpe-face eval --model MODEL_DIR --bin test/aligned.bin test/unaligned.bin \\
        --raw test/raw.bin --path-steps 11 --out results.json
    kprpe-face eval --model MODEL_DIR --identification tinyface/ --out results.json
    kprpe-face eval --model MODEL_DIR --ijb IJB_release/IJBB IJB_release/IJBC --out results.json

Each ``.bin`` is read with its landmark sidecar ``<stem>.landmarks.npy`` when present (``--landmarks`` names
one explicitly, for a single ``--bin``); ``--raw`` is a ``.bin`` of raw photos with ``landmarks`` and
``boxes`` sidecars (see :mod:`face.data.verification`). ``--ijb`` takes IJB-B / IJB-C folders of insightface's
``IJB_release`` (named ``IJBB`` / ``IJBC``, or ``--ijb-name`` for one folder) and runs the 1:1 template protocol
(:mod:`face.eval.ijb`). Results go to ``--out`` as JSON and are printed as a table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate a face model: 10-fold verification, TAR@FAR, IJB-B/C templates, rank-k identification, the Fig. 5 path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model folder or checkpoint (load_pretrained)")
    parser.add_argument("--bin", type=Path, nargs="*", default=[], help="verification .bin file(s)")
    parser.add_argument("--landmarks", type=Path, help="(2N, 5, 2|3) pixel landmarks .npy for a single --bin")
    parser.add_argument("--identification", type=Path, nargs="*", default=[], help="TinyFace-style folder(s)")
    parser.add_argument("--ijb", type=Path, nargs="*", default=[], help="IJB-B / IJB-C folder(s) (IJB_release layout)")
    parser.add_argument("--ijb-name", choices=["IJBB", "IJBC"], help="the set of a single --ijb folder not named so")
    parser.add_argument("--raw", type=Path, help=".bin of raw photos with landmarks/boxes sidecars (Fig. 5 path)")
    parser.add_argument("--path-steps", type=int, default=0, help="points t in [0, 1] along the path (needs --raw)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip TTA (default on)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None, help="e.g. cpu or cuda (default: where the model is)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _load_model(path: Path):
    from face.models import load_pretrained

    return load_pretrained(path)


def run(args: argparse.Namespace) -> int:
    import torch

    from face.data import read_identification_folder, read_ijb, read_verification_bin
    from face.eval import (
        evaluate_identification,
        evaluate_ijb,
        evaluate_path,
        evaluate_verification,
        format_table,
        write_results,
    )
    from kprpe.io import load_npy

    if not args.bin and not args.identification and not args.raw and not args.ijb:
        raise ValueError("nothing to evaluate: give --bin, --identification, --ijb or --raw with --path-steps")
    if args.ijb_name is not None and len(args.ijb) != 1:
        raise ValueError(f"--ijb-name goes with exactly one --ijb, got {len(args.ijb)}")
    if args.landmarks is not None and len(args.bin) != 1:
        raise ValueError(f"--landmarks goes with exactly one --bin, got {len(args.bin)}")
    if (args.raw is None) != (args.path_steps == 0):
        raise ValueError("--raw and --path-steps N go together")
    stems = [path.stem for path in args.bin]
    if len(set(stems)) < len(stems):
        raise ValueError(f"--bin files must have distinct names (they key the results), got {stems}")
    # read every input before the (slow) model work, so a wrong path fails at once
    sets = {path.stem: read_verification_bin(path) for path in args.bin}
    landmarks = None
    if args.landmarks is not None:
        landmarks = load_npy(args.landmarks, "--landmarks")
    identification = {path.name: read_identification_folder(path) for path in args.identification}
    raw = read_verification_bin(args.raw) if args.raw is not None else None
    ijb = [read_ijb(path, args.ijb_name) for path in args.ijb]
    if len({data.name for data in ijb}) < len(ijb):
        raise ValueError(f"--ijb folders must be different sets (they key the results), got {[d.name for d in ijb]}")
    model = _load_model(args.model)
    if args.device is not None:
        model = model.to(torch.device(args.device))
    common = {"flip": args.flip, "batch_size": args.batch_size, "progress": not args.no_progress}
    results: dict = {"model": str(args.model), "flip": args.flip, "verification": {}, "identification": {}, "ijb": {}}
    for name, pairs in sets.items():
        results["verification"][name] = evaluate_verification(model, pairs, landmarks, **common)
    for name, data in identification.items():
        results["identification"][name] = evaluate_identification(model, data, **common)
    for data in ijb:
        results["ijb"][data.name] = evaluate_ijb(model, data, **common)
    if raw is not None:
        results["path"] = evaluate_path(model, raw, args.path_steps, **common)
    write_results(args.out, results)
    print(format_table(results))
    print(f"results -> {args.out}")
    return 0
