"""Misalignment of pretreated sequences: the same affine warp on silhouettes and joints.

A detector and pretreatment that are off leave the person scaled, shifted, rotated or partly cut in the
64x64 frame. :func:`sample_misalignment` draws, per sequence, one random similarity (scale, rotation
about the frame centre, translation) plus a per-frame jitter of each, and per frame, with probability
``crop_prob``, a crop error: the detection box misses up to ``crop_max`` of the height at the top or
the bottom and OpenGait's height normalisation stretches the rest back to 64 rows (an isotropic zoom
about the opposite edge). :func:`warp_sequence` applies the matrices: silhouettes by inverse mapping
with bilinear sampling (zeros outside), joints by the forward map; confidences are unchanged.

Default ranges (:class:`MisalignConfig`): scale x[1/1.15, 1.15], rotation +-8 deg, translation +-4 px
per sequence; per-frame jitter scale x[1/1.03, 1.03], rotation +-2 deg, translation +-1.5 px; crop
errors in 15 % of frames, cutting up to 15 % of the height.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .formats import SIL_SIZE


@dataclass(frozen=True)
class MisalignConfig:
    """Ranges of the misalignment (all uniform; scales are log-uniform in ``[1/(1+x), 1+x]``)."""

    scale: float = 0.15
    rotate: float = 8.0  # degrees
    shift: float = 4.0  # pixels of the 64x64 frame
    jitter_scale: float = 0.03
    jitter_rotate: float = 2.0
    jitter_shift: float = 1.5
    crop_prob: float = 0.15
    crop_max: float = 0.15

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"misalignment {name} must be a finite number >= 0, got {value}")
        if self.crop_prob > 1 or self.crop_max >= 1:
            raise ValueError(f"crop_prob must be <= 1 and crop_max < 1, got {self.crop_prob}, {self.crop_max}")


def similarity(scale: float, angle_deg: float, shift: tuple[float, float], center: tuple[float, float]) -> np.ndarray:
    """``(3, 3)`` matrix of ``p -> center + scale * R(angle) (p - center) + shift`` (angle clockwise on screen)."""
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    cx, cy = center
    return np.array(
        [[c, -s, cx - c * cx + s * cy + shift[0]], [s, c, cy - s * cx - c * cy + shift[1]], [0.0, 0.0, 1.0]]
    )


def _log_uniform(rng: np.random.Generator, spread: float, n: int | None = None) -> np.ndarray | float:
    return np.exp(rng.uniform(-np.log1p(spread), np.log1p(spread), n))


def sample_misalignment(
    rng: np.random.Generator, num_frames: int, cfg: MisalignConfig, size: int = SIL_SIZE
) -> np.ndarray:
    """Per-frame ``(T, 3, 3)`` matrices acting on ``(x, y, 1)`` in the ``size x size`` frame."""
    center = (size / 2, size / 2)
    base = similarity(
        float(_log_uniform(rng, cfg.scale)),
        rng.uniform(-cfg.rotate, cfg.rotate),
        tuple(rng.uniform(-cfg.shift, cfg.shift, 2)),
        center,
    )
    scales = _log_uniform(rng, cfg.jitter_scale, num_frames)
    angles = rng.uniform(-cfg.jitter_rotate, cfg.jitter_rotate, num_frames)
    shifts = rng.uniform(-cfg.jitter_shift, cfg.jitter_shift, (num_frames, 2))
    crop = rng.random(num_frames) < cfg.crop_prob
    cut = rng.uniform(0.0, cfg.crop_max, num_frames)
    bottom = rng.random(num_frames) < 0.5
    out = np.empty((num_frames, 3, 3))
    for t in range(num_frames):
        m = similarity(scales[t], angles[t], tuple(shifts[t]), center) @ base
        if crop[t]:
            # the box lost ``cut`` of the height at one edge; re-normalising to 64 rows zooms about the other
            anchor = (size / 2, 0.0) if bottom[t] else (size / 2, float(size))
            m = similarity(1.0 / (1.0 - cut[t]), 0.0, (0.0, 0.0), anchor) @ m
        out[t] = m
    return out


def warp_silhouettes(sils: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Warp ``(T, H, W)`` uint8 frames by ``(T, 3, 3)`` forward matrices (bilinear, zeros outside)."""
    t, h, w = sils.shape
    inv = np.linalg.inv(matrices)  # (T, 3, 3)
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    dst = np.stack([xs, ys, np.ones_like(xs)], axis=-1).reshape(-1, 3)  # (HW, 3) pixel centres
    src = np.einsum("tij,nj->tni", inv, dst)[..., :2] - 0.5  # (T, HW, 2) in pixel-index units
    x0, y0 = np.floor(src[..., 0]).astype(np.int64), np.floor(src[..., 1]).astype(np.int64)
    fx, fy = src[..., 0] - x0, src[..., 1] - y0
    img = sils.astype(np.float64).reshape(t, -1)
    out = np.zeros((t, h * w))
    frame = np.arange(t)[:, None]
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = np.where(valid, yi * w + xi, 0)
        out += np.where(valid, img[frame, idx], 0.0) * weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(t, h, w)


def warp_joints(joints: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Move ``(T, J, 3)`` joints by the forward matrices; confidence-0 joints stay at ``(0, 0)``."""
    xy1 = np.concatenate([joints[..., :2].astype(np.float64), np.ones(joints.shape[:2] + (1,))], axis=-1)
    moved = np.einsum("tij,tkj->tki", matrices, xy1)[..., :2]
    out = joints.astype(np.float32).copy()
    out[..., :2] = moved
    out[joints[..., 2] <= 0, :2] = 0.0
    return out


def misalign_sequence(
    sils: np.ndarray, joints: np.ndarray, rng: np.random.Generator, cfg: MisalignConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Misalign one sequence: ``(T, 64, 64)`` uint8 and ``(T, 17, 3)`` float32 in, the same out."""
    if len(sils) != len(joints):
        raise ValueError(f"{len(sils)} silhouette frames but {len(joints)} joint frames")
    matrices = sample_misalignment(rng, len(sils), cfg, sils.shape[-1])
    return warp_silhouettes(sils, matrices), warp_joints(joints, matrices)
