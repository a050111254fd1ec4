"""Does a gait model use its joints? The joint-reliance probe, the mean pose, and controlled translations.

:func:`joint_reliance` scores one test split three times with Gait3D's protocol: with each sequence's own
joints, with the **mean pose** (one constant 17-joint pose, the training set's average in the network's
input frame, for every frame) and with joints **shuffled** across sequences (real walking poses, each on
another sequence). It reports the metrics of each, the relative change of the embeddings own vs mean pose,
and per attention layer the keypoint part of the bias against the logits' spread
(:func:`kprpe.core.bias_reliance`) on the first sequences. A model that ignores its joints reads the same
metrics in all three and a keypoint part far below the spread; a Swin-bias model reads exactly that.

:func:`translate_transform` moves each test sequence by an exact translation (a random direction per
sequence, seeded), silhouettes and joints alike (:mod:`kprpe_gait.data.misalign`'s warps).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from kprpe.core.probe import bias_reliance
from kprpe_gait.data.misalign import warp_joints, warp_silhouettes
from kprpe_gait.inputs import network_inputs
from kprpe_gait.models import SwinGait2D
from kprpe_gait.train.dataset import GaitDataset, read_partition
from kprpe_gait.train.features import extract_features, uses_joints
from kprpe_gait.train.mean_pose import mean_pose

from .metrics import evaluate_gait3d

__all__ = ["JOINT_MODES", "ConstantJoints", "joint_reliance", "mean_pose", "translate_transform"]

#: what the probe puts in place of each sequence's own joints
JOINT_MODES = ("own", "mean_pose", "shuffled")


def translate_transform(shift_px: float, seed: int = 0) -> Callable[[int, np.ndarray, np.ndarray], tuple]:
    """A :func:`~kprpe_gait.train.extract_features` ``transform`` that translates sequence ``index`` by
    ``shift_px`` pixels in a direction drawn from ``(seed, index)``: the same for every model and call."""

    def apply(index: int, sils: np.ndarray, joints: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        if shift_px == 0:
            return sils, joints
        angle = np.random.default_rng([seed, index]).uniform(0, 2 * math.pi)
        matrix = np.array([[1.0, 0.0, shift_px * math.cos(angle)], [0.0, 1.0, shift_px * math.sin(angle)],
                           [0.0, 0.0, 1.0]])  # fmt: skip
        matrices = np.repeat(matrix[None], len(sils), 0)
        return warp_silhouettes(sils, matrices), None if joints is None else warp_joints(joints, matrices)

    return apply


def _shuffled(count: int, seed: int) -> np.ndarray:
    """A permutation of ``range(count)`` without fixed points (a random cyclic shift of a random order)."""
    order = np.random.default_rng(seed).permutation(count)
    target = np.empty(count, dtype=np.int64)
    target[order] = np.roll(order, 1)
    return target


def _fit_length(joints: np.ndarray, length: int) -> np.ndarray:
    """``(T', J, 3)`` joints repeated or cut to ``length`` frames."""
    reps = -(-length // len(joints))
    return np.concatenate([joints] * reps)[:length]


def joint_reliance(
    net: SwinGait2D,
    dataset_root: str | os.PathLike[str],
    partition: str | os.PathLike[str],
    pose: np.ndarray,
    transform: Callable | None = None,
    max_frames: int = 720,
    cut: int = 10,
    probe_sequences: int = 4,
    probe_frames: int = 8,
    seed: int = 0,
    dataset_name: str = "SynthGait",
    progress: bool = False,
    modes: Iterable[str] = JOINT_MODES,
) -> dict[str, Any]:
    """The reliance probe on the ``TEST_SET`` of ``partition`` under ``dataset_root``.

    Args:
        net: the trained network (any ``rel_pos``; one that takes no joints, a Swin-bias model or a
            :class:`ConstantJoints` wrapper, reads exactly "not used": its other modes are its own, not recomputed).
        pose: ``(J, 3)`` the constant pose (:func:`mean_pose` of the training set).
        transform: applied to every stored sequence first (e.g. :func:`translate_transform`).
        probe_sequences, probe_frames: the attention bias is recorded on the first ``probe_frames`` frames
            of the first ``probe_sequences`` sequences.
        modes: the :data:`JOINT_MODES` to score (``("own",)``: the plain metrics; the bias probe always runs).

    Returns:
        ``{"metrics": {mode: {"Rank-1", "Rank-5", "mAP", "mINP"}}, "embedding_change": relative L2 change
        own -> mean pose (mean over sequences), "bias": [per-layer rows own vs mean pose], "bias_shuffled":
        [... own vs shuffled], "keypoint_bias", "logit_spread"}``.
    """
    ids = read_partition(partition)["TEST_SET"]
    dataset = GaitDataset(dataset_root, ids=ids, cache=False)
    own: list[np.ndarray] = []
    for index in range(len(dataset)):
        sils, joints = dataset.load(index)
        sils, joints = sils[:max_frames], joints[:max_frames]
        if transform is not None:
            sils, joints = transform(index, sils, joints)
        own.append(network_inputs(sils, joints, cut=cut, name=str(dataset.folder(index)))[1])
    other = _shuffled(len(own), seed)
    pose = np.asarray(pose, dtype=np.float32)
    replace = {
        "own": None,
        "mean_pose": lambda i, j: np.broadcast_to(pose, j.shape),
        "shuffled": lambda i, j: _fit_length(own[other[i]], len(j)),
    }
    modes = tuple(modes)
    if "own" not in modes or any(m not in JOINT_MODES for m in modes):
        raise ValueError(f"modes must include 'own' and be among {JOINT_MODES}, got {modes}")
    out: dict[str, Any] = {"metrics": {}}
    embeddings: dict[str, np.ndarray] = {}
    reads = uses_joints(net)
    for mode in modes:
        if not reads and mode != "own":  # joints are not an input: every mode is "own", exactly
            out["metrics"][mode], embeddings[mode] = out["metrics"]["own"], embeddings["own"]
            continue
        feats = extract_features(net, dataset_root, ids=ids, max_frames=max_frames, cut=cut, progress=progress,
                                 transform=transform, replace_joints=replace[mode])  # fmt: skip
        metrics = evaluate_gait3d(feats, dataset_name, partition=partition)
        out["metrics"][mode] = {k.rsplit("/", 1)[-1]: float(v) for k, v in metrics.items()}
        embeddings[mode] = feats["embeddings"].reshape(len(feats["embeddings"]), -1)
    if "mean_pose" in embeddings:
        a, b = embeddings["own"], embeddings["mean_pose"]
        change = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-12)
        out["embedding_change"] = float(change.mean())

    device = next(net.parameters()).device
    sils_list, joint_sets = [], {mode: [] for mode in JOINT_MODES}
    for index in range(min(probe_sequences, len(dataset))):
        sils, joints = dataset.load(index)
        sils, joints = sils[:probe_frames], joints[:probe_frames]
        if transform is not None:
            sils, joints = transform(index, sils, joints)
        s, j = network_inputs(sils, joints, cut=cut)
        sils_list.append(s)
        joint_sets["own"].append(j)
        joint_sets["mean_pose"].append(np.broadcast_to(pose, j.shape))
        joint_sets["shuffled"].append(_fit_length(own[other[index]], len(j)))
    x = torch.from_numpy(np.concatenate(sils_list))[None].to(device)
    lengths = [len(s) for s in sils_list]
    probe = {m: torch.from_numpy(np.concatenate(v).astype(np.float32))[None].to(device) for m, v in joint_sets.items()}
    for key, mode in (("bias", "mean_pose"), ("bias_shuffled", "shuffled")):
        out[key] = bias_reliance(net, lambda: net(x, probe["own"], seqL=lengths),
                                 lambda m=mode: net(x, probe[m], seqL=lengths))  # fmt: skip
    rows = out["bias"]
    out["keypoint_bias"] = float(np.mean([r["keypoint_bias"] for r in rows]))
    out["logit_spread"] = float(np.mean([r["logit_spread"] for r in rows]))
    return out


class ConstantJoints(torch.nn.Module):
    """A gait network that sees ``pose`` as the joints of every frame, whatever it is given: evaluates the
    control arm (trained with ``TrainConfig(joints="constant")``) with every tool written for the network."""

    def __init__(self, net: SwinGait2D, pose: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("pose", torch.as_tensor(np.asarray(pose, dtype=np.float32)), persistent=False)

    def forward(self, sils: torch.Tensor, joints: torch.Tensor | None = None, seqL=None) -> dict[str, torch.Tensor]:
        del joints  # replaced by the constant pose, which is the point of the control
        n, s = sils.shape[:2]
        return self.net(sils, self.pose.to(sils.device).expand(n, s, *self.pose.shape).clone(), seqL=seqL)
