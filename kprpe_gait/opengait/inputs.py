"""From OpenGait's collated batch to the network's tensors: checks, joint-aware transform, packing.

OpenGait's collate gives, per modality, either a list of ``n`` arrays with the same frame count
(``fixed`` samplers, ``seqL is None``) or one array of several sequences concatenated along time
with their lengths in ``seqL`` (``(1, k)``; ``all``/``unfixed`` samplers). Modality 0 is the
silhouettes ``(T, H, W)`` (``00-sils.pkl``), modality 1 the joints ``(T, J, 3)`` in pixels of the
same frame (``01-joints.pkl``). Each sequence goes through one transform call that sees both, so
random flips, rotations and warps are shared (see :class:`kprpe_gait.opengait.transforms.SilJointTransform`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from kprpe_gait.inputs import check_sequence, zero_missing_joints

__all__ = ["SeqTransform", "joint_overlay", "prepare_batch", "sequence_names", "split_packed"]

#: ``(sils (T, H, W), joints (T, J, 3) | None) -> (sils (T, h, w) float in [0, 1], joints (T, J, 3) in [0, 1] | None)``
SeqTransform = Callable[[np.ndarray, "np.ndarray | None"], "tuple[np.ndarray, np.ndarray | None]"]


def split_packed(array: np.ndarray, lengths: Sequence[int], what: str) -> list[np.ndarray]:
    """Split frames concatenated along axis 0 into sequences of the given lengths."""
    if sum(lengths) != len(array):
        raise ValueError(f"seqL sums to {sum(lengths)} frames but the packed {what} hold {len(array)}")
    return np.split(array, np.cumsum(lengths)[:-1].tolist())


def _check_sequence(sils: np.ndarray, joints: np.ndarray | None, num_joints: int, name: str) -> None:
    sils, joints = np.asarray(sils), None if joints is None else np.asarray(joints)
    if sils.ndim == 3 and sils.shape[-1] == 3 and sils.shape[-2] == num_joints:
        raise ValueError(
            f"{name}: modality 0 has shape {sils.shape}, which looks like joints; silhouettes must come "
            "first (pickles are loaded sorted by name: 00-sils.pkl, 01-joints.pkl)"
        )
    check_sequence(sils, joints, name)
    if joints is not None and joints.shape[1] != num_joints:
        raise ValueError(f"{name}: the model expects {num_joints} joints per frame, the data has {joints.shape[1]}")


def prepare_batch(
    seqs_batch: Sequence[Sequence[np.ndarray]],
    seqL_batch: np.ndarray | None,
    transform: SeqTransform,
    *,
    num_joints: int,
    use_joints: bool,
    names: Sequence[str],
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None, list[int] | None]:
    """Check, transform and stack one collated batch.

    Args:
        seqs_batch: OpenGait's ``inputs[0]``: one entry per modality (silhouettes, then joints).
        seqL_batch: OpenGait's ``inputs[4]``: ``None`` or ``(1, k)`` lengths of packed sequences.
        transform: applied once per sequence to silhouettes and joints together.
        num_joints: joints per frame the network expects.
        use_joints: whether the network consumes joints (they are then required); when ``False``,
            joints present in the batch are still checked and transformed but not returned.
        names: ``"id-type-view"`` per sequence, for error messages.
        device: where the tensors go.

    Returns:
        ``sils`` ``(n, s, h, w)`` float in [0, 1]; ``joints`` ``(n, s, J, 3)`` with ``x, y`` in [0, 1]
        of that frame and missing joints zeroed, or ``None``; ``seqL`` as a list or ``None``. With
        packed input ``n == 1`` and ``s == sum(seqL)``.
    """
    if len(seqs_batch) not in (1, 2):
        raise ValueError(
            f"expected silhouettes and optionally joints, got {len(seqs_batch)} modalities: "
            "set data_cfg.data_in_use to [true, true] (sils + joints) or [true, false] (sils only)"
        )
    if use_joints and len(seqs_batch) < 2:
        raise ValueError(
            "this model needs joints but the batch holds silhouettes only: set data_cfg.data_in_use: "
            "[true, true] and give every sequence a 01-joints.pkl"
        )
    has_joints = len(seqs_batch) == 2
    if seqL_batch is None:
        lengths = None
        sils_list = list(seqs_batch[0])
        joints_list = list(seqs_batch[1]) if has_joints else [None] * len(sils_list)
    else:
        lengths = [int(v) for v in np.asarray(seqL_batch).reshape(-1)]
        if len(seqs_batch[0]) != 1:
            raise ValueError(f"packed batches hold one array per modality, got {len(seqs_batch[0])}")
        sils_list = split_packed(np.asarray(seqs_batch[0][0]), lengths, "silhouettes")
        joints_list = (split_packed(np.asarray(seqs_batch[1][0]), lengths, "joints") if has_joints
                       else [None] * len(sils_list))  # fmt: skip
    if len(names) != len(sils_list):
        raise ValueError(f"{len(sils_list)} sequences in the batch but {len(names)} names")

    out_sils: list[np.ndarray] = []
    out_joints: list[np.ndarray] = []
    for sils, joints, name in zip(sils_list, joints_list, names):
        _check_sequence(sils, joints, num_joints, name)
        sils_t, joints_t = transform(np.asarray(sils), None if joints is None else np.asarray(joints))
        out_sils.append(np.asarray(sils_t, dtype=np.float32))
        if joints_t is not None:
            out_joints.append(zero_missing_joints(joints_t))  # whatever the transform, as network_inputs does

    if lengths is None:
        sils_np = np.stack(out_sils)
        joints_np = np.stack(out_joints) if out_joints else None
    else:
        sils_np = np.concatenate(out_sils)[None]
        joints_np = np.concatenate(out_joints)[None] if out_joints else None
    sils_tensor = torch.from_numpy(np.ascontiguousarray(sils_np)).to(device)
    joints_tensor = None
    if use_joints and joints_np is not None:
        joints_tensor = torch.from_numpy(np.ascontiguousarray(joints_np)).to(device)
    return sils_tensor, joints_tensor, lengths


def joint_overlay(sils: torch.Tensor, joints: torch.Tensor | None, max_frames: int = 8) -> torch.Tensor:
    """Silhouette frames with their confident joints drawn in red, for TensorBoard.

    Args:
        sils: ``(s, h, w)`` in [0, 1].
        joints: ``(s, J, 3)`` with ``x, y`` in [0, 1] of the frame, or ``None``.
        max_frames: at most this many leading frames are drawn.

    Returns:
        ``(min(s, max_frames), 3, h, w)`` float in [0, 1].
    """
    sils = sils[:max_frames].detach().float().cpu()
    image = sils[:, None].repeat(1, 3, 1, 1) * 0.6
    if joints is None:
        return image
    joints = joints[:max_frames].detach().float().cpu()
    s, h, w = sils.shape
    cols = (joints[..., 0] * w).floor().long()
    rows = (joints[..., 1] * h).floor().long()
    visible = (joints[..., 2] > 0) & (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    frame = torch.arange(s)[:, None].expand_as(cols)
    f, r, c = frame[visible], rows[visible], cols[visible]
    image[f, 0, r, c] = 1.0
    image[f, 1, r, c] = 0.0
    image[f, 2, r, c] = 0.0
    return image


def sequence_names(labs: Sequence[Any], typs: Sequence[Any], vies: Sequence[Any]) -> list[str]:
    """``"id-type-view"`` for each sequence of a batch (OpenGait's labels are indices here)."""
    return [f"{lab}-{typ}-{vie}" for lab, typ, vie in zip(labs, typs, vies)]
