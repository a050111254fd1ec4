"""Helpers of the gait data-tool tests (a uniquely named module: ``conftest`` names collide)."""

from __future__ import annotations

import numpy as np

from kprpe_gait.data.synth import SynthConfig

#: the tiny SynthGait set of the ``tiny_synth`` fixture
TINY = SynthConfig.preset("tiny", seed=7)


def dot_frame(
    height: int, width: int, body: tuple[int, int, int, int], dot: tuple[float, float], radius: float
) -> np.ndarray:
    """A raw silhouette: a filled rectangle ``body = (top, bottom, left, right)`` and a separate bright
    disk of ``radius`` centred at continuous pixel ``dot = (x, y)``."""
    img = np.zeros((height, width), np.uint8)
    top, bottom, left, right = body
    img[top:bottom, left:right] = 255
    yy, xx = np.mgrid[0:height, 0:width]
    img[(xx + 0.5 - dot[0]) ** 2 + (yy + 0.5 - dot[1]) ** 2 <= radius**2] = 255
    return img


def pose_at(points: dict[int, tuple[float, float]], conf: float = 0.9) -> np.ndarray:
    """``(17, 3)`` pose in the pixel-index convention with the given joints at continuous ``(x, y)``;
    the other joints are missing (confidence 0)."""
    pose = np.zeros((17, 3), np.float32)
    for j, (x, y) in points.items():
        pose[j] = (x - 0.5, y - 0.5, conf)
    return pose
