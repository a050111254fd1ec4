"""OpenGait's two SwinGait losses, on part features ``(n, c, p)``.

* :class:`TripletLoss`: per part, Euclidean distances between all samples of the batch; every
  (anchor, positive, negative) triple (the anchor counts as its own positive, as in OpenGait) gives
  ``relu(d(a, p) - d(a, n) + margin)``; each part averages its non-zero terms, and the loss is the
  mean over parts.
* :class:`CrossEntropyLoss`: the BNNeck's cosine logits times ``scale`` (16), cross-entropy with
  label smoothing 0.1 for every part, averaged over samples and parts.

Both return ``(loss, info)`` where ``info`` holds detached scalars for logging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CrossEntropyLoss", "TripletLoss", "part_distances"]


def part_distances(x: torch.Tensor) -> torch.Tensor:
    """``(p, n, c)`` -> ``(p, n, n)`` Euclidean distances (``sqrt(relu(|x|^2 + |y|^2 - 2 x.y))``)."""
    sq = x.pow(2).sum(-1)
    d2 = sq[:, :, None] + sq[:, None, :] - 2 * x @ x.transpose(1, 2)
    return F.relu(d2).sqrt()


def _check(features: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if features.dim() != 3:
        raise ValueError(f"{name} must be (n, c, p), got {tuple(features.shape)}")
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must be (n,) with n = {features.shape[0]}, got {tuple(labels.shape)}")


class TripletLoss(nn.Module):
    """Batch-all triplet loss with OpenGait's non-zero averaging (module docstring)."""

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        _check(embeddings, labels, "embeddings")
        x = embeddings.permute(2, 0, 1).float()  # (p, n, c)
        dist = part_distances(x)  # (p, n, n)
        same = labels[:, None] == labels[None, :]  # (n, n)
        terms = F.relu(dist[:, :, :, None] - dist[:, :, None, :] + self.margin)  # (p, a, pos, neg)
        valid = same[:, :, None] & ~same[:, None, :]  # (a, pos, neg)
        terms = terms * valid
        count = (terms != 0).flatten(1).sum(-1).float()  # (p,)
        per_part = terms.flatten(1).sum(-1) / (count + 1e-9)
        per_part = torch.where(count > 0, per_part, torch.zeros_like(per_part))
        info = {
            "triplet/loss": per_part.mean().item(),
            "triplet/nonzero": count.mean().item(),
            "triplet/mean_dist": dist.mean().item(),
        }
        return per_part.mean(), info

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


class CrossEntropyLoss(nn.Module):
    """Scaled, label-smoothed cross-entropy on part logits ``(n, classes, p)`` (module docstring)."""

    def __init__(self, scale: float = 16.0, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.scale = scale
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        _check(logits, labels, "logits")
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise ValueError(
                f"labels must be class indices in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}"
            )
        logits = logits.float()
        target = labels[:, None].expand(-1, logits.shape[2])  # (n, p)
        loss = F.cross_entropy(logits * self.scale, target, label_smoothing=self.label_smoothing)
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        return loss, {"softmax/loss": loss.item(), "softmax/accuracy": accuracy.item()}

    def extra_repr(self) -> str:
        return f"scale={self.scale}, label_smoothing={self.label_smoothing}"
