"""Verification pairs in the insightface ``.bin`` layout (LFW, CFP-FP, AgeDB, CALFW, CPLFW), plus sidecars.

A ``.bin`` is ``pickle.dump((images, issame))``: ``images`` a list of ``2N`` encoded images (JPEG/PNG bytes;
pair ``k`` is entries ``2k`` and ``2k + 1``), ``issame`` a list of ``N`` booleans. Files written by Python 2
need ``encoding="bytes"``, which is how they are read here, with :func:`kprpe.io.safe_pickle_load` (a ``.bin``
is a download: a pickle naming anything but containers, bytes and numbers is refused unrun). The standard
file holds no landmarks, so optional sidecars beside it carry what KP-RPE and the Fig. 5 path need:

* ``<stem>.landmarks.npy``: ``(2N, 5, 3)`` float32 pixel ``x, y`` + confidence on each entry's image;
* ``<stem>.flip_landmarks.npy``: ``(2N, 5, 3)`` the same on each entry's *mirrored* image (in its own pixel
  coordinates), when landmarks were detected on the mirrors too (:func:`write_landmark_sidecars`);
* ``<stem>.boxes.npy``: ``(2N, 4)`` float32 detector boxes ``x0, y0, x1, y1`` (continuous pixel coordinates:
  pixel ``p`` spans ``[p, p + 1)``) on each entry's raw photo (for ``.bin`` files of raw photos).

Images are decoded lazily (``pairs.image(i)``), so a large set costs its encoded size in memory; a corrupt
entry raises a ``ValueError`` naming the file and entry index when it is decoded (``pairs.check()`` decodes
all of them up front).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from face.data.images import decode_image, encode_image
from kprpe.io import atomic_open, atomic_write_bytes, load_npy, safe_pickle_load

__all__ = [
    "VerificationPairs",
    "read_verification_bin",
    "sidecar_path",
    "write_landmark_sidecars",
    "write_verification_bin",
]


def sidecar_path(path: str | os.PathLike[str], kind: str) -> Path:
    """``lfw.bin`` -> ``lfw.<kind>.npy`` (``kind`` = ``"landmarks"``, ``"flip_landmarks"`` or ``"boxes"``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{kind}.npy")


@dataclass
class VerificationPairs:
    """``N`` pairs of ``2N`` encoded images.

    Attributes:
        encoded: ``2N`` encoded images.
        issame: ``(N,)`` bool.
        landmarks: ``(2N, 5, 3)`` float32 pixel landmarks, or ``None``.
        boxes: ``(2N, 4)`` float32 detector boxes, or ``None``.
        path: where they were read from (names errors).
        flip_landmarks: ``(2N, 5, 3)`` float32 pixel landmarks of the mirrored images, or ``None``.
    """

    encoded: list[bytes]
    issame: np.ndarray
    landmarks: np.ndarray | None = None
    boxes: np.ndarray | None = None
    path: str = "<memory>"
    flip_landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.issame = np.asarray(self.issame, dtype=bool).reshape(-1)
        if len(self.encoded) != 2 * len(self.issame):
            raise ValueError(f"{self.path}: {len(self.encoded)} images for {len(self.issame)} pairs (need 2 per pair)")
        for name, array, shape in (
            ("landmarks", self.landmarks, (5, 3)),
            ("flip_landmarks", self.flip_landmarks, (5, 3)),
            ("boxes", self.boxes, (4,)),
        ):
            if array is not None and tuple(array.shape) != (len(self.encoded), *shape):
                raise ValueError(
                    f"{self.path}: {name} must be {(len(self.encoded), *shape)}, one per image, got {tuple(array.shape)}"
                )

    def __len__(self) -> int:
        return len(self.issame)

    def image(self, index: int) -> torch.Tensor:
        """Entry ``index`` decoded: ``(3, H, W)`` uint8 RGB."""
        return decode_image(self.encoded[index], f"{self.path} entry {index}")

    def images(self) -> DecodedImages:
        """A lazily decoding sequence of all ``2N`` entries (feeds :func:`face.eval.embed`)."""
        return DecodedImages(self)

    def check(self) -> None:
        """Decode every entry once; raises on the first corrupt one (naming file and index)."""
        for index in range(len(self.encoded)):
            self.image(index)


class DecodedImages(Sequence):
    """``pairs.image(i)`` as a sequence."""

    def __init__(self, pairs: VerificationPairs) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs.encoded)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.pairs.image(i) for i in range(*index.indices(len(self)))]
        return self.pairs.image(index)


def _as_bytes(entry, path: Path, index: int) -> bytes:
    if isinstance(entry, (bytes, bytearray)):
        return bytes(entry)
    if isinstance(entry, np.ndarray) and entry.dtype == np.uint8:
        return entry.tobytes()
    raise ValueError(f"{path} entry {index}: expected encoded image bytes, got {type(entry).__name__}")


