"""Face augmentations: a blob drawn at each landmark stays under the moved landmark; flips swap left/right."""

from __future__ import annotations

import torch

from face.align import ARCFACE_TEMPLATE
from face.train.augment import AugmentConfig, FaceAugment

SIZE = 112


def _blob_images(landmarks: torch.Tensor, sigma: float = 2.5) -> torch.Tensor:
    """``(B, 5, H, W)``: channel k holds a Gaussian blob centred on landmark k (pixel indices)."""
    ys, xs = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64), indexing="ij"
    )
    dx = xs - landmarks[..., 0, None, None]
    dy = ys - landmarks[..., 1, None, None]
    return torch.exp(-(dx.square() + dy.square()) / (2 * sigma**2))


def _centroids(images: torch.Tensor) -> torch.Tensor:
    """``(B, C, 2)`` intensity-weighted centroids (x, y) in pixel indices."""
    ys, xs = torch.meshgrid(
        torch.arange(SIZE, dtype=images.dtype), torch.arange(SIZE, dtype=images.dtype), indexing="ij"
    )
    mass = images.sum((-1, -2))
    return torch.stack([(images * xs).sum((-1, -2)) / mass, (images * ys).sum((-1, -2)) / mass], -1)


def _landmarks(batch: int, generator: torch.Generator) -> torch.Tensor:
    jitter = (torch.rand(batch, 5, 2, generator=generator, dtype=torch.float64) - 0.5) * 6
    return ARCFACE_TEMPLATE.to(torch.float64) + jitter


def test_blob_at_each_landmark_stays_under_the_moved_landmark():
    generator = torch.Generator().manual_seed(0)
    config = AugmentConfig(crop_prob=0.5, crop_scale=(0.5, 1.0), scale=(0.85, 1.1), max_shift=0.05,
                           rotation_prob=1.0, max_rotation=20.0, flip_prob=0.5)  # fmt: skip
    augment = FaceAugment(config)
    landmarks = _landmarks(24, generator)
    images = _blob_images(landmarks)
    matrices, flipped = augment.sample_geometry(24, (SIZE, SIZE), generator)
    assert flipped.any() and (~flipped).any()
    warped, moved = augment.apply_geometry(images, landmarks, matrices, flipped)
    centroid = _centroids(warped)  # channel k: the blob of ORIGINAL landmark k
    order = [1, 0, 2, 4, 3]
    checked = 0
    for b in range(24):
        for k in range(5):
            # original landmark k is the new landmark order[k] when the face was flipped (order is an involution)
            point = moved[b, order[k] if flipped[b] else k]
            if ((point < 12) | (point > SIZE - 13)).any():  # blob cut by the border: centroid biased
                continue
            torch.testing.assert_close(centroid[b, k], point, rtol=0, atol=0.1)  # measured <= 0.02 px
            checked += 1
    assert checked > 60


def test_blob_under_landmark_with_flip_swap_explicit():
    """A flipped face: new landmark 0 (left eye) sits on the blob of the old right eye, at the smaller x."""
    generator = torch.Generator().manual_seed(1)
    augment = FaceAugment(
        AugmentConfig(crop_prob=0.0, scale=(1.0, 1.0), max_shift=0.0, rotation_prob=0.0, flip_prob=1.0)
    )
    landmarks = _landmarks(4, generator)
    images = _blob_images(landmarks)
    matrices, flipped = augment.sample_geometry(4, (SIZE, SIZE), generator)
    assert flipped.all()
    warped, moved = augment.apply_geometry(images, landmarks, matrices, flipped)
    centroid = _centroids(warped)
    torch.testing.assert_close(centroid[:, 1], moved[:, 0], rtol=0, atol=0.05)  # old right eye -> new left eye
    torch.testing.assert_close(centroid[:, 0], moved[:, 1], rtol=0, atol=0.05)
    torch.testing.assert_close(moved[:, 0, 0], SIZE - 1 - landmarks[:, 1, 0])
    assert (moved[:, 0, 0] < moved[:, 1, 0]).all() and (moved[:, 3, 0] < moved[:, 4, 0]).all()


def test_identity_config_changes_nothing_and_full_pipeline_is_reproducible():
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(6, 3, SIZE, SIZE, generator=generator)
    landmarks = torch.cat([_landmarks(6, generator).float(), torch.ones(6, 5, 1)], -1)
    landmarks[0, 2] = torch.tensor([float("nan"), float("nan"), 0.0])  # a missing nose is carried along
    out, moved = FaceAugment(AugmentConfig.none())(images, landmarks)
    torch.testing.assert_close(out, images, rtol=0, atol=1e-4)
    torch.testing.assert_close(moved, landmarks, equal_nan=True)

    augment = FaceAugment(AugmentConfig(cutout_prob=1.0, blur_prob=1.0, low_res_prob=1.0, photometric_prob=1.0))
    first = augment(images, landmarks, torch.Generator().manual_seed(5))
    second = augment(images, landmarks, torch.Generator().manual_seed(5))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1].nan_to_num(), second[1].nan_to_num())
    assert first[0].shape == images.shape and 0 <= first[0].min() and first[0].max() <= 1
    assert not torch.equal(first[0], images)
    assert torch.isnan(first[1][0, 2, :2]).all() and first[1][0, 2, 2] == 0


def test_image_only_ops_leave_landmarks_where_geometry_put_them():
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(4, 3, SIZE, SIZE, generator=generator)
    landmarks = _landmarks(4, generator).float()
    config = AugmentConfig.none()
    config.blur_prob = config.low_res_prob = config.cutout_prob = config.photometric_prob = 1.0
    out, moved = FaceAugment(config)(images, landmarks, generator)
    assert torch.equal(moved, landmarks) and not torch.equal(out, images)


def test_bad_config_and_input_are_named():
    import pytest

    with pytest.raises(ValueError, match="augment.flip_prob"):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match="augment.scale"):
        AugmentConfig(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="landmarks"):
        FaceAugment()(torch.rand(2, 3, SIZE, SIZE), torch.rand(3, 5, 2))
