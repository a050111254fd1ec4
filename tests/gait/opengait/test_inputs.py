"""Batch preparation: shared transform per sequence, packing, checks with clear messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kprpe_gait.opengait.inputs import joint_overlay, prepare_batch, sequence_names, split_packed

J = 17


def cut_and_normalise(sils, joints):
    """A deterministic stand-in transform: 10 px side cut, /255, joints into [0, 1] of 64x44."""
    out = sils[..., 10:-10] / 255.0
    if joints is None:
        return out, None
    joints = joints.astype(np.float32).copy()
    joints[..., 0] = (joints[..., 0] - 10) / 44
    joints[..., 1] = joints[..., 1] / 64
    return out, joints


def make_seq(t, rng, joints=True):
    sils = (rng.random((t, 64, 64)) > 0.5).astype(np.uint8) * 255
    if not joints:
        return sils, None
    xy = rng.uniform(12, 50, (t, J, 2))
    conf = rng.uniform(0.1, 1.0, (t, J, 1))
    return sils, np.concatenate([xy, conf], -1).astype(np.float32)


def test_fixed_batch_values_and_missing_joints():
    rng = np.random.default_rng(0)
    seqs = [make_seq(5, rng) for _ in range(2)]
    seqs[1][1][2, 4] = [np.nan, np.nan, 0.0]  # a missing joint, as the format allows
    sils, joints, lengths = prepare_batch(
        [[s for s, _ in seqs], [j for _, j in seqs]], None, cut_and_normalise,
        num_joints=J, use_joints=True, names=["a", "b"],
    )  # fmt: skip
    assert lengths is None
    assert sils.shape == (2, 5, 64, 44) and sils.dtype == torch.float32
    assert torch.equal(sils[0], torch.from_numpy(seqs[0][0][:, :, 10:-10] / 255.0).float())
    assert joints.shape == (2, 5, J, 3)
    expected_x = (seqs[0][1][..., 0] - 10) / 44
    assert torch.allclose(joints[0, ..., 0], torch.from_numpy(expected_x).float())
    assert torch.equal(joints[1, 2, 4], torch.zeros(3))  # NaN coordinates of a missing joint zeroed
    assert torch.isfinite(joints).all()


def test_joints_are_checked_but_not_returned_when_unused():
    rng = np.random.default_rng(1)
    s, j = make_seq(4, rng)
    sils, joints, _ = prepare_batch([[s], [j]], None, cut_and_normalise, num_joints=J, use_joints=False, names=["a"])
    assert joints is None and sils.shape == (1, 4, 64, 44)
    sils, joints, _ = prepare_batch([[s]], None, cut_and_normalise, num_joints=J, use_joints=False, names=["a"])
    assert joints is None


def test_packed_batch_transforms_each_sequence_once():
    rng = np.random.default_rng(2)
    seqs = [make_seq(3, rng), make_seq(4, rng)]
    calls = []

    def recording(sils, joints):
        calls.append(len(sils))
        return cut_and_normalise(sils, joints)

    packed = [[np.concatenate([s for s, _ in seqs])], [np.concatenate([j for _, j in seqs])]]
    sils, joints, lengths = prepare_batch(
        packed, np.array([[3, 4]]), recording, num_joints=J, use_joints=True, names=["a", "b"]
    )
    assert calls == [3, 4]
    assert lengths == [3, 4]
    assert sils.shape == (1, 7, 64, 44) and joints.shape == (1, 7, J, 3)
    assert torch.equal(sils[0, 3:], torch.from_numpy(seqs[1][0][:, :, 10:-10] / 255.0).float())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s, j: (s, j[:-1]), r"seq-x: frame counts differ: 5 silhouettes vs 4 joint frames"),
        (lambda s, j: (s, j[:, :16]), r"expects 17 joints per frame, the data has 16"),
        (lambda s, j: (s, j[..., :2]), r"joints must be \(T, J, 3\)"),
        (lambda s, j: (s[0], j), r"silhouettes must be \(T, H, W\)"),
        (lambda s, j: (j, s), r"looks like joints; silhouettes must come first"),
    ],
)
def test_shape_errors_name_the_sequence(mutate, message):
    s, j = mutate(*make_seq(5, np.random.default_rng(3)))
    with pytest.raises(ValueError, match=message):
        prepare_batch([[s], [j]], None, cut_and_normalise, num_joints=J, use_joints=True, names=["seq-x"])


def test_nan_joints_are_errors_unless_marked_missing():
    s, j = make_seq(5, np.random.default_rng(4))
    bad = j.copy()
    bad[1, 3, 0] = np.nan  # confidence stays > 0
    with pytest.raises(
        ValueError, match=r"1 joints have confidence > 0 but NaN/inf coordinates \(first: frame 1, joint 3\)"
    ):
        prepare_batch([[s], [bad]], None, cut_and_normalise, num_joints=J, use_joints=True, names=["q"])
    bad = j.copy()
    bad[0, 0, 2] = np.nan
    with pytest.raises(ValueError, match="confidences contain NaN"):
        prepare_batch([[s], [bad]], None, cut_and_normalise, num_joints=J, use_joints=True, names=["q"])


def test_modality_and_packing_errors():
    s, j = make_seq(5, np.random.default_rng(5))
    with pytest.raises(ValueError, match=r"needs joints .*data_in_use: \[true, true\]"):
        prepare_batch([[s]], None, cut_and_normalise, num_joints=J, use_joints=True, names=["q"])
    with pytest.raises(ValueError, match="got 3 modalities"):
        prepare_batch([[s], [j], [j]], None, cut_and_normalise, num_joints=J, use_joints=True, names=["q"])
    with pytest.raises(ValueError, match="seqL sums to 6 frames but the packed silhouettes hold 5"):
        prepare_batch(
            [[s], [j]], np.array([[2, 4]]), cut_and_normalise, num_joints=J, use_joints=True, names=["a", "b"]
        )
    with pytest.raises(ValueError, match="2 sequences in the batch but 1 names"):
        prepare_batch([[s, s]], None, cut_and_normalise, num_joints=J, use_joints=False, names=["a"])


def test_split_packed_and_names():
    parts = split_packed(np.arange(7), [3, 4], "x")
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5, 6]]
    assert sequence_names(["0001"], ["cam1"], ["seq0"]) == ["0001-cam1-seq0"]


def test_joint_overlay_draws_confident_joints_in_red():
    sils = torch.zeros(2, 8, 6)
    joints = torch.zeros(2, 3, 3)
    joints[0, 0] = torch.tensor([0.5, 0.5, 1.0])  # pixel (row 4, col 3)
    joints[0, 1] = torch.tensor([0.1, 0.1, 0.0])  # missing: not drawn
    joints[0, 2] = torch.tensor([1.5, 0.5, 1.0])  # outside the frame: not drawn
    image = joint_overlay(sils, joints)
    assert image.shape == (2, 3, 8, 6)
    assert image[0, :, 4, 3].tolist() == [1.0, 0.0, 0.0]
    assert image[0, 0].sum() == 1.0 and image[1].sum() == 0.0
    assert joint_overlay(sils, None, max_frames=1).shape == (1, 3, 8, 6)
