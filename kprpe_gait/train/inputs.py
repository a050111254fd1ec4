"""From stored sequences to network inputs: augment (training), side cut, scale to [0, 1], joints to [0, 1].

The same function serves training and feature extraction, so both see identical frames::

    sils01, joints01 = network_inputs(sils_uint8, joints_px, cut=10, augment=aug, rng=rng)
"""

from __future__ import annotations

import numpy as np
import torch

from kprpe_gait.transforms import JointAugment, cut_sides, normalize_joints

__all__ = ["network_inputs", "stack_batch"]


def network_inputs(
    sils: np.ndarray,
    joints: np.ndarray,
    cut: int = 0,
    augment: JointAugment | None = None,
    rng: np.random.Generator | None = None,
    divisor: float = 255.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One sequence -> ``(sils (T, H, W - 2 cut) float32 in [0, 1], joints (T, J, 3) in [0, 1])``.

    Args:
        sils: ``(T, H, W)`` stored silhouettes (uint8 0/255).
        joints: ``(T, J, 3)`` pixels of that frame, confidence.
        cut: columns removed from each side after augmentation (OpenGait's 64 -> 44 is ``cut=10``).
        augment: joint-aware augmentation drawn once for the sequence (training), or ``None``.
        rng: generator of the augmentation draw (``augment``'s own when ``None``).
        divisor: silhouette scale (255 for 0/255 silhouettes).
    """
    if sils.ndim != 3 or joints.ndim != 3 or sils.shape[0] != joints.shape[0]:
        raise ValueError(f"need sils (T, H, W) and joints (T, J, 3) with the same T, got {sils.shape}, {joints.shape}")
    if augment is not None:
        sils, joints = augment(sils, joints, rng=rng)
    sils, joints = cut_sides(sils, joints, cut=cut)
    out = np.asarray(sils, dtype=np.float32) / divisor
    return out, normalize_joints(joints, *out.shape[-2:])


def stack_batch(
    sequences: list[tuple[np.ndarray, np.ndarray]], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-length sequences -> ``sils (n, s, H, W)`` and ``joints (n, s, J, 3)`` float tensors."""
    sils = torch.from_numpy(np.stack([s for s, _ in sequences])).to(device)
    joints = torch.from_numpy(np.stack([j for _, j in sequences]).astype(np.float32)).to(device)
    return sils, joints
