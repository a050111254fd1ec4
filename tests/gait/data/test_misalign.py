"""Misalignment: silhouettes and joints move together; ranges and crop errors do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from kprpe_gait.data.misalign import (
    MisalignConfig,
    misalign_sequence,
    sample_misalignment,
    similarity,
    warp_joints,
    warp_silhouettes,
)


def dots(num: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames with one 5x5 bright square each, and a joint on its centre."""
    sils = np.zeros((num, 64, 64), np.uint8)
    joints = np.zeros((num, 17, 3), np.float32)
    for t in range(num):
        r, c = rng.integers(22, 38, 2)
        sils[t, r - 2 : r + 3, c - 2 : c + 3] = 255
        joints[t, 3] = (c + 0.5, r + 0.5, 0.8)
    return sils, joints


def test_identity_warp_is_exact() -> None:
    sils, joints = dots(3, np.random.default_rng(0))
    eye = np.tile(np.eye(3), (3, 1, 1))
    np.testing.assert_array_equal(warp_silhouettes(sils, eye), sils)
    np.testing.assert_array_equal(warp_joints(joints, eye), joints)


def test_joint_stays_on_its_blob() -> None:
    rng = np.random.default_rng(1)
    sils, joints = dots(40, rng)
    cfg = MisalignConfig(scale=0.2, rotate=10, shift=5, crop_prob=0.5)
    warped, moved = misalign_sequence(sils, joints, rng, cfg)
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    for t in range(40):
        w = warped[t].astype(np.float64)
        centroid = np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
        np.testing.assert_allclose(centroid, moved[t, 3, :2], atol=0.15)
    assert (moved[:, 3, 2] == 0.8).all()
    assert np.abs(moved[:, 3, :2] - joints[:, 3, :2]).max() > 2  # it did move


def test_missing_joints_stay_missing() -> None:
    joints = np.zeros((2, 17, 3), np.float32)
    joints[:, 0] = (10, 10, 0.0)
    out = warp_joints(joints, np.tile(similarity(1.1, 5, (3, 3), (32, 32)), (2, 1, 1)))
    assert (out[:, 0] == 0).all()


def test_similarity_and_crop_error_geometry() -> None:
    m = similarity(2.0, 90.0, (1.0, 0.0), (32.0, 32.0))
    np.testing.assert_allclose(m @ [32, 32, 1], [33, 32, 1])
    np.testing.assert_allclose(m @ [33, 32, 1], [33, 34, 1])  # +x turns to +y (clockwise on screen)
    rng = np.random.default_rng(3)
    cfg = MisalignConfig(
        scale=0, rotate=0, shift=0, jitter_scale=0, jitter_rotate=0, jitter_shift=0, crop_prob=1.0, crop_max=0.2
    )
    mats = sample_misalignment(rng, 50, cfg)
    for m in mats:
        top, bottom = m @ [32, 0, 1], m @ [32, 64, 1]
        zoom = m[0, 0]
        assert 1.0 <= zoom <= 1 / 0.8 + 1e-9
        # the zoom keeps one edge of the box in place (the one the detector did not cut)
        assert np.isclose(top[1], 0) or np.isclose(bottom[1], 64)


def test_ranges_are_respected() -> None:
    cfg = MisalignConfig(scale=0.1, rotate=4.0, shift=2.0, jitter_scale=0, jitter_rotate=0, jitter_shift=0, crop_prob=0)
    for seed in range(20):
        mats = sample_misalignment(np.random.default_rng(seed), 5, cfg)
        assert np.allclose(mats, mats[0])  # no jitter: one matrix per sequence
        scale = np.hypot(mats[0, 0, 0], mats[0, 1, 0])
        angle = np.degrees(np.arctan2(mats[0, 1, 0], mats[0, 0, 0]))
        shift = mats[0] @ [32, 32, 1] - [32, 32, 1]
        assert 1 / 1.1 - 1e-9 <= scale <= 1.1 + 1e-9 and abs(angle) <= 4 and np.abs(shift[:2]).max() <= 2


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="rotate must be a finite number >= 0"):
        MisalignConfig(rotate=-1)
    with pytest.raises(ValueError, match="crop_max < 1"):
        MisalignConfig(crop_max=1.0)
    with pytest.raises(ValueError, match="3 silhouette frames but 2 joint frames"):
        misalign_sequence(
            np.zeros((3, 64, 64), np.uint8),
            np.zeros((2, 17, 3), np.float32),
            np.random.default_rng(0),
            MisalignConfig(),
        )
