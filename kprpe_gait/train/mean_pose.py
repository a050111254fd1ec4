"""The mean pose of a set of sequences in the network's input frame: the constant joints of the control arm
and of the reliance probe (:mod:`kprpe_gait.eval.reliance`)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from kprpe_gait.inputs import network_inputs

from .dataset import GaitDataset

__all__ = ["mean_pose"]


def mean_pose(
    dataset_root: str | os.PathLike[str], ids: Iterable[str], cut: int = 10, max_sequences: int | None = None
) -> np.ndarray:
    """``(J, 3)`` float32: the average pose of the sequences of ``ids`` in the network's input frame.

    Each joint is the mean of its confident positions (after :func:`kprpe_gait.inputs.network_inputs`,
    no augmentation), confidence 1; a joint never seen confidently gets confidence 0.
    """
    dataset = GaitDataset(dataset_root, ids=list(ids), cache=False)
    count = len(dataset) if max_sequences is None else min(max_sequences, len(dataset))
    if count == 0:
        raise ValueError(f"{dataset_root}: no sequences to average a pose over")
    total, seen = None, None
    for index in range(count):
        sils, joints = dataset.load(index)
        _, normal = network_inputs(sils, joints, cut=cut, name=str(dataset.folder(index)))
        if normal is None:
            raise ValueError(f"{dataset.folder(index)}: no joints to average")
        confident = (normal[..., 2] > 0)[..., None]
        part = np.where(confident, normal[..., :2], 0.0).sum(0)
        total = part if total is None else total + part
        seen = confident.sum(0) if seen is None else seen + confident.sum(0)
    pose = np.zeros((total.shape[0], 3), dtype=np.float32)
    have = seen[:, 0] > 0
    pose[have, :2] = total[have] / seen[have]
    pose[have, 2] = 1.0
    return pose
