"""``kprpe-face align``: align a folder of faces to the ArcFace template.

``kprpe-face align --images DIR --landmarks CSV --out DIR`` aligns a folder of faces to the 112x112 ArcFace
template and writes the crops plus ``keypoints.csv`` (the landmarks in ``[0, 1]`` of each crop, ready for
``KeypointRPE``); ``--misalign-rotation/--misalign-scale/--misalign-shift`` simulate misalignment.

Landmark CSV: the format of :mod:`face.landmarks` (``image`` relative to ``--images``, then ``x0,y0,...,x4,y4``
pixel indices, optionally ``c0..c4`` confidences).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from face.align import align_faces, random_similarity
from face.landmarks import POINTS, read_landmark_csv
from kprpe.io import atomic_open


def align_folder(
    images: Path,
    landmarks: Path,
    out: Path,
    size: int = 112,
    misalign_rotation: float = 0.0,
    misalign_scale: float = 0.0,
    misalign_shift: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Align every face listed in ``landmarks``; returns how many crops were written.

    Crops go to ``out/<image path with .png>``; ``out/keypoints.csv`` holds ``image,x0,y0,c0,...`` (the
    crop's path, then keypoints in ``[0, 1]`` of the crop; missing landmarks: empty ``x, y``, confidence 0).
    """
    if not images.is_dir():
        raise FileNotFoundError(f"--images {images} is not a folder")
    rows = read_landmark_csv(landmarks)
    outside = [name for name, _ in rows if Path(name).is_absolute() or ".." in Path(name).parts]
    if outside:
        raise ValueError(f"{landmarks}: image paths must be relative and inside --images: {outside[:5]}")
    missing = [name for name, _ in rows if not (images / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image(s) listed in {landmarks} not found under {images}: {', '.join(missing[:5])}"
        )
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    misaligned = misalign_rotation > 0 or misalign_scale > 0 or misalign_shift > 0
    table: list[list[str]] = []
    for name, points in tqdm(rows, desc="align", unit="face", disable=not progress):
        try:
            with Image.open(images / name) as img:
                pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
        except OSError as e:
            raise OSError(f"cannot read image {images / name}: {e}") from e
        tensor = torch.from_numpy(pixels).permute(2, 0, 1)[None]  # (1, 3, H, W)
        jitter = None
        if misaligned:
            jitter = random_similarity(
                1,
                (size, size),
                misalign_rotation,
                (1 - misalign_scale, 1 + misalign_scale),
                misalign_shift,
                generator,
            )
        try:
            aligned = align_faces(tensor, points[None].float(), (size, size), misalignment=jitter)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        crop = aligned.images[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        crop_name = Path(name).with_suffix(".png").as_posix()
        with atomic_open(out / crop_name) as handle:
            Image.fromarray(crop).save(handle, format="PNG")
        cells = [crop_name]
        for x, y, c in aligned.keypoints[0].tolist():
            cells += ["" if math.isnan(x) else f"{x:.6f}", "" if math.isnan(y) else f"{y:.6f}", f"{c:.6f}"]
        table.append(cells)
    header = ["image"] + [f"{axis}{i}" for i in range(POINTS) for axis in ("x", "y", "c")]
    with atomic_open(out / "keypoints.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(table)
    return len(table)


HELP = "align faces to the ArcFace template (5 landmarks)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of face images")
    parser.add_argument("--landmarks", type=Path, required=True, help="landmark CSV (image, x0, y0, ..., x4, y4)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (crops + keypoints.csv)")
    parser.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
    parser.add_argument("--misalign-rotation", type=float, default=0.0, help="max random rotation, degrees")
    parser.add_argument("--misalign-scale", type=float, default=0.0, help="max relative scale change, e.g. 0.1")
    parser.add_argument("--misalign-shift", type=float, default=0.0, help="max shift as a fraction of the crop")
    parser.add_argument("--seed", type=int, default=0, help="seed of the misalignment draws")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    count = align_folder(
        args.images,
        args.landmarks,
        args.out,
        args.size,
        args.misalign_rotation,
        args.misalign_scale,
        args.misalign_shift,
        args.seed,
        progress=not args.no_progress,
    )
    print(f"aligned {count} face(s) -> {args.out}")
    return 0
