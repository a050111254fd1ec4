"""Crops of raw photos by a 2x3 affine map: the detection crop (box resized), and warping with landmarks.

Conventions of :mod:`face.align`: matrices map source pixel indices to crop pixel indices (``cv2.warpAffine``);
boxes are ``x0, y0, x1, y1`` in continuous coordinates where pixel ``p`` spans ``[p, p + 1)``.
"""

from __future__ import annotations

import torch
from kornia.geometry.transform import warp_affine

from face.align import normalise_landmarks, transform_points

__all__ = ["box_crop_matrix", "warp_faces"]


def box_crop_matrix(boxes: torch.Tensor, size: tuple[int, int] = (112, 112)) -> torch.Tensor:
    """``(B, 4)`` boxes -> ``(B, 2, 3)`` maps that resize each box to an ``(H, W)`` crop (no rotation).

    The box's edges land on the crop's edges: raw pixel index ``p`` -> ``(p + 0.5 - x0) * W / (x1 - x0) - 0.5``.
    A box need not be square (the crop is then stretched, as "resize the detection to 112x112" does).
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (B, 4) = x0, y0, x1, y1, got shape {tuple(boxes.shape)}")
    boxes = boxes.to(torch.float64)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if (width <= 0).any() or (height <= 0).any():
        bad = ((width <= 0) | (height <= 0)).nonzero().flatten().tolist()
        raise ValueError(f"boxes {bad[:5]} have no area (need x1 > x0 and y1 > y0)")
    sx, sy = size[1] / width, size[0] / height
    zero = torch.zeros_like(sx)
    rows = [
        torch.stack([sx, zero, (0.5 - boxes[:, 0]) * sx - 0.5], -1),
        torch.stack([zero, sy, (0.5 - boxes[:, 1]) * sy - 0.5], -1),
    ]
    return torch.stack(rows, 1)


def warp_faces(
    images: torch.Tensor, landmarks: torch.Tensor, matrices: torch.Tensor, size: tuple[int, int] = (112, 112)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp ``(B, C, H, W)`` images by ``(B, 2, 3)`` maps to ``size``; move the landmarks along.

    Returns:
        ``(crops (B, C, *size) in the images' float dtype, keypoints (B, 5, 3) in [0, 1] of the crop)``;
        a uint8 input comes back rounded to uint8.
    """
    source = images.float() if not images.is_floating_point() else images
    crops = warp_affine(
        source, matrices.to(source.dtype), dsize=size, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    if images.dtype == torch.uint8:
        crops = crops.round().clamp(0, 255).to(torch.uint8)
    moved = transform_points(landmarks.to(torch.float64), matrices.to(torch.float64))
    return crops, normalise_landmarks(moved, size).to(torch.float32)
