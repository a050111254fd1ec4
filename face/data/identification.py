"""Probe / gallery identification sets in the TinyFace layout.

::

    root/
      Probe/               1_3.jpg 1_4.jpg 2_1.jpg ...   # label = integer prefix before the first "_"
      Gallery_Match/       1_1.jpg 2_5.jpg ...
      Gallery_Distractor/  anything.jpg ...              # label -100 (never a match)
      landmarks.csv        # optional, face.landmarks format, paths relative to root

Images may have any size: each is resized to ``size`` (TinyFace faces are tiny) and its landmarks scaled
with it, so items are ready for a 112x112 model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from face.data.folder import IMAGE_EXTENSIONS
from face.data.images import image_size, load_image, missing_landmarks
from face.landmarks import read_landmark_csv

__all__ = ["DISTRACTOR_LABEL", "FaceList", "IdentificationSet", "read_identification_folder"]

#: Label of gallery distractors (TinyFace's convention): never equal to a probe's label.
DISTRACTOR_LABEL = -100


class FaceList(Sequence):
    """Image files with labels and landmarks; items are ``(3, size, size)`` uint8, resized.

    Attributes:
        root: the folder the paths are relative to.
        paths: relative paths.
        labels: ``(N,)`` int64.
        landmarks: ``(N, 5, 3)`` pixel landmarks on the *original* images (NaN/0 where missing).
    """

    def __init__(self, root: Path, paths: list[str], labels: list[int], landmarks: torch.Tensor, size: int) -> None:
        self.root, self.paths, self.size = root, paths, size
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.landmarks = landmarks

    def __len__(self) -> int:
        return len(self.paths)

    def item(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image (3, size, size) uint8, landmarks (5, 3) pixel coordinates of the resized image)``."""
        image = load_image(self.root / self.paths[index])
        height, width = image.shape[1:]
        resized = F.interpolate(image[None].float(), (self.size, self.size), mode="bilinear", antialias=True)
        points = self.landmarks[index].clone()
        # pixel centres: p -> (p + 0.5) * scale - 0.5
        points[:, 0] = (points[:, 0] + 0.5) * (self.size / width) - 0.5
        points[:, 1] = (points[:, 1] + 0.5) * (self.size / height) - 0.5
        return resized[0].round().clamp(0, 255).to(torch.uint8), points

    def __getitem__(self, index):  # int or slice, as Sequence wants
        if isinstance(index, slice):
            return [self.item(i)[0] for i in range(*index.indices(len(self)))]
        return self.item(index)[0]

    def resized_landmarks(self) -> torch.Tensor:
        """``(N, 5, 3)`` landmarks in pixels of the resized images (without decoding them)."""
        sizes = [image_size(self.root / path) for path in self.paths]  # (W, H)
        scale = self.size / torch.tensor(sizes, dtype=torch.float32)  # (N, 2)
        points = self.landmarks.clone()
        points[..., :2] = (points[..., :2] + 0.5) * scale[:, None] - 0.5
        return points


@dataclass
class IdentificationSet:
    """A probe list and a gallery list (matches + distractors)."""

    probe: FaceList
    gallery: FaceList


def _label_of(name: str, folder: Path) -> int:
    prefix = name.split("_", 1)[0]
    try:
        return int(prefix)
    except ValueError:
        raise ValueError(
            f"{folder / name}: file name must start with an integer identity and '_', e.g. 12_3.jpg"
        ) from None


def _images(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"identification folder {folder} not found")
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def read_identification_folder(
    root: str | os.PathLike[str],
    probe: str = "Probe",
    gallery: str = "Gallery_Match",
    distractors: str | None = "Gallery_Distractor",
    landmarks: str | os.PathLike[str] | None = "auto",
    size: int = 112,
) -> IdentificationSet:
    """Read a TinyFace-style folder (see the module docstring).

    Args:
        root: the folder holding the probe / gallery / distractor folders.
        probe, gallery, distractors: their names (``distractors=None``: no distractors; an absent distractor
            folder is allowed, absent probe / gallery folders are errors).
        landmarks: a landmark CSV with paths relative to ``root``; ``"auto"`` uses ``root/landmarks.csv`` when it
            exists; images it does not list get missing landmarks.
        size: side the images are resized to.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"identification folder {root} not found")
    table: dict[str, torch.Tensor] = {}
    if landmarks == "auto":
        landmarks = root / "landmarks.csv" if (root / "landmarks.csv").is_file() else None
    if landmarks is not None:
        table = dict(read_landmark_csv(landmarks))

    def listing(entries: list[tuple[str, int]]) -> FaceList:
        points = missing_landmarks(len(entries))
        for i, (path, _) in enumerate(entries):
            if path in table:
                points[i] = table[path].float()
        return FaceList(root, [p for p, _ in entries], [label for _, label in entries], points, size)

    probes = [(f"{probe}/{name}", _label_of(name, root / probe)) for name in _images(root / probe)]
    matches = [(f"{gallery}/{name}", _label_of(name, root / gallery)) for name in _images(root / gallery)]
    others: list[tuple[str, int]] = []
    if distractors is not None and (root / distractors).is_dir():
        others = [(f"{distractors}/{name}", DISTRACTOR_LABEL) for name in _images(root / distractors)]
    if not probes or not matches:
        raise ValueError(f"{root}: needs images in both {probe}/ and {gallery}/")
    return IdentificationSet(listing(probes), listing(matches + others))
