"""``kprpe-face align``: align a folder of faces to the ArcFace template.

``kprpe-face align --images DIR --landmarks CSV --out DIR`` aligns a folder of faces to the 112x112 ArcFace
template and writes the crops plus ``keypoints.csv`` (the landmarks in ``[0, 1]`` of each crop, ready for
``KeypointRPE``); ``--misalign-rotation/--misalign-scale/--misalign-shift`` simulate misalignment.

Landmark CSV: a header, then one row per image: ``image`` (a path relative to ``--images``) and 10 numbers
``x0,y0,...,x4,y4`` (pixel indices: left eye, right eye, nose, left and right mouth corners) or 15 with
``c0..c4`` confidences after them; an empty cell marks a missing landmark.
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
from kprpe.io import atomic_open

POINTS = 5


def read_landmarks(path: Path) -> list[tuple[str, torch.Tensor]]:
    """Rows of a landmark CSV -> ``[(image, (5, 3) tensor)]``; missing cells become NaN with confidence 0.

    Raises:
        ValueError: naming the file and line of a malformed row.
    """
    rows: list[tuple[str, torch.Tensor]] = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or not header or header[0].strip() != "image":
            raise ValueError(f"{path}: expected a header starting with 'image', got {header!r}")
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            values = row[1:]
            if len(values) not in (2 * POINTS, 3 * POINTS):
                raise ValueError(
                    f"{path}:{line}: expected 10 (x, y) or 15 (x, y, confidence) numbers after the image, "
                    f"got {len(values)}"
                )
            try:
                numbers = [float(v) if v.strip() else math.nan for v in values]
            except ValueError as e:
                raise ValueError(f"{path}:{line}: {e}") from None
            xy = torch.tensor(numbers[: 2 * POINTS], dtype=torch.float64).view(POINTS, 2)
            conf = (
                torch.tensor(numbers[2 * POINTS :], dtype=torch.float64)
                if len(values) == 3 * POINTS
                else torch.ones(POINTS, dtype=torch.float64)
            )
            conf = torch.where(torch.isfinite(xy).all(-1) & torch.isfinite(conf), conf, torch.zeros_like(conf))
            rows.append((row[0].strip(), torch.cat([xy, conf[:, None]], -1)))
    if not rows:
        raise ValueError(f"{path}: no landmark rows")
    return rows


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
    rows = read_landmarks(landmarks)
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
