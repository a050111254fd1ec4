"""One detected face on a photo -> the model's input: a crop plus its landmarks in ``[0, 1]`` of the crop.

Two crops, as in the paper's aligned / unaligned settings:

* aligned (:func:`face.align.align_faces`): the similarity that puts the landmarks on the ArcFace template;
* detection crop (:func:`face.data.crop.box_crop_matrix`): the detector's box resized to the crop, no
  rotation -- the landmarks move along and tell KP-RPE where the face parts are.

Landmark handling (documented behaviour, not errors):

* NaN landmarks, or confidence 0, are missing: left out of the alignment fit and given to the model as
  missing (it ignores them).
* A landmark outside the photo (beyond its pixel extent ``[-0.5, W - 0.5]`` x ``[-0.5, H - 0.5]``) cannot
  have been seen on it: it is treated as missing, and counted in :attr:`FaceInput.dropped`.
* After cropping, a landmark farther than one crop size outside the crop (outside ``[-1, 2]`` normalised,
  where the model rejects coordinates as wrong) is treated as missing and counted too.
* Alignment needs two landmarks left; a detection crop needs a box with an area. Otherwise
  :func:`prepare_face` raises ``ValueError`` with the reason, and the photo is skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from face.align import align_faces
from face.data.crop import box_crop_matrix, warp_faces
from face.detect.base import Detections, landmarks_inside

__all__ = ["CROP_SLACK", "FaceInput", "prepare_face"]

#: Normalised landmarks outside ``[-CROP_SLACK, 1 + CROP_SLACK]`` of the crop count as missing.
CROP_SLACK = 1.0


@dataclass
class FaceInput:
    """A face ready for the model.

    Attributes:
        image: ``(3, H, W)`` float32 RGB in ``[-1, 1]`` (``(x / 255 - 0.5) / 0.5``).
        keypoints: ``(5, 3)`` float32 ``(x, y)`` in ``[0, 1]`` of ``image`` and confidence (NaN, 0 = missing).
        matrix: ``(2, 3)`` float64 map from photo pixel indices to crop pixel indices.
        dropped: landmarks that were given but treated as missing (outside the photo or far off the crop).
    """

    image: torch.Tensor
    keypoints: torch.Tensor
    matrix: torch.Tensor
    dropped: int


def _missing(points: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    nan = torch.full_like(points[..., :2], math.nan)
    xy = torch.where(drop[..., None], nan, points[..., :2])
    return torch.cat([xy, torch.where(drop, torch.zeros_like(points[..., 2]), points[..., 2])[..., None]], -1)


def _valid(points: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(points[..., :2]).all(-1) & (torch.nan_to_num(points[..., 2], nan=0.0) > 0)


def prepare_face(
    photo: torch.Tensor, face: Detections, align: bool = True, size: tuple[int, int] = (112, 112)
) -> FaceInput:
    """Crop one face (``len(face) == 1``) off a ``(3, H, W)`` uint8 photo for the model.

    Args:
        photo: ``(3, H, W)`` uint8 RGB.
        face: its detection: box, ``(1, 5, 3)`` pixel landmarks, score.
        align: aligned crop (``True``) or detection crop (``False``).
        size: ``(H, W)`` of the crop (the model's input size).

    Raises:
        ValueError: the face cannot be cropped (the message is the reason: too few landmarks on the photo,
            no usable box).
    """
    if len(face) != 1:
        raise ValueError(f"prepare_face takes one face, got {len(face)}")
    if photo.dim() != 3 or photo.shape[0] != 3 or photo.dtype != torch.uint8:
        raise ValueError(f"photo must be a (3, H, W) uint8 RGB tensor, got {tuple(photo.shape)} {photo.dtype}")
    points = face.landmarks.to(torch.float64)  # (1, 5, 3)
    given = _valid(points)
    off_photo = given & ~landmarks_inside(points, tuple(photo.shape[1:]))
    points = _missing(points, off_photo)
    source = photo[None].float()
    if align:
        if int(_valid(points).sum()) < 2:
            raise ValueError(
                f"fewer than two landmarks on the photo to align with ({int(given.sum())} given, "
                f"{int(off_photo.sum())} outside the {photo.shape[2]}x{photo.shape[1]} photo)"
            )
        aligned = align_faces(source, points, size)
        crop, keypoints, matrix = aligned.images, aligned.keypoints, aligned.matrices.to(torch.float64)
    else:
        box = face.boxes.to(torch.float64)
        if not torch.isfinite(box).all() or box[0, 2] <= box[0, 0] or box[0, 3] <= box[0, 1]:
            raise ValueError(f"no usable box for a detection crop ({box[0].tolist()})")
        matrix = box_crop_matrix(box, size)
        crop, keypoints = warp_faces(source, points, matrix, size)
    keypoints = keypoints.to(torch.float64)
    far = _valid(keypoints) & ((keypoints[..., :2] < -CROP_SLACK) | (keypoints[..., :2] > 1 + CROP_SLACK)).any(-1)
    keypoints = _missing(keypoints, far)
    image = (crop[0] / 255 - 0.5) / 0.5
    dropped = int(off_photo.sum() + far.sum())
    return FaceInput(image.float(), keypoints[0].float(), matrix[0], dropped)
