"""``kprpe-face eval``: verification / identification metrics of a face model, and the Fig. 5 path.

::

    kprpe-face eval --model MODEL_DIR --bin lfw.bin cfp_fp.bin --out results.json
    kprpe-face eval --model MODEL_DIR --bin test/aligned.bin test/unaligned.bin \\
        --raw test/raw.bin --path-steps 11 --out results.json
    kprpe-face eval --model MODEL_DIR --identification tinyface/ --out results.json
    kprpe-face eval --model MODEL_DIR --ijb IJB_release/IJBB IJB_release/IJBC --out results.json

Landmarks of a ``.bin``'s images (:mod:`face.eval.landmark_sources`): ``--landmarks detect`` (MTCNN on each
image and on its mirror), ``template`` (the ArcFace template, for pre-aligned sets), ``sidecar``
(``<stem>.landmarks.npy`` beside it) or a ``.npy`` file (for a single ``--bin``). By default the sidecar when
there is one, else ``detect`` (nothing for a model that reads no landmarks: ``rpe`` none / irpe);
``--save-landmarks`` writes detected landmarks as sidecars, so later runs reuse them; ``--raw`` is a ``.bin`` of raw photos with ``landmarks`` and
``boxes`` sidecars (see :mod:`face.data.verification`). ``--ijb`` takes IJB-B / IJB-C folders of insightface's
``IJB_release`` (named ``IJBB`` / ``IJBC``, or ``--ijb-name`` for one folder) and runs the 1:1 template protocol
(:mod:`face.eval.ijb`), the 1:N identification of insightface's ``ijb_1n.py`` (:mod:`face.eval.ijb_search`) or
both (``--ijb-protocol 1:1|1:N|both``). Results go to ``--out`` as JSON and are printed as a table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate a face model: 10-fold verification, TAR@FAR, IJB-B/C templates, rank-k identification, the Fig. 5 path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="model folder, checkpoint or Hugging Face owner/name id (load_pretrained)",
    )
    parser.add_argument("--bin", type=Path, nargs="*", default=[], help="verification .bin file(s)")
    parser.add_argument(
        "--landmarks",
        help="landmark source of the --bin sets: detect, template, sidecar, or a (2N, 5, 2|3) pixel .npy for a "
        "single --bin (default: the sidecar if present, else detect)",
    )
    parser.add_argument(
        "--save-landmarks", action="store_true", help="write detected landmarks as <stem>[.flip]_landmarks sidecars"
    )
    parser.add_argument("--identification", type=Path, nargs="*", default=[], help="TinyFace-style folder(s)")
    parser.add_argument("--ijb", type=Path, nargs="*", default=[], help="IJB-B / IJB-C folder(s) (IJB_release layout)")
    parser.add_argument(
        "--ijb-protocol",
        choices=["1:1", "1:N", "both"],
        default="1:1",
        help="IJB template verification (1:1), identification as insightface's ijb_1n.py (1:N), or both",
    )
    parser.add_argument("--ijb-name", choices=["IJBB", "IJBC"], help="the set of a single --ijb folder not named so")
    parser.add_argument("--raw", type=Path, help=".bin of raw photos with landmarks/boxes sidecars (Fig. 5 path)")
    parser.add_argument("--path-steps", type=int, default=0, help="points t in [0, 1] along the path (needs --raw)")
    parser.add_argument(
        "--tar-readout",
        choices=["field", "full"],
        default="field",
        help="TAR@FAR on sklearn's drop_intermediate ROC as insightface/CVLface (field, default) or the full ROC",
    )
    parser.add_argument(
        "--reliance", action="store_true",
        help="also run the keypoint-reliance probe on each --bin: accuracy with true / constant (template) / "
             "shuffled landmarks, embedding cosine true vs constant, the keypoint part of each layer's attention bias",
    )  # fmt: skip
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip TTA (default on)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None, help="e.g. cpu or cuda (default: where the model is)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _landmark_option(value: str | None) -> tuple[str | None, Path | None]:
    """``--landmarks``: a source name (:data:`LANDMARK_SOURCES`) or a ``.npy`` file (``./detect`` for a file
    named like a source)."""
    from face.eval.landmark_sources import LANDMARK_SOURCES

    if value is None:
        return None, None
    if value in LANDMARK_SOURCES:
        return value, None
    return None, Path(value)


def _default_source(pairs, model) -> str | None:
    """The sidecar when the set has one; else detection, unless the model reads no landmarks."""
    from face.eval.reliance import uses_landmarks

    if pairs.landmarks is not None:
        return "sidecar"
    if not uses_landmarks(model):  # a backbone without KP-RPE ignores landmarks
        return None
    return "detect"


def _make_detector(device: str | None):
    from face.detect import MTCNNDetector

    return MTCNNDetector(device=device or "cpu")


def _load_model(path: Path):
    from face.models import load_pretrained

    return load_pretrained(path)


def _reliance(model, pairs, points, args: argparse.Namespace) -> dict:
    """:func:`face.eval.keypoint_reliance` of one set, with the landmarks the evaluation used."""
    import numpy as np
    import torch

    from face.align import normalise_landmarks
    from face.eval.reliance import keypoint_reliance

    pixel = getattr(points, "landmarks", points)
    if pixel is None:
        pixel = pairs.landmarks
    if pixel is None:
        raise ValueError(f"{pairs.path}: --reliance needs landmarks (a sidecar, --landmarks detect|template|FILE.npy)")
    images = torch.stack(list(pairs.images()))
    unit = normalise_landmarks(torch.as_tensor(np.asarray(pixel), dtype=torch.float32), tuple(images.shape[-2:]))
    return keypoint_reliance(model, images, unit, pairs.issame, flip=args.flip, batch_size=args.batch_size,
                             device=args.device)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch

    from face.data import read_identification_folder, read_ijb, read_verification_bin
    from face.data.verification import write_landmark_sidecars
    from face.eval import (
        evaluate_identification,
        evaluate_ijb_protocols,
        evaluate_path,
        evaluate_verification,
        format_table,
        write_results,
    )
    from face.eval.landmark_sources import pair_landmarks
    from kprpe.io import load_npy

    if not args.bin and not args.identification and not args.raw and not args.ijb:
        raise ValueError("nothing to evaluate: give --bin, --identification, --ijb or --raw with --path-steps")
    if args.ijb_name is not None and len(args.ijb) != 1:
        raise ValueError(f"--ijb-name goes with exactly one --ijb, got {len(args.ijb)}")
    source, landmark_file = _landmark_option(args.landmarks)
    if landmark_file is not None and len(args.bin) != 1:
        raise ValueError(f"--landmarks FILE.npy goes with exactly one --bin, got {len(args.bin)}")
    if args.save_landmarks and source not in (None, "detect"):
        raise ValueError(f"--save-landmarks saves detected landmarks; it does not go with --landmarks {args.landmarks}")
    if (args.raw is None) != (args.path_steps == 0):
        raise ValueError("--raw and --path-steps N go together")
    stems = [path.stem for path in args.bin]
    if len(set(stems)) < len(stems):
        raise ValueError(f"--bin files must have distinct names (they key the results), got {stems}")
    # read every input before the (slow) model work, so a wrong path fails at once
    sets = {path.stem: read_verification_bin(path) for path in args.bin}
    landmarks = None
    if landmark_file is not None:
        if not landmark_file.is_file():
            raise FileNotFoundError(f"--landmarks {landmark_file} not found")
        landmarks = load_npy(landmark_file, "--landmarks")
    if source == "sidecar":
        lacking = [str(path) for path, pairs in zip(args.bin, sets.values()) if pairs.landmarks is None]
        if lacking:
            raise FileNotFoundError(f"--landmarks sidecar: no <stem>.landmarks.npy beside {lacking}")
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
    detector = None
    for path, (name, pairs) in zip(args.bin, sets.items()):
        points = landmarks
        chosen = _default_source(pairs, model) if source is None and landmarks is None else source
        if chosen is not None:
            if chosen == "detect" and detector is None:
                detector = _make_detector(args.device)
            points = pair_landmarks(pairs, chosen, detector, progress=not args.no_progress)
            if args.save_landmarks and chosen == "detect":
                for side in write_landmark_sidecars(path, points.landmarks, points.flipped):
                    print(f"landmarks -> {side}")
        results["verification"][name] = evaluate_verification(model, pairs, points, readout=args.tar_readout, **common)
        if args.reliance:
            results.setdefault("reliance", {})[name] = _reliance(model, pairs, points, args)
    for name, data in identification.items():
        results["identification"][name] = evaluate_identification(model, data, **common)
    for data in ijb:
        protocols = ("1:1", "1:N") if args.ijb_protocol == "both" else (args.ijb_protocol,)
        done = evaluate_ijb_protocols(model, data, protocols, readout=args.tar_readout, **common)
        if "1:1" in done:
            results["ijb"][data.name] = done["1:1"]
        if "1:N" in done:
            results.setdefault("ijb_1n", {})[data.name] = done["1:N"]
    if raw is not None:
        results["path"] = evaluate_path(model, raw, args.path_steps, **common)
    write_results(args.out, results)
    print(format_table(results))
    print(f"results -> {args.out}")
    return 0
