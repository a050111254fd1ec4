"""face.align: similarity fit, warp geometry (blobs land on the template), missing landmarks, errors."""

import math

import pytest
import torch

from face.align import (
    ARCFACE_TEMPLATE,
    align_faces,
    estimate_similarity,
    normalise_landmarks,
    random_similarity,
    transform_points,
)
from kprpe.core import KeypointRPE


def _similarity(scale: float, degrees: float, tx: float, ty: float) -> torch.Tensor:
    a = math.radians(degrees)
    return torch.tensor(
        [[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]],
        dtype=torch.float64,
    )


def _blobs(points: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """(1, 1, H, W) image with a Gaussian blob at each (x, y) pixel-index point."""
    rows = torch.arange(size[0], dtype=torch.float64)[:, None]
    cols = torch.arange(size[1], dtype=torch.float64)[None, :]
    image = torch.zeros(size, dtype=torch.float64)
    for x, y in points.tolist():
        image += torch.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))
    return image[None, None].float()


def _centroid(image: torch.Tensor, x: float, y: float, radius: int = 6) -> tuple[float, float]:
    """Intensity centroid of the window around (x, y) of a (H, W) image."""
    r0, c0 = round(y), round(x)
    window = image[r0 - radius : r0 + radius + 1, c0 - radius : c0 + radius + 1].double()
    rows = torch.arange(r0 - radius, r0 + radius + 1, dtype=torch.float64)[:, None]
    cols = torch.arange(c0 - radius, c0 + radius + 1, dtype=torch.float64)[None, :]
    total = window.sum()
    return float((window * cols).sum() / total), float((window * rows).sum() / total)


