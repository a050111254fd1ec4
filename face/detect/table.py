"""The CSV front-end: landmarks (and optionally boxes) that someone already has, looked up by photo name.

Landmarks come in the landmark CSV of :mod:`face.landmarks`. Boxes, when known (from the detector that made
the landmarks, or SynthFace's detector-like boxes), come in a box CSV: a header whose first cell is
``image``, then ``image,x0,y0,x1,y1`` and optionally ``score`` (box coordinates of :mod:`face.detect.base`:
pixel ``p`` spans ``[p, p + 1)``). A photo without a box gets :func:`face.detect.base.box_from_landmarks`.
One face per photo.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence

import torch

from face.detect.base import Detections, FaceDetector, box_from_landmarks
from face.landmarks import image_csv_rows, read_landmark_csv
from kprpe.io import atomic_open

__all__ = ["BOX_COLUMNS", "CsvLandmarks", "read_box_csv", "write_box_csv"]

BOX_COLUMNS = ("x0", "y0", "x1", "y1")


def read_box_csv(path: str | os.PathLike[str]) -> dict[str, tuple[torch.Tensor, float]]:
    """Rows of a box CSV -> ``{image: ((4,) float32 box, score)}`` (score 1 when the column is absent).

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: naming the file and line of a malformed row (wrong cell count, not a number, no area,
            an image listed twice), or a file without rows.
    """
    boxes: dict[str, tuple[torch.Tensor, float]] = {}
    for line, row in image_csv_rows(path, "box CSV"):
        if len(row) not in (5, 6):
            raise ValueError(f"{path}:{line}: expected image,x0,y0,x1,y1[,score], got {len(row)} cells")
        try:
            numbers = [float(cell) for cell in row[1:]]
        except ValueError as e:
            raise ValueError(f"{path}:{line}: {e}") from None
        x0, y0, x1, y1 = numbers[:4]
        if not all(math.isfinite(v) for v in numbers) or x1 <= x0 or y1 <= y0:
            raise ValueError(f"{path}:{line}: box {numbers[:4]} must be finite with x1 > x0 and y1 > y0")
        name = row[0].strip()
        if name in boxes:
            raise ValueError(f"{path}:{line}: {name!r} has a box already")
        boxes[name] = (torch.tensor(numbers[:4], dtype=torch.float32), numbers[4] if len(numbers) == 5 else 1.0)
    if not boxes:
        raise ValueError(f"{path}: no box rows")
    return boxes


def write_box_csv(
    path: str | os.PathLike[str], rows: Iterable[tuple[str, Sequence[float] | torch.Tensor, float]]
) -> int:
    """Write ``[(image, (x0, y0, x1, y1), score)]`` as a box CSV (atomically); returns the row count."""
    count = 0
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *BOX_COLUMNS, "score"])
        for name, box, score in rows:
            values = [float(v) for v in (box.tolist() if isinstance(box, torch.Tensor) else box)]
            if len(values) != 4:
                raise ValueError(f"box of {name!r} must hold 4 numbers, got {len(values)}")
            writer.writerow([name, *(f"{v:.4f}" for v in values), f"{float(score):.6g}"])
            count += 1
    return count


class CsvLandmarks(FaceDetector):
    """Faces from a landmark CSV (and an optional box CSV), looked up by the photo's name.

    Args:
        landmarks: path of a landmark CSV (:func:`face.landmarks.read_landmark_csv`).
        boxes: path of a box CSV (:func:`read_box_csv`); a box without landmarks is an error, landmarks
            without a box get :func:`face.detect.base.box_from_landmarks`.

    Raises:
        ValueError: an image listed twice in the landmark CSV, or boxes for images without landmarks.
    """

    name = "csv"

    def __init__(self, landmarks: str | os.PathLike[str], boxes: str | os.PathLike[str] | None = None) -> None:
        self.path = landmarks
        self.table: dict[str, torch.Tensor] = {}
        for name, points in read_landmark_csv(landmarks):
            if name in self.table:
                raise ValueError(f"{landmarks}: {name!r} is listed twice")
            self.table[name] = points.float()
        self.boxes = read_box_csv(boxes) if boxes is not None else {}
        orphans = sorted(set(self.boxes) - set(self.table))
        if orphans:
            raise ValueError(
                f"{boxes}: boxes for {len(orphans)} image(s) without landmarks in {landmarks}: {orphans[:5]}"
            )

    def names(self) -> list[str]:
        """The photo names the landmark CSV lists, in file order."""
        return list(self.table)

    def __contains__(self, key: str) -> bool:
        return key in self.table

    def lookup(self, key: str) -> Detections:
        """The face of photo ``key``; empty when the CSV does not list it."""
        points = self.table.get(key)
        if points is None:
            return Detections.empty()
        if key in self.boxes:
            box, score = self.boxes[key]
        else:
            box, score = box_from_landmarks(points[None])[0], 1.0
        return Detections(box[None], points[None], torch.tensor([score], dtype=torch.float32))

    def detect(self, images: Sequence[torch.Tensor], keys: Sequence[str] | None = None) -> list[Detections]:
        if keys is None or len(keys) != len(images):
            raise ValueError("the CSV front-end looks faces up by name: pass one key per image")
        return [self.lookup(key) for key in keys]
