"""Where the landmarks of a verification set's images come from, for models that read them (KP-RPE).

Stock ``.bin`` files (LFW, CFP-FP, AgeDB, ...) carry no landmarks. The authors predict landmarks on every
evaluated image and on its mirror; here the sources (:data:`LANDMARK_SOURCES`) are:

* ``"detect"``: MTCNN (:class:`face.detect.MTCNNDetector`, batched) on each image and, separately, on its
  mirror; the best-scoring face of each. The image is zero-padded by ``pad`` of its side first (measured on
  the insightface wheel's aligned 112-px Tom_Hanks crop: mean landmark error to the ArcFace template 5.8 px
  unpadded, 5.1 px padded by 28 px). An image where no face is found gets missing landmarks (NaN,
  confidence 0: the model ignores them), never the template; the count is reported.
* ``"template"``: the ArcFace template scaled to the image size, for sets already aligned to it.
* ``"sidecar"``: ``<stem>.landmarks.npy`` beside the ``.bin`` (and ``<stem>.flip_landmarks.npy`` for the
  mirrors when present; otherwise the mirrors' are the originals mirrored with left/right swapped).

:func:`face.data.verification.write_landmark_sidecars` stores detected landmarks as sidecars, so later
runs read them instead of detecting again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from face.align import ARCFACE_TEMPLATE, TEMPLATE_SIZE
from face.data.verification import VerificationPairs
from face.detect.base import FaceDetector
from face.landmarks import POINTS

__all__ = ["LANDMARK_SOURCES", "PairLandmarks", "detect_landmarks", "pair_landmarks", "template_landmarks"]

LANDMARK_SOURCES = ("detect", "template", "sidecar")


@dataclass
class PairLandmarks:
    """Pixel landmarks of a set's images and of their mirrors.

    Attributes:
        landmarks: ``(M, 5, 3)`` float32 ``(x, y, confidence)`` on each image.
        flipped: ``(M, 5, 3)`` on each mirrored image (its own pixel coordinates), or ``None``: the
            originals mirrored (:func:`face.landmarks.flip_landmarks`).
        source: ``"detect"``, ``"template"``, ``"sidecar"`` or ``"file"`` (an explicit array).
        missing: images (originals and mirrors counted apart) without any landmark.
    """

    landmarks: np.ndarray
    flipped: np.ndarray | None
    source: str
    missing: int = 0


def template_landmarks(count: int, size: tuple[int, int]) -> np.ndarray:
    """The ArcFace template on ``count`` images of ``size = (H, W)``: ``(count, 5, 3)``, confidence 1.

    The template's 112x112 pixel indices are scaled with the pixel-centre convention (``(p + 0.5) / 112``).
    """
    height, width = size
    unit = (ARCFACE_TEMPLATE.double() + 0.5) / torch.tensor(TEMPLATE_SIZE[::-1], dtype=torch.float64)
    pixels = unit * torch.tensor([width, height], dtype=torch.float64) - 0.5
    points = torch.cat([pixels, torch.ones(POINTS, 1, dtype=torch.float64)], 1).float().numpy()
    return np.repeat(points[None], count, 0)


def _best_face(found, offset: float) -> np.ndarray:
    """``(5, 3)`` landmarks of the best-scoring detection, shifted back by the padding; missing if none."""
    if len(found) == 0:
        return np.concatenate([np.full((POINTS, 2), np.nan, np.float32), np.zeros((POINTS, 1), np.float32)], 1)
    points = found.landmarks[0].numpy().astype(np.float32).copy()
    points[:, :2] -= offset
    return points


def detect_landmarks(
    images: Sequence[torch.Tensor],
    detector: FaceDetector,
    pad: float = 0.25,
    chunk: int = 256,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks detected on each image and, separately, on its mirror.

    Args:
        images: ``M`` images ``(3, H, W)`` uint8 RGB (a lazily decoding sequence is read ``chunk`` at a time).
        detector: e.g. :class:`face.detect.MTCNNDetector` (it batches photos of one size).
        pad: zero border added on each side before detection, as a fraction of the image's shorter side.
        chunk: images decoded and detected per call of the detector (with their mirrors: ``2 * chunk``).

    Returns:
        ``(landmarks, flipped)``: ``(M, 5, 3)`` float32 pixel landmarks of the images and of the mirrors
        (each in its own image's coordinates); NaN with confidence 0 where no face was found.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    originals, mirrors = [], []
    for start in tqdm(range(0, len(images), chunk), desc="landmarks", unit="chunk", disable=not progress):
        batch = [images[i] for i in range(start, min(start + chunk, len(images)))]
        borders = [int(round(pad * min(image.shape[1:]))) for image in batch]
        padded = [torch.nn.functional.pad(image, (b, b, b, b)) for image, b in zip(batch, borders)]
        found = detector.detect(padded + [image.flip(-1) for image in padded])
        originals += [_best_face(f, b) for f, b in zip(found[: len(batch)], borders)]
        mirrors += [_best_face(f, b) for f, b in zip(found[len(batch) :], borders)]
    if not originals:
        raise ValueError("no images to detect landmarks on")
    return np.stack(originals), np.stack(mirrors)


def _missing(points: np.ndarray) -> int:
    """Images whose five landmarks are all missing (NaN or confidence 0)."""
    invalid = ~np.isfinite(points[..., :2]).all(-1) | (points[..., 2] <= 0)
    return int(invalid.all(-1).sum())


def pair_landmarks(
    pairs: VerificationPairs,
    source: str,
    detector: FaceDetector | None = None,
    progress: bool = False,
) -> PairLandmarks:
    """The landmarks of ``pairs``' images from ``source`` (:data:`LANDMARK_SOURCES`).

    Raises:
        ValueError: an unknown source, ``"sidecar"`` without a sidecar, ``"detect"`` without a detector.
    """
    if source not in LANDMARK_SOURCES:
        raise ValueError(f"landmark source must be one of {LANDMARK_SOURCES}, got {source!r}")
    if source == "sidecar":
        if pairs.landmarks is None:
            raise ValueError(f"{pairs.path}: no landmark sidecar (<stem>.landmarks.npy); use detect or template")
        return PairLandmarks(pairs.landmarks, pairs.flip_landmarks, "sidecar", _missing(pairs.landmarks))
    if source == "template":
        return PairLandmarks(template_landmarks(len(pairs.encoded), tuple(pairs.image(0).shape[1:])), None, "template")
    if detector is None:
        raise ValueError("landmark source 'detect' needs a detector (e.g. face.detect.MTCNNDetector())")
    landmarks, flipped = detect_landmarks(pairs.images(), detector, progress=progress)
    return PairLandmarks(landmarks, flipped, "detect", _missing(landmarks) + _missing(flipped))
