"""One stored sequence -> the network's inputs: the one pipeline both trainers use.

Per sequence, in this order (training draws the augmentation, evaluation passes ``augment=None``)::

    check      silhouettes (T, H, W); joints (T, J, 3) with the same T; no NaN/inf confidence; no
               confident joint with NaN/inf coordinates (the error names the sequence)
    augment    one JointAugment draw moves silhouettes and joints alike (flips swap left/right joints)
    cut        ``cut`` columns off each side (OpenGait's 64 -> 44 is 10; ``None``: ``W // 64 * 10``)
    scale      silhouettes / 255 -> [0, 1] float32
    normalise  joints to [0, 1] of the cut frame; missing joints (confidence <= 0) zeroed, so a stored
               NaN for a missing joint never reaches the network

The compact trainer and feature extraction call :func:`network_inputs` directly; OpenGait's path calls it
through :class:`kprpe_gait.opengait.transforms.SilJointTransform`.
"""

from __future__ import annotations

import numpy as np

from kprpe_gait.transforms import JointAugment, cut_sides, normalize_joints, warp_sequence

__all__ = ["check_sequence", "network_inputs", "zero_missing_joints"]


def check_sequence(sils: np.ndarray, joints: np.ndarray | None, name: str = "sequence") -> None:
    """Raise ``ValueError`` naming ``name`` when a stored sequence cannot be fed to the network.

    Args:
        sils: ``(T, H, W)`` silhouettes.
        joints: ``(T, J, 3)`` ``(x, y, confidence)`` in pixels, or ``None``. A missing joint has
            confidence 0 (its coordinates may be NaN).
    """
    if sils.ndim != 3:
        raise ValueError(f"{name}: silhouettes must be (T, H, W), got shape {sils.shape}")
    if joints is None:
        return
    if joints.ndim != 3 or joints.shape[-1] != 3:
        raise ValueError(f"{name}: joints must be (T, J, 3) as (x, y, confidence), got shape {joints.shape}")
    if len(joints) != len(sils):
        raise ValueError(f"{name}: frame counts differ: {len(sils)} silhouettes vs {len(joints)} joint frames")
    conf = joints[..., 2]
    if not np.isfinite(conf).all():
        raise ValueError(f"{name}: joint confidences contain NaN/inf (use 0 for a missing joint)")
    bad = (conf > 0) & ~np.isfinite(joints[..., :2]).all(-1)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: {int(bad.sum())} joints have confidence > 0 but NaN/inf coordinates "
            f"(first: frame {t}, joint {j}); set their confidence to 0 to mark them missing"
        )


def zero_missing_joints(joints: np.ndarray) -> np.ndarray:
    """A float32 copy with missing joints (confidence <= 0) set to ``(0, 0, 0)``."""
    joints = np.array(joints, dtype=np.float32, copy=True)
    missing = joints[..., 2] <= 0
    joints[missing] = 0.0
    return joints


def network_inputs(
    sils: np.ndarray,
    joints: np.ndarray | None,
    cut: int | None = 10,
    augment: JointAugment | None = None,
    rng: np.random.Generator | None = None,
    name: str = "sequence",
    divisor: float = 255.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One sequence -> ``(sils (T, H, W - 2 cut) float32 in [0, 1], joints (T, J, 3) float32 in [0, 1] | None)``.

    Args:
        sils: ``(T, H, W)`` stored silhouettes (uint8 0/255).
        joints: ``(T, J, 3)`` pixels of that frame and confidence, or ``None`` (silhouettes only).
        cut: columns removed from each side after augmentation; ``None``: OpenGait's ``W // 64 * 10``.
        augment: the augmentation drawn once for the sequence (training), or ``None``.
        rng: generator of the draw (``augment``'s own when ``None``).
        name: the sequence, for error messages.
        divisor: silhouette scale (255 for 0/255 silhouettes).
    """
    sils = np.asarray(sils)
    joints = None if joints is None else np.asarray(joints)
    check_sequence(sils, joints, name)
    if augment is not None:
        params = augment.sample(*sils.shape[1:], rng=rng)
        if joints is not None:
            sils, joints = augment.apply(sils, joints, params)
        elif not params.is_identity:
            sils = warp_sequence(sils, params.matrix)
    sils, joints = cut_sides(sils, joints, cut=cut)
    out = np.ascontiguousarray(sils, dtype=np.float32) / np.float32(divisor)
    if joints is None:
        return out, None
    return out, zero_missing_joints(normalize_joints(joints, *out.shape[-2:]))
