"""Five-point face landmarks: the CSV format, and the horizontal flip that keeps left and right in order.

Order of the five points everywhere in :mod:`face`: left eye, right eye, nose tip, left mouth corner,
right mouth corner (the order of MTCNN / RetinaFace / insightface). "Left" is the subject's left as seen
in the image, i.e. the point with the smaller ``x`` on a frontal face.

Landmark CSV (read by :func:`read_landmark_csv`, written by :func:`write_landmark_csv`): a header whose
first cell is ``image``, then one row per image: the image path (relative to an image folder) and 10
numbers ``x0,y0,...,x4,y4`` (pixel indices: the centre of pixel ``(r, c)`` is ``(c, r)``) or 15 with the
confidences ``c0..c4`` after them; an empty cell (or ``nan``) marks a missing landmark, which reads back as
NaN with confidence 0.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

from kprpe.io import atomic_open

__all__ = ["FLIP_ORDER", "POINTS", "flip_landmarks", "image_csv_rows", "read_landmark_csv", "write_landmark_csv"]

POINTS = 5
#: Index map of a horizontal flip: the mirrored left eye is the new right eye, and so on.
FLIP_ORDER = (1, 0, 2, 4, 3)

Points = TypeVar("Points", torch.Tensor, np.ndarray)


def image_csv_rows(path: str | os.PathLike[str], kind: str = "landmark CSV") -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of a CSV whose header starts with ``image``; blank rows are skipped.

    The shared reader of the per-image tables (landmarks, boxes): ``kind`` names the table in errors.

    Raises:
        FileNotFoundError: naming ``kind`` and the path when it does not exist.
        ValueError: naming the file when the header does not start with ``image``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} {path} not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None or not header or header[0].strip() != "image":
                raise ValueError(f"{path}: expected a header starting with 'image', got {header!r}")
            for line, row in enumerate(reader, start=2):
                if row and any(cell.strip() for cell in row):
                    yield line, row
        except (UnicodeDecodeError, csv.Error) as e:  # neither names the file
            raise ValueError(f"{path}: not a UTF-8 {kind} ({type(e).__name__}: {e})") from None


def read_landmark_csv(path: str | os.PathLike[str]) -> list[tuple[str, torch.Tensor]]:
    """Rows of a landmark CSV -> ``[(image, (5, 3) float64 tensor)]`` (pixel ``x, y`` and confidence).

    Missing cells become NaN with confidence 0; a row without confidences gets confidence 1.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: naming the file and line of a malformed row, or a file without rows.
    """
    rows: list[tuple[str, torch.Tensor]] = []
    for line, row in image_csv_rows(path):
        values = row[1:]
        if len(values) not in (2 * POINTS, 3 * POINTS):
            raise ValueError(
                f"{path}:{line}: expected 10 (x, y) or 15 (x, y, confidence) numbers after the image, got {len(values)}"
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


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}" if abs(value) < 1e-3 else f"{value:.4f}"


def write_landmark_csv(path: str | os.PathLike[str], rows: Iterable[tuple[str, torch.Tensor | np.ndarray]]) -> int:
    """Write ``[(image, (5, 2|3) pixel landmarks)]`` as a landmark CSV (atomically); returns the row count.

    Every row gets 15 numbers (confidence 1 when the input has none); a landmark that is not finite or has
    confidence 0 is written with empty ``x, y`` cells and confidence 0, so it reads back as missing.
    Coordinates are written with 4 decimals (1e-4 pixel).

    Raises:
        ValueError: naming the image of a row with the wrong shape or an image name that would break a row.
    """
    header = ["image"] + [f"{axis}{i}" for i in range(POINTS) for axis in ("x", "y")] + [f"c{i}" for i in range(POINTS)]
    count = 0
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, points in rows:
            array = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, np.float64)
            if array.shape not in ((POINTS, 2), (POINTS, 3)):
                raise ValueError(f"landmarks of {name!r} must be (5, 2|3), got shape {array.shape}")
            if not name or "\n" in name or "\r" in name:
                raise ValueError(f"image name {name!r} cannot be written to a landmark CSV")
            conf = array[:, 2] if array.shape[1] == 3 else np.ones(POINTS)
            valid = np.isfinite(array[:, :2]).all(1) & np.isfinite(conf) & (conf > 0)
            cells = [name]
            for (x, y), ok in zip(array[:, :2], valid):
                cells += [_cell(x), _cell(y)] if ok else ["", ""]
            cells += [_cell(c) if ok else "0" for c, ok in zip(conf, valid)]
            writer.writerow(cells)
            count += 1
    return count


def flip_landmarks(points: Points, width: float | None = None) -> Points:
    """Landmarks of the horizontally mirrored image: mirror ``x`` and swap left/right (0<->1, 3<->4).

    Args:
        points: ``(..., 5, 2|3)`` tensor or array of ``(x, y[, confidence])``; a confidence column and NaN
            (missing) landmarks are carried along.
        width: the image width in pixels when ``points`` are pixel indices (``x -> width - 1 - x``, the
            pixel-centre convention of :mod:`face.align`); ``None`` for coordinates normalised to ``[0, 1]``
            (``x -> 1 - x``, the ``(p + 0.5) / W`` convention). Both agree: normalising after flipping equals
            flipping after normalising.

    Returns:
        A new tensor / array of the same shape, dtype and kind.
    """
    if points.ndim < 2 or points.shape[-2] != POINTS or points.shape[-1] not in (2, 3):
        raise ValueError(f"landmarks must be (..., 5, 2|3), got shape {tuple(points.shape)}")
    flipped = points[..., list(FLIP_ORDER), :]  # advanced indexing: a copy for tensors and arrays alike
    flipped[..., 0] = (1.0 if width is None else width - 1.0) - flipped[..., 0]
    return flipped
