"""What a face detector front-end returns, and the interface every front-end implements.

Coordinates are those of :mod:`face.align` and :mod:`face.data.crop`: landmarks are pixel indices of the
photo (the centre of pixel ``(r, c)`` is ``(c, r)``), in the order left eye, right eye, nose tip, left and
right mouth corners, NaN (or confidence 0) = missing; a box ``(x0, y0, x1, y1)`` is in continuous
coordinates where pixel ``p`` spans ``[p, p + 1)`` (so :func:`face.data.crop.box_crop_matrix` crops it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from face.align import ARCFACE_TEMPLATE, TEMPLATE_SIZE
from face.landmarks import POINTS

__all__ = ["Detections", "FaceDetector", "box_from_landmarks", "landmarks_inside"]


@dataclass
class Detections:
    """The faces a front-end found on one photo, best first.

    Attributes:
        boxes: ``(F, 4)`` float32 ``(x0, y0, x1, y1)`` on the photo (box coordinates, see the module).
        landmarks: ``(F, 5, 3)`` float32 pixel ``(x, y)`` and confidence (NaN, confidence 0 = missing).
        scores: ``(F,)`` float32 detection confidence (1 for a CSV row without one).
    """

    boxes: torch.Tensor
    landmarks: torch.Tensor
    scores: torch.Tensor

    def __post_init__(self) -> None:
        faces = self.boxes.shape[0] if self.boxes.dim() == 2 else -1
        if (
            self.boxes.shape != (faces, 4)
            or self.landmarks.shape != (faces, POINTS, 3)
            or self.scores.shape != (faces,)
        ):
            raise ValueError(
                "Detections need boxes (F, 4), landmarks (F, 5, 3) and scores (F,), got "
                f"{tuple(self.boxes.shape)}, {tuple(self.landmarks.shape)}, {tuple(self.scores.shape)}"
            )

    def __len__(self) -> int:
        return self.boxes.shape[0]

    @classmethod
    def empty(cls) -> Detections:
        """No face."""
        return cls(torch.zeros(0, 4), torch.zeros(0, POINTS, 3), torch.zeros(0))

    def pick(self, index: int) -> Detections:
        """The face ``index`` alone (``F == 1``)."""
        keep = slice(index, index + 1)
        return Detections(self.boxes[keep], self.landmarks[keep], self.scores[keep])


class FaceDetector(ABC):
    """A source of boxes and five landmarks for photos: a detector network or a table of annotations.

    Subclasses implement :meth:`detect`; ``name`` says which front-end produced a result.
    """

    name: str = "detector"

    @abstractmethod
    def detect(self, images: Sequence[torch.Tensor], keys: Sequence[str] | None = None) -> list[Detections]:
        """Faces on each photo.

        Args:
            images: photos as ``(3, H, W)`` uint8 RGB tensors (sizes may differ).
            keys: the photos' names (paths relative to the image folder); front-ends that look faces up
                by name (:class:`face.detect.CsvLandmarks`) require them, detector networks ignore them.

        Returns:
            One :class:`Detections` per photo (empty when no face was found), faces best first.
        """


def landmarks_inside(landmarks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(..., 5)`` bool: the landmark lies on the ``(H, W)`` photo, ``-0.5 <= x <= W - 0.5`` (same for y).

    NaN landmarks count as not inside.
    """
    height, width = size
    x, y = landmarks[..., 0], landmarks[..., 1]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def box_from_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """A square box for faces known only by their landmarks: ``(F, 5, 2|3)`` pixel landmarks -> ``(F, 4)``.

    The box is the photo region that a fit of the ArcFace template by **scale and shift only** (no
    rotation, least squares over the valid landmarks) maps onto the whole 112x112 template frame; a
    detection crop of it is the aligned crop without the rotation. Faces with fewer than two valid
    landmarks get a NaN box.
    """
    xy = landmarks[..., :2].to(torch.float64)
    valid = torch.isfinite(xy).all(-1)
    if landmarks.shape[-1] == 3:
        valid &= torch.nan_to_num(landmarks[..., 2].to(torch.float64), nan=0.0) > 0
    weights = valid.to(torch.float64)  # (F, 5)
    template = ARCFACE_TEMPLATE.to(torch.float64)  # (5, 2)
    count = weights.sum(1, keepdim=True).clamp_min(1)  # (F, 1)
    source = torch.where(valid[..., None], xy, torch.zeros_like(xy))
    mean_src = (weights[..., None] * source).sum(1) / count  # (F, 2)
    mean_dst = (weights[..., None] * template).sum(1) / count
    src_c, dst_c = source - mean_src[:, None], template - mean_dst[:, None]
    spread = (weights * src_c.square().sum(-1)).sum(1)  # (F,)
    scale = (weights * (src_c * dst_c).sum(-1)).sum(1) / spread.clamp_min(1e-12)  # template px per photo px
    # The template frame's edges (pixel indices -0.5 and size - 0.5) mapped back to the photo,
    # x = mean_src + (u - mean_dst) / scale, then + 0.5 into box coordinates.
    height, width = TEMPLATE_SIZE
    low = mean_src + (torch.tensor([-0.5, -0.5], dtype=torch.float64) - mean_dst) / scale[:, None] + 0.5
    high = mean_src + (torch.tensor([width - 0.5, height - 0.5], dtype=torch.float64) - mean_dst) / scale[:, None] + 0.5
    boxes = torch.cat([low, high], -1)
    bad = (valid.sum(1) < 2) | (spread <= 1e-12) | (scale <= 0)
    return torch.where(bad[:, None], torch.full_like(boxes, math.nan), boxes).float()
