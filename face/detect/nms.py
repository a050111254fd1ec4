"""Non-maximum suppression with the exact semantics of ``torchvision.ops.nms`` / ``batched_nms``.

Why this exists: MTCNN from ``facenet-pytorch`` calls ``torchvision.ops.boxes.batched_nms``, and the PyPI
torchvision wheel for a torch version is built against that version's CUDA wheel: beside the CPU wheel of
torch it fails at import (``RuntimeError: operator torchvision::nms does not exist``). These functions are
used only when torchvision cannot be imported (see :mod:`face.detect.mtcnn`); they reproduce torchvision's
CPU kernel step by step, so the detector gives the same boxes either way:

* boxes ``(x1, y1, x2, y2)``, area ``(x2 - x1) * (y2 - y1)`` (no ``+1``), intersection clamped at 0;
* boxes visited by decreasing score, ties by increasing index (the kernel's stable sort); a box is dropped
  when its IoU with an already kept box is ``> iou_threshold``; IoU computed in the boxes' dtype,
  ``inter / (area_i + area_j - inter)``, and compared with the threshold in float64 (as C++ compares a
  float with a double);
* :func:`batched_nms` takes the same two routes as torchvision: the coordinate-offset trick for small
  inputs and one NMS per category above ``4000`` box coordinates on the CPU (``100_000`` elsewhere).

``tests/face/detect/test_nms.py`` checks both against a brute-force NMS, and bit for bit against
torchvision (0.29, ties included) wherever torchvision imports.

The greedy loop runs in NumPy on the CPU (``O(kept * N)``); results come back on the boxes' device.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["batched_nms", "nms"]


def _check(boxes: torch.Tensor, scores: torch.Tensor) -> None:
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) as (x1, y1, x2, y2), got shape {tuple(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must be (N,) = ({boxes.shape[0]},), got shape {tuple(scores.shape)}")
    if not boxes.is_floating_point() or boxes.dtype != scores.dtype:
        raise ValueError(f"boxes and scores must share one floating dtype, got {boxes.dtype} and {scores.dtype}")


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (``torchvision.ops.nms``).

    Args:
        boxes: ``(N, 4)`` finite boxes ``(x1, y1, x2, y2)``.
        scores: ``(N,)`` scores, same dtype as ``boxes``.
        iou_threshold: a box whose IoU with a kept, higher-scored box is ``> iou_threshold`` is dropped.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, by decreasing score.
    """
    _check(boxes, scores)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.sort(dim=0, descending=True, stable=True)[1]
    ranked = boxes[order].detach().cpu().numpy()  # (N, 4), highest score first
    x1, y1, x2, y2 = (np.ascontiguousarray(ranked[:, c]) for c in range(4))
    areas = (x2 - x1) * (y2 - y1)
    count = ranked.shape[0]
    suppressed = np.zeros(count, dtype=bool)
    kept: list[int] = []
    for i in range(count):
        if suppressed[i]:
            continue
        kept.append(i)
        rest = slice(i + 1, count)
        width = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        height = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = width * height
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 (two empty boxes): NaN, never suppresses
            overlap = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest] |= overlap.astype(np.float64) > iou_threshold
    return order[torch.as_tensor(kept, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category (``torchvision.ops.batched_nms``): boxes of different ``idxs`` never interact.

    Args:
        boxes: ``(N, 4)`` finite boxes ``(x1, y1, x2, y2)``.
        scores: ``(N,)`` scores, same dtype as ``boxes``.
        idxs: ``(N,)`` integer category of each box (MTCNN: the image of the batch it was found on).
        iou_threshold: as in :func:`nms`.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, by decreasing score.
    """
    _check(boxes, scores)
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must be (N,) = ({boxes.shape[0]},), got shape {tuple(idxs.shape)}")
    if boxes.numel() > (4000 if boxes.device.type == "cpu" else 100_000):
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for category in torch.unique(idxs):
            members = torch.where(idxs == category)[0]
            keep_mask[members[nms(boxes[members], scores[members], iou_threshold)]] = True
        keep = torch.where(keep_mask)[0]
        return keep[scores[keep].sort(descending=True)[1]]
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    # Offsets larger than any coordinate put each category's boxes in a region of their own.
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)
