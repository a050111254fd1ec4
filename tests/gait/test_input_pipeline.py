"""The one input pipeline (kprpe_gait.inputs): both trainers get the same frames, checks and missing-joint rule."""

import numpy as np
import pytest

from kprpe_gait.inputs import network_inputs
from kprpe_gait.opengait.transforms import SilJointTransform
from kprpe_gait.transforms import JointAugment


def sequence(t: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    sils = np.zeros((t, 64, 64), np.uint8)
    sils[:, 10:54, 22:42] = 255
    joints = np.concatenate([rng.uniform(20, 44, (t, 17, 2)), rng.uniform(0.5, 1, (t, 17, 1))], -1).astype(np.float32)
    return sils, joints


def test_opengait_transform_is_the_compact_pipeline_draw_for_draw():
    sils, joints = sequence()
    probs = {"perspective_prob": 0.5, "flip_prob": 0.5, "rotate_prob": 0.5}
    transform = SilJointTransform(cutting=10, seed=7, **probs)
    compact_rng, augment = np.random.default_rng(7), JointAugment(**probs)
    for _ in range(4):  # several draws: flips and warps included
        a_sils, a_joints = transform(sils, joints)
        b_sils, b_joints = network_inputs(sils, joints, 10, augment, compact_rng)
        np.testing.assert_array_equal(a_sils, b_sils)
        np.testing.assert_array_equal(a_joints, b_joints)
    assert a_sils.shape == (4, 64, 44) and a_sils.dtype == np.float32


def test_missing_joints_are_zeroed_and_bad_confidences_rejected_on_every_path():
    sils, joints = sequence()
    joints[1, 4] = [np.nan, np.nan, 0.0]  # missing, as the format allows
    joints[2, 5] = [30.0, 30.0, 0.0]  # missing with finite coordinates
    for out in (network_inputs(sils, joints, 10)[1], SilJointTransform()(sils, joints)[1]):
        np.testing.assert_array_equal(out[1, 4], 0.0)
        np.testing.assert_array_equal(out[2, 5], 0.0)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out[0, 0, :2], (joints[0, 0, :2] - (10, 0)) / (44, 64), rtol=1e-6)
    nan_conf = joints.copy()
    nan_conf[0, 0, 2] = np.nan
    with pytest.raises(ValueError, match="seq-7: joint confidences contain NaN"):
        network_inputs(sils, nan_conf, 10, name="seq-7")
    with pytest.raises(ValueError, match="confidences contain NaN"):
        SilJointTransform()(sils, nan_conf)
    confident_nan = joints.copy()
    confident_nan[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"confidence > 0 but NaN/inf coordinates \(first: frame 3, joint 2\)"):
        network_inputs(sils, confident_nan, 10)
    with pytest.raises(ValueError, match="frame counts differ"):
        network_inputs(sils, joints[:3], 10)


def test_silhouettes_only_and_default_cut():
    sils, _ = sequence()
    out, none = network_inputs(sils, None, None)
    assert none is None and out.shape == (4, 64, 44)
    np.testing.assert_array_equal(out, sils[:, :, 10:54] / np.float32(255))
