"""The paper's Fig. 5 path: from the detection crop (``t = 0``) to the aligned crop (``t = 1``).

For each raw photo, ``M0`` maps it to the detection crop (its detector box resized to 112x112) and ``M1`` to
the ArcFace-aligned crop (the least-squares similarity of its five landmarks to the template). Both are 2x3
affine maps from photo pixels to crop pixels; the path warps the photo by the entry-wise interpolation
``M(t) = (1 - t) M0 + t M1`` and moves the landmarks with it, so at every ``t`` the model sees a crop and the
exact landmarks on it. ``t = 0`` is the unaligned setting of the paper's Table 1, ``t = 1`` the aligned one.

Interpolating the photo -> crop maps is the same as interpolating, in crop space, from the identity to the
detection-crop -> aligned-crop map ``A = M1 M0^-1`` and applying it after ``M0``:
``((1 - t) I + t A) M0 = (1 - t) M0 + t M1`` (composition is linear in the left factor).
"""

from __future__ import annotations

import numpy as np
import torch

from face.align import ARCFACE_TEMPLATE, TEMPLATE_SIZE, estimate_similarity
from face.data.crop import box_crop_matrix, warp_faces

__all__ = ["alignment_matrix", "interpolate_affine", "path_crops"]


def interpolate_affine(m0: torch.Tensor, m1: torch.Tensor, t: float) -> torch.Tensor:
    """Entry-wise ``(1 - t) * m0 + t * m1`` of ``(..., 2, 3)`` affine maps (``t`` in ``[0, 1]``)."""
    if m0.shape != m1.shape or m0.shape[-2:] != (2, 3):
        raise ValueError(f"expected two (..., 2, 3) matrices of one shape, got {tuple(m0.shape)} and {tuple(m1.shape)}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    return (1 - t) * m0 + t * m1


def alignment_matrix(landmarks: torch.Tensor, size: tuple[int, int] = TEMPLATE_SIZE) -> torch.Tensor:
    """``(B, 5, 2|3)`` pixel landmarks -> ``(B, 2, 3)`` maps onto the ArcFace template scaled to ``(H, W)``.

    Landmarks that are NaN or have confidence 0 are left out of the fit (as :func:`face.align.align_faces`).
    """
    template = ARCFACE_TEMPLATE.double() * torch.tensor(
        [size[1] / TEMPLATE_SIZE[1], size[0] / TEMPLATE_SIZE[0]], dtype=torch.float64
    )
    points = landmarks.double()
    weights = torch.isfinite(points[..., :2]).all(-1).double()
    if points.shape[-1] == 3:
        weights = weights * (torch.nan_to_num(points[..., 2]) > 0)
    return estimate_similarity(points[..., :2], template, weights)


def path_crops(
    images: list[torch.Tensor],
    landmarks: torch.Tensor | np.ndarray,
    boxes: torch.Tensor | np.ndarray,
    t: float,
    size: tuple[int, int] = TEMPLATE_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of raw photos at path position ``t``.

    Args:
        images: ``(3, H_i, W_i)`` uint8 photos (sizes may differ; photos of one size are warped together).
        landmarks: ``(B, 5, 3)`` pixel landmarks on the photos.
        boxes: ``(B, 4)`` detector boxes ``x0, y0, x1, y1`` on the photos.
        t: path position, 0 = detection crop, 1 = aligned crop.

    Returns:
        ``(crops (B, 3, *size) uint8, keypoints (B, 5, 3) in [0, 1] of the crops)``.
    """
    landmarks = torch.as_tensor(landmarks, dtype=torch.float64)
    boxes = torch.as_tensor(boxes, dtype=torch.float64)
    if not (len(images) == len(landmarks) == len(boxes)):
        raise ValueError(f"{len(images)} photos, {len(landmarks)} landmark sets and {len(boxes)} boxes must match")
    matrices = interpolate_affine(box_crop_matrix(boxes, size), alignment_matrix(landmarks, size), t)
    crops = torch.empty(len(images), 3, *size, dtype=torch.uint8)
    keypoints = torch.empty(len(images), 5, 3)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(index)
    for indices in by_shape.values():
        batch = torch.stack([images[i] for i in indices])
        crops[indices], keypoints[indices] = warp_faces(batch, landmarks[indices], matrices[indices], size)
    return crops, keypoints
