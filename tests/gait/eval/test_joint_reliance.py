"""kprpe_gait.eval.reliance: the mean pose, exact translations, the probe reading ~0 for models that cannot use
their joints and clearly non-zero for one built to, and the trainer's W_L learning rate / mean-pose control."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kprpe_gait.eval.reliance import ConstantJoints, joint_reliance, translate_transform
from kprpe_gait.inputs import network_inputs
from kprpe_gait.models import SwinGait2D
from kprpe_gait.train import GaitDataset, TrainConfig, Trainer, mean_pose, read_partition

SMALL = dict(channels=(4, 8), layers=(1, 1, 2, 2), embed_dim=8, num_heads=(2, 2), out_channels=8)


def _net(rel_pos: str, w_l_std: float = 0.0) -> SwinGait2D:
    torch.manual_seed(0)
    net = SwinGait2D(3, rel_pos=rel_pos, **SMALL).eval()
    if w_l_std:
        with torch.no_grad():
            for stage in net.transformer.stages:
                stage.rpe.proj.weight.normal_(std=w_l_std)
    return net


def test_mean_pose_averages_confident_joints_in_the_network_frame(pickle_root):
    ids = read_partition(pickle_root / "partition.json")["TRAIN_SET"]
    pose = mean_pose(pickle_root, ids, cut=10)
    dataset = GaitDataset(pickle_root, ids=ids, cache=False)
    frames = np.concatenate([network_inputs(*dataset.load(i), cut=10)[1] for i in range(len(dataset))])
    np.testing.assert_allclose(pose[:, :2], frames[..., :2].mean(0), rtol=1e-5)  # all joints confident here
    assert pose.shape == (17, 3) and (pose[:, 2] == 1).all()


def test_translate_transform_moves_silhouettes_and_joints_alike():
    sils = np.zeros((2, 64, 64), dtype=np.uint8)
    sils[:, 30, 20] = 255
    joints = np.array([[[20.0, 30.0, 1.0], [0.0, 0.0, 0.0]]] * 2, dtype=np.float32)
    moved_sils, moved_joints = translate_transform(6.0, seed=1)(4, sils, joints)
    again = translate_transform(6.0, seed=1)(4, sils, joints)[1]
    np.testing.assert_array_equal(moved_joints, again)  # (seed, index) decides the direction
    offset = moved_joints[0, 0, :2] - joints[0, 0, :2]
    assert np.hypot(*offset) == pytest.approx(6.0, abs=1e-4)
    w = moved_sils[0].astype(float)
    ys, xs = np.mgrid[:64, :64]
    centre = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()
    np.testing.assert_allclose(centre, moved_joints[0, 0, :2], atol=0.05)  # the pixel went where the joint went
    assert (moved_joints[:, 1] == 0).all()  # a missing joint stays missing
    assert translate_transform(0.0)(0, sils, joints)[0] is sils


def test_probe_reads_zero_without_joint_use_and_clearly_with_it(pickle_root):
    partition = pickle_root / "partition.json"
    pose = mean_pose(pickle_root, read_partition(partition)["TRAIN_SET"])
    for net in (_net("swin"), _net("kprpe"), ConstantJoints(_net("kprpe", 5.0), pose)):
        out = joint_reliance(net, pickle_root, partition, pose, probe_sequences=2, probe_frames=3)
        assert out["metrics"]["own"] == out["metrics"]["mean_pose"] == out["metrics"]["shuffled"]
        assert out["embedding_change"] == 0.0 and out["keypoint_bias"] == 0.0 and len(out["bias"]) == 4
    wrapped, sils = ConstantJoints(_net("kprpe", 5.0), pose), torch.rand(1, 3, 64, 44)
    joints = torch.rand(2, 1, 3, 17, 3)
    assert torch.equal(wrapped(sils, joints[0])["embeddings"], wrapped(sils, joints[1])["embeddings"])
    out = joint_reliance(_net("kprpe", 5.0), pickle_root, partition, pose, probe_sequences=2, probe_frames=3,
                         transform=translate_transform(4.0), modes=("own", "mean_pose"))  # fmt: skip
    assert out["embedding_change"] > 1e-3 and out["keypoint_bias"] > 0.1 and "shuffled" not in out["metrics"]
    with pytest.raises(ValueError, match="modes must include 'own'"):
        joint_reliance(_net("swin"), pickle_root, partition, pose, modes=("mean_pose",))


def test_trainer_scales_w_l_and_feeds_the_mean_pose_to_the_control(pickle_root, tmp_path):
    base = dict(dataset_root=str(pickle_root), partition=str(pickle_root / "partition.json"),
                model={**SMALL, "rel_pos": "kprpe"}, iterations=2, batch_size=(2, 2), frames=4, sgdr_cycle=2,
                save_every=2, seed=0, augment={})  # fmt: skip
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path / "a"), kprpe_lr_scale=10.0, **base), progress=False)
    w_l = {id(p) for stage in trainer.net.transformer.stages for p in stage.rpe.parameters()}
    scaled = [g for g in trainer.optimizer.param_groups if g.get("lr_scale") == 10.0]
    assert {id(p) for g in scaled for p in g["params"]} == w_l
    assert all(g["lr"] == pytest.approx(10 * trainer.config.lr) for g in scaled)

    control = Trainer(TrainConfig(out_dir=str(tmp_path / "b"), joints="constant", **base), progress=False)
    _, joints, _ = control.next_batch()
    pose = mean_pose(pickle_root, read_partition(pickle_root / "partition.json")["TRAIN_SET"])
    assert control.constant_joints is not None
    np.testing.assert_allclose(control.constant_joints.numpy(), pose)
    seen = []
    control.net.transformer.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    control.step()
    assert torch.equal(seen[0], torch.from_numpy(pose).expand_as(seen[0]))
    with pytest.raises(ValueError, match="joints must be"):
        TrainConfig(out_dir=str(tmp_path / "c"), joints="mean", **base)
