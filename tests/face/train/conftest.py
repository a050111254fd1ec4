"""A tiny identity-folder training set and a tiny backbone for the trainer tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from face.align import ARCFACE_TEMPLATE
from face.landmarks import write_landmark_csv


class TinyBackbone(nn.Module):
    """``(B, 3, S, S)`` + ``(B, 5, 3)`` keypoints -> ``(B, 16)``: pooled pixels plus the keypoints, then BN."""

    output_dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.pixels = nn.Linear(3 * 8 * 8, 16)
        self.points = nn.Linear(15, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.1)  # a random draw per step, which exact resume must replay

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(images, 8).flatten(1)
        return self.norm(self.drop(self.pixels(pooled)) + self.points(landmarks.nan_to_num(0.0).flatten(1)))


@pytest.fixture
def face_folder(tmp_path):
    """``root`` with 4 identities x 4 random 40x40 faces and ``landmarks.csv`` (template scaled to 40 px)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "faces"
    rows = []
    for identity in range(4):
        (root / f"id{identity}").mkdir(parents=True)
        for k in range(4):
            name = f"id{identity}/{k}.png"
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / name)
            rows.append((name, ARCFACE_TEMPLATE * 40 / 112 + torch.from_numpy(rng.normal(0, 1, (5, 2))).float()))
    write_landmark_csv(root / "landmarks.csv", rows)
    return root
