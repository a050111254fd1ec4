"""``SilJointTransform``: the OpenGait ``transform`` entry of SwinGait-2D (silhouettes + joints together).

OpenGait builds transforms from config entries (``- type: SilJointTransform`` plus keyword options)
and applies one per modality, independently. The plugin's models instead call this transform once
per sequence with both modalities (see :mod:`kprpe_gait.opengait.inputs`), so that one random draw
moves silhouettes and joints alike. Per sequence it runs the project's one input pipeline, :func:`kprpe_gait.inputs.network_inputs` (the
compact trainer's too): checks, one draw of :class:`kprpe_gait.transforms.JointAugment` on the stored
frame (perspective as OpenGait's ``RandomPerspective``, affine, horizontal flip with left/right joints
swapped, rotation), OpenGait's side cut (``cutting`` columns per side; default ``W // 64 * 10``: 64 -> 44)
applied to the joints as well, silhouettes / 255, joints normalised to ``[0, 1]`` of the cut frame and
missing joints zeroed.

With every probability at 0 (the defaults) it is the evaluation transform: cut and normalise only.
Random draws come from a generator seeded from ``numpy.random`` when the transform is built, which
OpenGait's ``main.py`` has seeded with the process rank: runs are repeatable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kprpe_gait.inputs import network_inputs
from kprpe_gait.transforms import JointAugment

from .config import check_keys, constructor_keys

__all__ = ["SilJointTransform", "check_transform_cfg"]


class SilJointTransform:
    """Joint-aware augmentation, side cut and normalisation of one silhouette sequence and its joints.

    Args:
        cutting: columns cut from each side after augmentation; ``None``: OpenGait's ``W // 64 * 10``.
        perspective_prob, affine_prob, flip_prob, rotate_prob: probability of each random transform.
        rotate_degree: rotation bound in degrees.
        seed: seed of the random draws; ``None`` draws one from ``numpy.random`` (seeded by OpenGait).

    Call:
        ``(sils (T, H, W) 0/255, joints (T, J, 3) pixels | None)`` ->
        ``(sils (T, H, W - 2 * cutting) float32 in [0, 1], joints (T, J, 3) float32, x, y in [0, 1] | None)``
    """

    def __init__(
        self,
        cutting: int | None = None,
        perspective_prob: float = 0.0,
        affine_prob: float = 0.0,
        flip_prob: float = 0.0,
        rotate_prob: float = 0.0,
        rotate_degree: float = 10.0,
        seed: int | None = None,
    ) -> None:
        if cutting is not None and (not isinstance(cutting, int) or cutting < 0):
            raise ValueError(f"cutting must be a non-negative int or null, got {cutting!r}")
        self.cutting = cutting
        self.augment = JointAugment(
            perspective_prob=perspective_prob,
            affine_prob=affine_prob,
            flip_prob=flip_prob,
            rotate_prob=rotate_prob,
            rotate_degree=rotate_degree,
        )
        self.rng = np.random.default_rng(np.random.randint(0, 2**31 - 1) if seed is None else seed)

    def __call__(self, sils: np.ndarray, joints: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        return network_inputs(sils, joints, self.cutting, self.augment, self.rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cutting={self.cutting}, augment={self.augment!r})"


def check_transform_cfg(section: str, trf_cfg: Any) -> dict[str, Any]:
    """Check a ``transform`` config section of SwinGait-2D: exactly one ``SilJointTransform`` entry.

    Returns:
        the entry's options (without ``type``).

    Raises:
        ValueError: another shape or type (OpenGait's per-modality transforms would augment the
            silhouettes and joints independently), or unknown option keys.
    """
    entries = trf_cfg if isinstance(trf_cfg, list) else [trf_cfg]
    if len(entries) != 1 or not isinstance(entries[0], dict) or entries[0].get("type") != SilJointTransform.__name__:
        raise ValueError(
            f"{section}: SwinGait-2D transforms silhouettes and joints together, so this section must be "
            f"exactly one entry '- type: {SilJointTransform.__name__}' (with its options), got {trf_cfg!r}"
        )
    options = check_keys(section, entries[0], constructor_keys(SilJointTransform) | {"type"})
    options.pop("type")
    return options