def test_estimate_similarity_recovers_a_known_map():
    truth = torch.stack([_similarity(1.7, 25.0, 12.0, -4.0), _similarity(0.6, -80.0, 3.5, 40.0)])
    src = torch.randn(2, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 30
    dst = transform_points(src, truth)
    torch.testing.assert_close(estimate_similarity(src, dst), truth, atol=1e-9, rtol=0)


def test_estimate_similarity_is_the_least_squares_fit():
    gen = torch.Generator().manual_seed(1)
    src = torch.randn(1, 5, 2, dtype=torch.float64, generator=gen)
    dst = torch.randn(1, 5, 2, dtype=torch.float64, generator=gen)
    fit = estimate_similarity(src, dst).requires_grad_(True)
    # the residual of the closed form is a stationary point over (a, b, tx, ty)
    a, b, tx, ty = fit[0, 0, 0], fit[0, 1, 0], fit[0, 0, 2], fit[0, 1, 2]
    linear = torch.stack([torch.stack([a, -b]), torch.stack([b, a])])
    residual = ((src[0] @ linear.T + torch.stack([tx, ty]) - dst[0]) ** 2).sum()
    (grad,) = torch.autograd.grad(residual, fit)
    assert grad.abs().max() < 1e-9


def test_zero_weight_and_nan_points_are_ignored():
    truth = _similarity(1.3, 10.0, 5.0, 7.0)[None]
    src = ARCFACE_TEMPLATE.double()[None].clone()
    dst = transform_points(src, truth)
    src_bad = src.clone()
    src_bad[0, 2] = torch.tensor([500.0, -300.0])  # an outlier with weight 0
    weights = torch.tensor([[1.0, 1.0, 0.0, 1.0, 1.0]])
    torch.testing.assert_close(estimate_similarity(src_bad, dst, weights), truth, atol=1e-9, rtol=0)
    src_bad[0, 2] = math.nan
    torch.testing.assert_close(estimate_similarity(src_bad, dst), truth, atol=1e-9, rtol=0)


def test_too_few_landmarks_name_the_sample():
    src = ARCFACE_TEMPLATE.double()[None].repeat(3, 1, 1)
    src[1, 1:] = math.nan  # one valid point left
    with pytest.raises(ValueError, match=r"sample\(s\) \[1\]"):
        estimate_similarity(src, ARCFACE_TEMPLATE.double())


def test_aligned_blobs_land_on_the_template_and_keypoints_say_where():
    crop_to_source = _similarity(1.6, 20.0, 30.0, 25.0)
    source_points = transform_points(ARCFACE_TEMPLATE.double()[None], crop_to_source[None])[0]
    image = _blobs(source_points, (230, 210), sigma=3.0)
    aligned = align_faces(image, source_points[None].float())
    crop = aligned.images[0, 0]
    for (tx, ty), (kx, ky, conf) in zip(ARCFACE_TEMPLATE.tolist(), aligned.keypoints[0].tolist()):
        cx, cy = _centroid(crop, tx, ty)
        assert abs(cx - tx) < 0.1 and abs(cy - ty) < 0.1, (cx, cy, tx, ty)
        assert kx == pytest.approx((tx + 0.5) / 112, abs=1e-5)
        assert ky == pytest.approx((ty + 0.5) / 112, abs=1e-5)
        assert conf == 1.0


def test_misaligned_keypoints_follow_the_face():
    source_points = ARCFACE_TEMPLATE.double() * 1.2 + 10
    image = _blobs(source_points, (160, 160), sigma=2.5).repeat(2, 3, 1, 1)
    jitter = random_similarity(
        2, max_rotation=15, scale=(0.9, 1.1), max_shift=0.08, generator=torch.Generator().manual_seed(3)
    )
    aligned = align_faces(image, source_points[None].float().repeat(2, 1, 1), misalignment=jitter)
    assert not torch.allclose(aligned.keypoints[0], aligned.keypoints[1])
    for b in range(2):
        for kx, ky, _ in aligned.keypoints[b].tolist():
            px, py = kx * 112 - 0.5, ky * 112 - 0.5
            cx, cy = _centroid(aligned.images[b, 1], px, py)
            assert abs(cx - px) < 0.15 and abs(cy - py) < 0.15


def test_random_similarity_respects_its_ranges():
    maps = random_similarity(
        500, (112, 112), max_rotation=10, scale=(0.9, 1.1), max_shift=0.05, generator=torch.Generator().manual_seed(0)
    )
    scale = torch.linalg.det(maps[:, :, :2].double()).sqrt()
    angle = torch.rad2deg(torch.atan2(maps[:, 1, 0], maps[:, 0, 0]))
    assert scale.min() >= 0.9 - 1e-5 and scale.max() <= 1.1 + 1e-5
    assert angle.abs().max() <= 10 + 1e-4
    centre = torch.tensor([55.5, 55.5])
    moved = transform_points(centre.expand(500, 1, 2), maps)[:, 0] - centre
    assert moved.abs().max() <= 0.05 * 112 + 1e-3
    assert moved.abs().max() > 0.04 * 112  # the range is used, not ignored


def test_missing_landmark_comes_out_nan_with_zero_confidence_and_is_ignored_by_kprpe():
    source = torch.cat([ARCFACE_TEMPLATE, torch.ones(5, 1)], -1)[None].repeat(2, 1, 1)
    source[0, 4, :2] = math.nan
    source[1, 0, 2] = 0.0  # not detected
    aligned = align_faces(torch.rand(2, 3, 112, 112), source)
    assert torch.isnan(aligned.keypoints[0, 4, :2]).all() and aligned.keypoints[0, 4, 2] == 0
    assert torch.isnan(aligned.keypoints[1, 0, :2]).all() and aligned.keypoints[1, 0, 2] == 0
    torch.testing.assert_close(aligned.keypoints[0, :4, :2], (ARCFACE_TEMPLATE[:4] + 0.5) / 112, atol=1e-4, rtol=0)
    rpe = KeypointRPE(num_keypoints=5, grid_size=(14, 14), num_heads=2, depth=1)
    torch.nn.init.normal_(rpe.proj.weight)
    assert all(torch.isfinite(t).all() for t in rpe(aligned.keypoints))


def test_normalise_landmarks_convention():
    points = torch.tensor([[[0.0, 0.0], [111.0, 55.5]]])
    keypoints = normalise_landmarks(points, (112, 112))
    torch.testing.assert_close(keypoints, torch.tensor([[[0.5 / 112, 0.5 / 112, 1.0], [1.0 - 0.5 / 112, 0.5, 1.0]]]))


def test_other_crop_sizes_scale_the_template():
    source_points = ARCFACE_TEMPLATE.double() + 20
    image = _blobs(source_points, (160, 160), sigma=2.5)
    aligned = align_faces(image, source_points[None].float(), size=(224, 224))
    assert aligned.images.shape == (1, 1, 224, 224)
    expected = (ARCFACE_TEMPLATE * 2 + 0.5) / 224
    torch.testing.assert_close(aligned.keypoints[0, :, :2], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "images, landmarks, match",
    [
        (torch.rand(3, 112, 112), torch.rand(1, 5, 2), r"images must be \(B, C, H, W\)"),
        (torch.rand(1, 3, 112, 112), torch.rand(1, 68, 2), "68 points per face, the template has 5"),
        (torch.rand(2, 3, 112, 112), torch.rand(1, 5, 2) * 100, "2 images but landmarks for 1"),
        (torch.rand(1, 3, 112, 112), torch.rand(1, 5), r"landmarks must be \(B, P, 2\|3\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(images, landmarks, match):
    with pytest.raises(ValueError, match=match):
        align_faces(images, landmarks)
