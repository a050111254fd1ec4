"""An image folder per identity, with a landmark CSV: the layout most face training sets are shared in.

::

    root/
      00000/ 000.png 001.png ...     # one folder per identity; the label is the folder's rank in sorted order
      00001/ ...
      landmarks.csv                  # face.landmarks format, paths relative to root ("00000/000.png")
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from face.data.images import load_image, missing_landmarks
from face.landmarks import read_landmark_csv

__all__ = ["IMAGE_EXTENSIONS", "FaceFolder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class FaceFolder(Dataset):
    """Faces in ``root/<identity>/<image>`` with optional landmarks from a landmark CSV.

    Args:
        root: the folder of identity folders.
        landmarks: a landmark CSV with paths relative to ``root`` (see :mod:`face.landmarks`); ``None``:
            every face gets missing landmarks (NaN, confidence 0), which landmark-free models accept.
        missing: what to do with an image the CSV does not list: ``"error"`` (default) or ``"nan"`` (missing
            landmarks for it; the names are kept in :attr:`unlisted`).

    Items: ``(image, landmarks, label)``: ``(3, H, W)`` uint8 RGB, ``(5, 3)`` float32 pixel ``x, y`` and
    confidence, and the integer label.

    Attributes:
        classes: identity folder names; ``label`` indexes it.
        samples: ``[(relative path, label)]`` in sorted order.
    """

    def __init__(self, root: str | os.PathLike[str], landmarks: str | os.PathLike[str] | None = None,
                 missing: str = "error") -> None:  # fmt: skip
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} not found")
        if missing not in ("error", "nan"):
            raise ValueError(f"missing must be 'error' or 'nan', got {missing!r}")
        self.classes = sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
        self.samples: list[tuple[str, int]] = []
        for label, name in enumerate(self.classes):
            for path in sorted((self.root / name).rglob("*")):
                if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                    self.samples.append((path.relative_to(self.root).as_posix(), label))
        if not self.samples:
            raise ValueError(f"{self.root}: no images in identity folders (extensions {', '.join(IMAGE_EXTENSIONS)})")
        self.landmarks = missing_landmarks(len(self.samples))
        self.unlisted: list[str] = []
        if landmarks is not None:
            table = dict(read_landmark_csv(landmarks))
            known = {name for name, _ in self.samples}
            stray = [name for name in table if name not in known]
            if stray:
                raise ValueError(f"{landmarks} lists {len(stray)} image(s) not under {self.root}: {stray[:5]}")
            for index, (name, _) in enumerate(self.samples):
                if name in table:
                    self.landmarks[index] = table[name].float()
                else:
                    self.unlisted.append(name)
            if self.unlisted and missing == "error":
                raise ValueError(
                    f"{len(self.unlisted)} image(s) under {self.root} have no row in {landmarks}: "
                    f"{self.unlisted[:5]} (pass missing='nan' to use them without landmarks)"
                )

    @property
    def labels(self) -> torch.Tensor:
        """``(N,)`` int64 labels of all samples."""
        return torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        name, label = self.samples[index]
        return load_image(self.root / name), self.landmarks[index].clone(), label
