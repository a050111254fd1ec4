"""Five-point face alignment to the 112x112 ArcFace template, and misalignment simulation.

Conventions:

* Landmarks are ``(B, 5, 2|3)``: left eye, right eye, nose tip, left and right mouth corners (the order of
  MTCNN / RetinaFace / insightface), as ``(x, y)`` **pixel indices** of the image they were detected on
  (OpenCV's convention: the centre of pixel ``(r, c)`` is ``(c, r)``), plus an optional confidence.
* A similarity transform is a ``(B, 2, 3)`` matrix mapping source pixel indices to aligned pixel indices,
  as ``cv2.warpAffine`` (and insightface's ``norm_crop``) use it; images are warped with kornia under the
  same convention (``align_corners=True``), so crops match insightface's up to interpolation.
* What the network sees: keypoints normalised to ``[0, 1]`` of the aligned image, ``((x + 0.5) / W,
  (y + 0.5) / H)`` -- the continuous convention of :func:`kprpe.core.patch_centers`.
* A landmark that is NaN/inf or has confidence ``<= min_confidence`` is left out of the fit (weight 0)
  and comes out as NaN with confidence 0, which :class:`kprpe.core.KeypointRPE` ignores. A face needs at
  least two valid landmarks; fewer raise a ``ValueError`` naming the sample.

Misalignment (the paper's robustness setting) is simulated by composing a random similarity about the
image centre with the alignment: the crop is rotated/scaled/shifted and the landmarks move with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from kornia.geometry.transform import warp_affine

__all__ = [
    "ARCFACE_TEMPLATE",
    "AlignedFaces",
    "align_faces",
    "estimate_similarity",
    "normalise_landmarks",
    "random_similarity",
    "transform_points",
]

#: The 5-point ArcFace template in pixel indices of a 112x112 crop (insightface's ``arcface_dst``).
ARCFACE_TEMPLATE = torch.tensor(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
TEMPLATE_SIZE = (112, 112)  # (H, W) the template is defined for


@dataclass
class AlignedFaces:
    """Output of :func:`align_faces`.

    Attributes:
        images: ``(B, C, H, W)`` aligned crops.
        keypoints: ``(B, 5, 3)``: ``(x, y)`` in ``[0, 1]`` of the crop and a confidence (0 = missing, then
            ``x, y`` are NaN); feed it to ``KeypointRPE``.
        matrices: ``(B, 2, 3)`` source pixel -> crop pixel maps actually applied.
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    matrices: torch.Tensor


def _valid_weights(landmarks: torch.Tensor, min_confidence: float) -> torch.Tensor:
    """``(B, P)`` float weights: 1 where a landmark is finite and confident enough."""
    valid = torch.isfinite(landmarks[..., :2]).all(-1)
    if landmarks.shape[-1] == 3:
        valid &= torch.nan_to_num(landmarks[..., 2], nan=-math.inf) > min_confidence
    return valid.to(torch.float64)


def _check_landmarks(landmarks: torch.Tensor, name: str, points: int | None = None) -> None:
    if landmarks.dim() != 3 or landmarks.shape[-1] not in (2, 3):
        raise ValueError(f"{name} must be (B, P, 2|3), got shape {tuple(landmarks.shape)}")
    if points is not None and landmarks.shape[1] != points:
        raise ValueError(f"{name} has {landmarks.shape[1]} points per face, the template has {points}")


def estimate_similarity(src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``src`` to ``dst``.

    The closed form of Umeyama's method in 2D: with centred points ``s``, ``d`` and weights ``w``,
    ``a = sum w (s . d) / sum w |s|^2`` and ``b = sum w (s x d) / sum w |s|^2`` give
    ``M = [[a, -b, tx], [b, a, ty]]``.

    Args:
        src: ``(B, P, 2)`` points.
        dst: ``(B, P, 2)`` or ``(P, 2)`` target points.
        weights: ``(B, P)`` non-negative point weights (0 = ignore the point); all ones by default.

    Returns:
        ``(B, 2, 3)`` matrices in ``src``'s dtype.

    Raises:
        ValueError: on shape mismatches or a sample with fewer than two weighted, distinct points.
    """
    _check_landmarks(src, "src")
    if dst.dim() == 2:
        dst = dst.expand(src.shape[0], *dst.shape)
    if dst.shape[:2] != src.shape[:2]:
        raise ValueError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} must hold the same points")
    s = src[..., :2].to(torch.float64)
    d = dst[..., :2].to(device=src.device, dtype=torch.float64)
    w = torch.ones(s.shape[:2], dtype=torch.float64, device=s.device) if weights is None else weights.to(s)
    if w.shape != s.shape[:2]:
        raise ValueError(f"weights {tuple(w.shape)} must be (B, P) = {tuple(s.shape[:2])}")
    w = w * torch.isfinite(s).all(-1) * torch.isfinite(d).all(-1)
    s = torch.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)
    d = torch.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
    total = w.sum(1, keepdim=True)  # (B, 1)
    mean_s = (w[..., None] * s).sum(1) / total.clamp_min(1e-12)  # (B, 2)
    mean_d = (w[..., None] * d).sum(1) / total.clamp_min(1e-12)
    sc, dc = s - mean_s[:, None], d - mean_d[:, None]
    spread = (w * sc.square().sum(-1)).sum(1)  # (B,)
    bad = ((w > 0).sum(1) < 2) | (spread <= 1e-12)
    if bad.any():
        raise ValueError(
            f"cannot fit a similarity for sample(s) {bad.nonzero().flatten().tolist()}: fewer than two valid, "
            "distinct landmarks"
        )
    a = (w * (sc * dc).sum(-1)).sum(1) / spread
    b = (w * (sc[..., 0] * dc[..., 1] - sc[..., 1] * dc[..., 0])).sum(1) / spread
    linear = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)  # (B, 2, 2)
    shift = mean_d - (linear @ mean_s[..., None])[..., 0]
    return torch.cat([linear, shift[..., None]], -1).to(src.dtype if src.is_floating_point() else torch.float32)


def transform_points(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply ``(B, 2, 3)`` affine maps to ``(B, P, 2|3)`` points; a confidence column is carried unchanged."""
    xy = points[..., :2] @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]
    return torch.cat([xy, points[..., 2:]], -1)


