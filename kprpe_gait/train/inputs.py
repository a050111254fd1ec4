"""Batches for the compact trainer; the per-sequence pipeline is :func:`kprpe_gait.inputs.network_inputs`,
shared with OpenGait's path, so training, feature extraction and OpenGait see identical frames::

    sils01, joints01 = network_inputs(sils_uint8, joints_px, cut=10, augment=aug, rng=rng)
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["stack_batch"]


def stack_batch(
    sequences: list[tuple[np.ndarray, np.ndarray]], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-length sequences -> ``sils (n, s, H, W)`` and ``joints (n, s, J, 3)`` float tensors."""
    sils = torch.from_numpy(np.stack([s for s, _ in sequences])).to(device)
    joints = torch.from_numpy(np.stack([j for _, j in sequences]).astype(np.float32)).to(device)
    return sils, joints
