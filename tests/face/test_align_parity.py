"""Pixel parity of ``face.align`` with insightface's ``face_align.norm_crop`` (read from the installed
insightface wheel at test time, never copied here) on the wheel's sample photos and on SynthFace photos.

``norm_crop`` fits the similarity with scikit-image's ``SimilarityTransform`` (Umeyama's method) and warps
with ``cv2.warpAffine`` (bilinear, fixed point: 1/32-pixel sub-positions). scikit-image is not a dependency,
so a transcription of Umeyama's estimate stands in for it; ``cv2.warpAffine`` is the real one.

Measured (15 faces: the six of t1.jpg, Tom_Hanks padded, eight SynthFace photos): the float64 fit equals
insightface's matrix to 2.3e-13; crops rounded to uint8 differ by at most 1 grey level, on 0.005 % of the
values (float64 images) and 0.014 % (float32 images, whose matrix is rounded to float32: 1.7e-5 px).
"""

import importlib.metadata
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from face.align import ARCFACE_TEMPLATE, align_faces, estimate_similarity

cv2 = pytest.importorskip("cv2")


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama (1991) least-squares similarity with scale, as scikit-image estimates it: ``(3, 3)`` (its
    rank-deficient branch, collinear points, is simplified: faces never take it)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    dim = src.shape[1]
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    covariance = dst_c.T @ src_c / len(src)
    signs = np.ones(dim)
    if np.linalg.det(covariance) < 0:
        signs[-1] = -1
    u, singular, vt = np.linalg.svd(covariance)
    out = np.eye(dim + 1)
    if np.linalg.matrix_rank(covariance) == dim - 1 and np.linalg.det(u) * np.linalg.det(vt) > 0:
        out[:dim, :dim] = u @ vt
    else:
        out[:dim, :dim] = u @ np.diag(signs) @ vt
    scale = (singular @ signs) / src_c.var(0).sum()
    out[:dim, dim] = dst.mean(0) - scale * (out[:dim, :dim] @ src.mean(0))
    out[:dim, :dim] *= scale
    return out


@pytest.fixture(scope="module")
def norm_crop_module():
    """insightface's ``utils/face_align.py`` loaded alone, with the Umeyama transcription as scikit-image."""
    try:
        path = importlib.metadata.distribution("insightface").locate_file("insightface/utils/face_align.py")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("insightface wheel not installed (pip install --no-deps insightface==2.1)")

    class SimilarityTransform:
        def estimate(self, src, dst):
            self.params = umeyama(src, dst)
            return True

    transform = types.ModuleType("skimage.transform")
    transform.SimilarityTransform = SimilarityTransform
    skimage = types.ModuleType("skimage")
    skimage.transform = transform
    saved = {name: sys.modules.get(name) for name in ("skimage", "skimage.transform")}
    sys.modules.update({"skimage": skimage, "skimage.transform": transform})
    try:
        spec = importlib.util.spec_from_file_location("insightface_face_align", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value
    return module


def _sample(name: str) -> np.ndarray:
    path = importlib.metadata.distribution("insightface").locate_file(f"insightface/data/images/{name}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


def _faces() -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB photo, (5, 2) float32 landmarks): SynthFace's exact landmarks, plus MTCNN's on the wheel's photos."""
    from face.synth.config import synth_config
    from face.synth.render import render_photo, sample_identity

    rng = np.random.default_rng(0)
    config = synth_config("demo")
    faces = []
    for _ in range(6):
        photo = render_photo(sample_identity(rng), rng, config)
        faces.append((photo.image, photo.landmarks.astype(np.float32)))
    if importlib.util.find_spec("facenet_pytorch") is not None:
        from face.detect import MTCNNDetector

        photos = [_sample("t1.jpg"), np.pad(_sample("Tom_Hanks_54745.png"), ((56, 56), (56, 56), (0, 0)))]
        found = MTCNNDetector().detect([torch.from_numpy(p).permute(2, 0, 1).contiguous() for p in photos])
        for photo, detections in zip(photos, found):
            for k in np.flatnonzero(detections.scores.numpy() > 0.9):
                faces.append((photo, detections.landmarks[k, :, :2].numpy().astype(np.float32)))
    return faces


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_align_matches_insightface_norm_crop(norm_crop_module, dtype):
    faces = _faces()
    changed = 0
    for photo, landmarks in faces:
        reference_matrix = norm_crop_module.estimate_norm(landmarks)
        reference = norm_crop_module.norm_crop(photo, landmarks)
        fit = estimate_similarity(torch.from_numpy(landmarks)[None].double(), ARCFACE_TEMPLATE.double())[0]
        np.testing.assert_allclose(fit.numpy(), reference_matrix, rtol=0, atol=1e-6)
        image = torch.from_numpy(photo).permute(2, 0, 1)[None].to(dtype)
        ours = align_faces(image, torch.from_numpy(landmarks)[None])
        crop = ours.images[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        difference = np.abs(crop.astype(int) - reference.astype(int))
        assert difference.max() <= 1, (difference.max(), (difference > 1).mean())
        changed += int((difference > 0).sum())
    total = sum(112 * 112 * 3 for _ in faces)
    assert changed / total < 1e-3  # rare +-1 roundings, not a systematic shift