def read_verification_bin(path: str | os.PathLike[str], sidecars: bool = True) -> VerificationPairs:
    """Read a ``.bin`` (and, with ``sidecars``, its ``.landmarks.npy`` / ``.boxes.npy`` when present).

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the file when it is not a ``(images, issame)`` pickle, or an entry that is not bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"verification file {path} not found")
    content = safe_pickle_load(path, encoding="bytes", what="verification .bin pickle")
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise ValueError(f"{path}: expected a pickled (images, issame) pair, got {type(content).__name__}")
    entries, issame = content
    if not isinstance(entries, (list, tuple, np.ndarray)) or getattr(entries, "ndim", 1) == 0:
        raise ValueError(f"{path}: expected a list of encoded images, got {type(entries).__name__}")
    encoded = [_as_bytes(entry, path, i) for i, entry in enumerate(entries)]
    extra: dict[str, np.ndarray | None] = {"landmarks": None, "flip_landmarks": None, "boxes": None}
    if sidecars:
        for kind in extra:
            side = sidecar_path(path, kind)
            if side.is_file():
                extra[kind] = _sidecar_array(side, kind, len(encoded))
    return VerificationPairs(encoded, _labels(issame, path), path=str(path), **extra)


def _labels(issame: object, path: Path) -> np.ndarray:
    """The pair labels as a bool vector: a list of booleans (or 0/1 numbers) and nothing else."""
    try:
        labels = np.asarray(issame)
    except ValueError as e:  # ragged nesting
        raise ValueError(f"{path}: issame is not a list of booleans ({e})") from None
    if labels.ndim != 1 or labels.dtype.kind not in "biu" or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: issame must be a list of booleans, got {labels.dtype} of shape {labels.shape}")
    return labels.astype(bool)


def _sidecar_array(side: Path, kind: str, count: int) -> np.ndarray:
    """A ``.landmarks.npy`` / ``.boxes.npy`` sidecar of ``count`` images as float32; errors name the sidecar."""
    array = load_npy(side, f"{kind} sidecar")
    shape = (count, *_SIDECAR_SHAPES[kind])
    if array.dtype.kind not in "biuf" or array.shape != shape:
        raise ValueError(f"{side}: {kind} must be {shape} numbers, one per image, got {array.shape} {array.dtype}")
    return array.astype(np.float32)


_SIDECAR_SHAPES = {"landmarks": (5, 3), "flip_landmarks": (5, 3), "boxes": (4,)}


def write_verification_bin(
    path: str | os.PathLike[str],
    images: Sequence[torch.Tensor | np.ndarray | bytes] | torch.Tensor,
    issame: Sequence[bool] | np.ndarray,
    landmarks: np.ndarray | torch.Tensor | None = None,
    boxes: np.ndarray | torch.Tensor | None = None,
    format: str = "png",
) -> list[Path]:
    """Write ``2N`` images and ``N`` labels as a ``.bin`` (+ sidecars); returns the paths written.

    Args:
        images: ``(3, H, W)`` uint8 tensors / ``(H, W, 3)`` arrays / encoded bytes, or a ``(2N, 3, H, W)`` tensor.
        issame: ``N`` booleans.
        landmarks: ``(2N, 5, 2|3)`` pixel landmarks (confidence 1 added when absent) -> ``<stem>.landmarks.npy``.
        boxes: ``(2N, 4)`` -> ``<stem>.boxes.npy``.
        format: ``"png"`` (lossless) or ``"jpeg"`` for entries that are not bytes yet.
    """
    encoded = [entry if isinstance(entry, bytes) else encode_image(entry, format) for entry in images]
    pairs = VerificationPairs(
        encoded,
        np.asarray(issame, dtype=bool),
        None if landmarks is None else _points(landmarks),
        None if boxes is None else np.asarray(boxes, dtype=np.float32),
        path=str(path),
    )
    buffer = io.BytesIO()
    pickle.dump((pairs.encoded, [bool(x) for x in pairs.issame]), buffer, protocol=4)
    atomic_write_bytes(path, buffer.getvalue())
    written = [Path(path)]
    for kind, array in (("landmarks", pairs.landmarks), ("flip_landmarks", None), ("boxes", pairs.boxes)):
        side = sidecar_path(path, kind)
        if array is not None:
            with atomic_open(side) as handle:
                np.save(handle, array)
            written.append(side)
        elif side.exists():
            side.unlink()  # a stale sidecar of an earlier file would be read with the new one
    return written


def write_landmark_sidecars(
    path: str | os.PathLike[str], landmarks: np.ndarray, flipped: np.ndarray | None = None
) -> list[Path]:
    """Write ``<stem>.landmarks.npy`` (and ``<stem>.flip_landmarks.npy``) beside the ``.bin`` at ``path``.

    Args:
        landmarks: ``(2N, 5, 2|3)`` pixel landmarks of the entries (confidence 1 added when absent).
        flipped: the same for the mirrored entries, or ``None`` (a stale flip sidecar is then removed).

    Returns:
        The paths written.
    """
    written = []
    for kind, array in (("landmarks", landmarks), ("flip_landmarks", flipped)):
        side = sidecar_path(path, kind)
        if array is None:
            if side.exists():
                side.unlink()  # it would pair mirrors detected for other landmarks with these
            continue
        with atomic_open(side) as handle:
            np.save(handle, _points(array))
        written.append(side)
    return written


def _points(landmarks: np.ndarray | torch.Tensor) -> np.ndarray:
    array = np.asarray(landmarks.detach().cpu() if isinstance(landmarks, torch.Tensor) else landmarks, np.float32)
    if array.ndim == 3 and array.shape[-1] == 2:
        array = np.concatenate([array, np.ones((*array.shape[:2], 1), np.float32)], -1)
    return array