def normalise_landmarks(points: torch.Tensor, size: tuple[int, int], min_confidence: float = 0.0) -> torch.Tensor:
    """Pixel-index landmarks ``(B, P, 2|3)`` of an ``(H, W)`` image -> ``(B, P, 3)`` keypoints in ``[0, 1]``.

    Missing landmarks (NaN or confidence ``<= min_confidence``) become ``(nan, nan, 0)``.
    """
    height, width = size
    valid = _valid_weights(points, min_confidence) > 0
    xy = (points[..., :2] + 0.5) / points.new_tensor([width, height])
    conf = points[..., 2] if points.shape[-1] == 3 else torch.ones_like(points[..., 0])
    xy = torch.where(valid[..., None], xy, torch.full_like(xy, math.nan))
    return torch.cat([xy, torch.where(valid, conf, torch.zeros_like(conf))[..., None]], -1)


def random_similarity(
    batch: int,
    size: tuple[int, int] = TEMPLATE_SIZE,
    max_rotation: float = 15.0,
    scale: tuple[float, float] = (0.9, 1.1),
    max_shift: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random similarities about the centre of an ``(H, W)`` image: the misalignment of the paper.

    Args:
        batch: how many.
        size: ``(H, W)`` of the image they act on.
        max_rotation: rotation drawn uniformly in ``[-max_rotation, max_rotation]`` degrees.
        scale: uniform scale range.
        max_shift: translation drawn uniformly in ``[-max_shift, max_shift]`` of the width / height.
        generator: for reproducible draws.

    Returns:
        ``(B, 2, 3)`` crop-pixel -> crop-pixel maps (float32).
    """
    height, width = size
    u = torch.rand(batch, 4, generator=generator, dtype=torch.float64)
    angle = torch.deg2rad((2 * u[:, 0] - 1) * max_rotation)
    factor = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    shift = (2 * u[:, 2:] - 1) * max_shift * torch.tensor([width, height], dtype=torch.float64)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    cos, sin = factor * torch.cos(angle), factor * torch.sin(angle)
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    offset = centre + shift - (linear @ centre)
    return torch.cat([linear, offset[..., None]], -1).float()


def _compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """``outer o inner`` for ``(B, 2, 3)`` affine maps."""
    linear = outer[:, :, :2] @ inner[:, :, :2]
    shift = (outer[:, :, :2] @ inner[:, :, 2:]) + outer[:, :, 2:]
    return torch.cat([linear, shift], -1)


def align_faces(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    size: tuple[int, int] = TEMPLATE_SIZE,
    template: torch.Tensor | None = None,
    misalignment: torch.Tensor | None = None,
    min_confidence: float = 0.0,
    mode: str = "bilinear",
) -> AlignedFaces:
    """Warp faces so their landmarks match the template; optionally misalign them on purpose.

    Args:
        images: ``(B, C, H, W)`` float images (any range).
        landmarks: ``(B, 5, 2|3)`` pixel-index landmarks on ``images`` (see the module conventions).
        size: ``(H, W)`` of the crops; the ArcFace template (defined for 112x112) is scaled to it.
        template: ``(5, 2)`` pixel-index template for ``size``; the scaled ArcFace template by default.
        misalignment: ``(B, 2, 3)`` crop -> crop maps applied after alignment (see :func:`random_similarity`).
        min_confidence: landmarks with confidence ``<=`` this are left out of the fit.
        mode: interpolation, ``"bilinear"`` or ``"nearest"``.

    Returns:
        :class:`AlignedFaces` with crops, normalised keypoints and the applied matrices.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if template is None:
        template = ARCFACE_TEMPLATE * torch.tensor([size[1] / TEMPLATE_SIZE[1], size[0] / TEMPLATE_SIZE[0]])
    _check_landmarks(landmarks, "landmarks", points=template.shape[0])
    if landmarks.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but landmarks for {landmarks.shape[0]}")
    weights = _valid_weights(landmarks, min_confidence)
    matrices = estimate_similarity(landmarks[..., :2].to(torch.float64), template.to(torch.float64), weights)
    if misalignment is not None:
        if misalignment.shape != (images.shape[0], 2, 3):
            raise ValueError(
                f"misalignment must be (B, 2, 3) = ({images.shape[0]}, 2, 3), got {tuple(misalignment.shape)}"
            )
        matrices = _compose(misalignment.to(matrices), matrices)
    crops = warp_affine(
        images, matrices.to(images.dtype), dsize=size, mode=mode, padding_mode="zeros", align_corners=True
    )
    moved = transform_points(landmarks.to(torch.float64), matrices)
    keypoints = normalise_landmarks(moved, size, min_confidence).to(images.dtype)
    return AlignedFaces(images=crops, keypoints=keypoints, matrices=matrices.to(images.dtype))
