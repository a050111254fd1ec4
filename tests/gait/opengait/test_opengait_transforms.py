"""SilJointTransform: the plugin's OpenGait transform moves silhouettes and joints together."""

from __future__ import annotations

import numpy as np
import pytest

from kprpe_gait.data.formats import COCO_FLIP_ORDER
from kprpe_gait.opengait.transforms import SilJointTransform


def blobs(rng, t=3, j=17):
    """Silhouettes that are 5x5 white squares centred on each joint (away from the borders)."""
    centres = rng.integers(14, 50, size=(t, j, 2))
    sils = np.zeros((t, 64, 64), np.uint8)
    for f in range(t):
        for x, y in centres[f]:
            sils[f, y - 2 : y + 3, x - 2 : x + 3] = 255
    joints = np.concatenate([centres + 0.5, np.ones((t, j, 1))], -1).astype(np.float32)
    return sils, joints


def test_evaluation_transform_is_cut_and_normalise():
    rng = np.random.default_rng(0)
    sils, joints = blobs(rng)
    out, out_joints = SilJointTransform()(sils, joints)
    np.testing.assert_array_equal(out, sils[:, :, 10:-10] / 255.0)
    np.testing.assert_allclose(out_joints[..., 0], (joints[..., 0] - 10) / 44, rtol=1e-6)
    np.testing.assert_allclose(out_joints[..., 1], joints[..., 1] / 64, rtol=1e-6)
    np.testing.assert_array_equal(out_joints[..., 2], joints[..., 2])
    out, none = SilJointTransform(cutting=0)(sils, None)
    assert none is None and out.shape == (3, 64, 64)


def test_flip_mirrors_both_and_swaps_left_right():
    rng = np.random.default_rng(1)
    sils, joints = blobs(rng)
    plain, plain_joints = SilJointTransform()(sils, joints)
    flipped, flipped_joints = SilJointTransform(flip_prob=1.0, seed=0)(sils, joints)
    np.testing.assert_allclose(flipped, plain[..., ::-1], atol=1e-6)
    order = list(COCO_FLIP_ORDER)
    np.testing.assert_allclose(flipped_joints[..., 0], 1 - plain_joints[:, order, 0], atol=1e-6)
    np.testing.assert_allclose(flipped_joints[..., 1], plain_joints[:, order, 1], atol=1e-6)
    sils_only, _ = SilJointTransform(flip_prob=1.0, seed=0)(sils, None)
    np.testing.assert_allclose(sils_only, flipped, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_random_draws_keep_joints_on_their_blobs(seed):
    rng = np.random.default_rng(10 + seed)
    sils, joints = blobs(rng, t=2, j=4)
    transform = SilJointTransform(perspective_prob=1.0, affine_prob=1.0, flip_prob=0.5, rotate_prob=1.0,
                                  rotate_degree=15, seed=seed)  # fmt: skip
    out, out_joints = transform(sils, _pad17(joints))
    h, w = out.shape[1:]
    for f in range(out.shape[0]):
        for x, y, c in out_joints[f]:
            if c == 0:
                continue
            col, row = int(x * w), int(y * h)
            if 0 <= col < w and 0 <= row < h:
                assert out[f, row, col] > 0.5, f"joint at ({x:.3f}, {y:.3f}) is off its blob"


def _pad17(joints):
    """Four real joints, thirteen missing ones (confidence 0): flips need all 17 COCO joints."""
    pad = np.zeros((joints.shape[0], 17 - joints.shape[1], 3), np.float32)
    return np.concatenate([joints, pad], 1)


def test_seeded_draws_repeat_and_bad_options_fail():
    rng = np.random.default_rng(2)
    sils, joints = blobs(rng)
    a = SilJointTransform(perspective_prob=0.5, rotate_prob=0.5, seed=3)
    b = SilJointTransform(perspective_prob=0.5, rotate_prob=0.5, seed=3)
    for _ in range(3):
        (sa, ja), (sb, jb) = a(sils, joints), b(sils, joints)
        np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(ja, jb)
    with pytest.raises(ValueError, match="cutting must be"):
        SilJointTransform(cutting=-1)
    with pytest.raises(ValueError, match="flip_prob must be in"):
        SilJointTransform(flip_prob=2.0)
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        SilJointTransform()(sils[0], None)
