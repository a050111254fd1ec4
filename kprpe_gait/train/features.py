"""Test-time features, as OpenGait's ``inference`` gives them to its evaluators.

Every sequence is used whole and in order (OpenGait's ``all_ordered``; the first ``max_frames``
frames when it is longer), sequences are packed along time with ``seqL`` into batches of at most
``batch_frames`` frames, and the embedding before the BNNeck is kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from kprpe_gait.inputs import network_inputs
from kprpe_gait.models import SwinGait2D

from .dataset import GaitDataset, read_partition

__all__ = ["extract_features", "uses_joints"]


def uses_joints(net: torch.nn.Module) -> bool:
    """Whether a network takes joints: KP-RPE models (``rel_pos="kprpe"``) do, silhouette-only ones do not."""
    return getattr(net, "rel_pos", None) == "kprpe"


@torch.no_grad()
def extract_features(
    net: SwinGait2D,
    dataset_root: str | os.PathLike[str],
    ids: Iterable[str] | None = None,
    partition: str | os.PathLike[str] | None = None,
    split: str = "TEST_SET",
    max_frames: int = 720,
    batch_frames: int = 720,
    cut: int | None = 10,
    device: torch.device | str | None = None,
    progress: bool = True,
    transform: Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    replace_joints: Callable[[int, np.ndarray], np.ndarray] | None = None,
    joints: bool | None = None,
) -> dict[str, object]:
    """Embeddings of every sequence of some identities under an OpenGait pickle root.

    Args:
        net: the network (put in eval mode here).
        dataset_root: ``<id>/<type>/<view>/`` folders.
        ids: identities to embed; when ``None``, ``partition[split]``.
        partition: partition JSON (needed when ``ids`` is ``None``).
        split: partition list used when ``ids`` is ``None``.
        max_frames: frames used per sequence at most (the first ones; OpenGait's ``frames_all_limit``).
        batch_frames: frames per forward pass at most (sequences are packed with ``seqL``).
        cut: side cut, as in training.
        device: where to run (the network's device by default).
        progress: show a tqdm bar.
        transform: ``(index, sils (T, H, W) uint8, joints (T, J, 3) px or None) -> (sils, joints)`` applied to
            each stored sequence first (e.g. a controlled translation, :mod:`kprpe_gait.eval.reliance`).
        replace_joints: ``(index, joints (T, J, 3) in [0, 1]) -> joints`` applied to the network's joint
            input (e.g. a constant pose, another sequence's joints: the reliance probe).
        joints: read and feed joints; ``None``: only when the network uses them (``rel_pos="kprpe"``).
            ``False`` reads silhouettes only (no ``01-joints.pkl`` needed; :class:`GaitDataset`).

    Returns:
        ``{"embeddings": (N, c, p) float32, "labels": [id], "types": [type], "views": [view]}``,
        sequences sorted by ``(id, type, view)``.
    """
    if ids is None:
        if partition is None:
            raise ValueError("pass the identities (ids=) or a partition file to read them from")
        ids = read_partition(partition)[split]
    if max_frames < 1 or batch_frames < 1:
        raise ValueError(f"max_frames and batch_frames must be >= 1, got {max_frames}, {batch_frames}")
    if joints is None:
        joints = uses_joints(net)
    dataset = GaitDataset(dataset_root, ids=ids, cache=False, joints=joints)
    device = torch.device(device) if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()

    outputs: list[np.ndarray] = []
    pending: list[tuple[np.ndarray, np.ndarray | None]] = []

    def flush() -> None:
        if not pending:
            return
        sils = torch.from_numpy(np.concatenate([s for s, _ in pending]))[None].to(device)  # (1, sum T, H, W)
        frame_joints = None
        if joints:
            frame_joints = torch.from_numpy(np.concatenate([j for _, j in pending]))[None].to(device)
        lengths = [len(s) for s, _ in pending]
        outputs.append(net(sils, frame_joints, seqL=lengths)["embeddings"].float().cpu().numpy())
        pending.clear()

    try:
        for index in tqdm(range(len(dataset)), desc="features", disable=not progress, dynamic_ncols=True):
            sils, seq_joints = dataset.load(index)
            sils = sils[:max_frames]
            seq_joints = None if seq_joints is None else seq_joints[:max_frames]
            if transform is not None:
                sils, seq_joints = transform(index, sils, seq_joints)
            sequence = network_inputs(sils, seq_joints, cut=cut, name=str(dataset.folder(index)))
            if replace_joints is not None and sequence[1] is not None:
                replaced = np.ascontiguousarray(replace_joints(index, sequence[1]), dtype=np.float32)
                sequence = (sequence[0], replaced)
            if pending and sum(len(s) for s, _ in pending) + len(sequence[0]) > batch_frames:
                flush()
            pending.append(sequence)
        flush()
    finally:
        net.train(was_training)
    return {
        "embeddings": np.concatenate(outputs).astype(np.float32),
        "labels": [k.identity for k in dataset.keys],
        "types": [k.seq_type for k in dataset.keys],
        "views": [k.view for k in dataset.keys],
    }
