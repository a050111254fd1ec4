"""Margin softmax heads for face recognition: AdaFace, ArcFace, CosFace, with PartialFC-style class sampling.

All heads share one interface::

    head = build_head("adaface", embedding_size=512, num_classes=10_000)
    logits, targets = head(embeddings, labels)      # embeddings (B, D) unnormalised, labels (B,) int64
    loss = F.cross_entropy(logits, targets)

A head owns the class centres ``weight`` ``(C, D)``; the logits are ``s * cos(theta)`` between the
L2-normalised embeddings and centres, with a margin applied to each sample's own class. As in the authors'
code (CVLface, insightface's PartialFC), the margin is computed under ``no_grad`` and added to the target
cosine as a constant: the values are the margin formula's, the gradient is that of the plain scaled cosine
(``d logits / d cos = s``), which avoids the unstable derivative of ``arccos`` at ``cos = +-1``.

* :class:`CosFace`: target ``cos - m``.
* :class:`ArcFace`: target ``cos(min(theta + m, pi))``.
* :class:`AdaFace`: target ``cos(clip(theta - m * z, eps, pi - eps)) - (m + m * z)`` with the
  feature-norm quality ``z = clip(h * (|f| - mu) / (sigma + eps), -1, 1)``; ``mu``/``sigma`` are running
  means (momentum ``t_alpha``) of the batch mean / standard deviation of the norms, starting at 20 / 100,
  updated in training mode before they are used (the AdaFace paper's Eq. 8-10 and code).

Partial FC (``sample_rate < 1``): each training step keeps every class centre that is a label in the batch
(positives) plus a uniform random subset of the other centres, ``max(int(sample_rate * C), #positives)``
in all; the logits are over the kept centres (sorted by class index) and ``targets`` are the labels
re-indexed into them. ``sample_rate = 1`` (or eval mode) uses every centre and returns ``targets ==
labels``. The draw uses the global torch generator (so a checkpoint of its state makes resume exact).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HEADS", "AdaFace", "ArcFace", "CosFace", "HeadOutput", "MarginHead", "build_head", "sample_classes"]


class HeadOutput(NamedTuple):
    """``logits (B, K)`` over the ``K`` kept class centres, ``targets (B,)`` indices into them, and
    ``classes (K,)`` the class index of each logit column."""

    logits: torch.Tensor
    targets: torch.Tensor
    classes: torch.Tensor


def sample_classes(labels: torch.Tensor, num_classes: int, sample_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PartialFC's class sampling: ``(classes (K,), targets (B,))``.

    ``classes`` holds every class in ``labels`` plus uniformly drawn others, ``K = max(int(sample_rate *
    num_classes), #unique labels)``, sorted ascending; ``targets[i]`` is the position of ``labels[i]`` in
    ``classes``. With ``sample_rate >= 1`` all classes are kept and ``targets == labels``.
    """
    all_classes = torch.arange(num_classes, device=labels.device)
    if sample_rate >= 1.0:
        return all_classes, labels
    positive = torch.unique(labels)
    keep = max(int(sample_rate * num_classes), positive.numel())
    score = torch.rand(num_classes, device=labels.device)
    score[positive] = 2.0  # positives always win the top-k
    classes = torch.topk(score, keep).indices.sort().values
    return classes, torch.searchsorted(classes, labels)


class MarginHead(nn.Module):
    """Class centres plus a margin on each sample's own class; subclasses define :meth:`target_logit`.

    Args:
        embedding_size: ``D``, the width of the embeddings.
        num_classes: ``C``, the number of training identities.
        scale: ``s``, the logit scale.
        margin: ``m``.
        sample_rate: fraction of class centres used per training step (PartialFC); 1 = all.
    """

    def __init__(
        self, embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.4, sample_rate: float = 1.0
    ) -> None:
        super().__init__()
        if embedding_size < 1 or num_classes < 2:
            raise ValueError(f"need embedding_size >= 1 and num_classes >= 2, got {embedding_size}, {num_classes}")
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.scale = float(scale)
        self.margin = float(margin)
        self.sample_rate = float(sample_rate)
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.01)  # insightface's PartialFC initialisation

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, scale={self.scale}, "
            f"margin={self.margin}, sample_rate={self.sample_rate}"
        )

    def target_logit(self, cosine: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """Margin-adjusted cosine of the target class: ``cosine (B,)``, ``norms (B,)`` -> ``(B,)``."""
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        """``embeddings (B, D)`` (unnormalised), ``labels (B,)`` class indices -> :class:`HeadOutput`."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must be (B, {self.embedding_size}), got {tuple(embeddings.shape)}")
        if labels.shape != embeddings.shape[:1]:
            raise ValueError(f"labels must be ({embeddings.shape[0]},), got {tuple(labels.shape)}")
        labels = labels.long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes}), got range [{labels.min()}, {labels.max()}]")
        rate = self.sample_rate if self.training else 1.0
        classes, targets = sample_classes(labels, self.num_classes, rate)
        weight = self.weight if rate >= 1.0 else self.weight[classes]
        dtype = torch.promote_types(embeddings.dtype, torch.float32)  # margins in >= float32, also under autocast
        embeddings = embeddings.to(dtype)
        norms = embeddings.norm(dim=1).clamp_min(1e-8)
        cosine = F.linear(embeddings / norms[:, None], F.normalize(weight.to(dtype), dim=1)).clamp(-1.0, 1.0)
        rows = torch.arange(len(targets), device=targets.device)
        with torch.no_grad():
            shift = self.target_logit(cosine[rows, targets], norms) - cosine[rows, targets]
        margin = torch.zeros_like(cosine).index_put_((rows, targets), shift)
        return HeadOutput(self.scale * (cosine + margin), targets, classes)


class CosFace(MarginHead):
    """CosFace (large margin cosine loss): target ``cos - m``; defaults ``s = 64, m = 0.4``."""

    def target_logit(self, cosine: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        return cosine - self.margin


class ArcFace(MarginHead):
    """ArcFace (additive angular margin): target ``cos(min(theta + m, pi))``; defaults ``s = 64, m = 0.5``.

    The angle is capped at ``pi`` so the target logit stays monotone in ``theta``.
    """

    def __init__(
        self, embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.5, sample_rate: float = 1.0
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, margin, sample_rate)

    def target_logit(self, cosine: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        return torch.cos((torch.arccos(cosine) + self.margin).clamp(max=math.pi))


class AdaFace(MarginHead):
    """AdaFace (quality-adaptive margin, CVPR 2022); defaults ``s = 64, m = 0.4, h = 0.333, t_alpha = 0.01``.

    Buffers ``batch_mean`` / ``batch_std`` (start 20 / 100) are running statistics of the embedding norms,
    updated in training mode with momentum ``t_alpha`` (a batch of one has no spread: then only the mean
    moves). Norms are clipped to ``[0.001, 100]`` and detached, as in the authors' code.
    """

    eps = 1e-3

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.4,
        h: float = 0.333,
        t_alpha: float = 0.01,
        sample_rate: float = 1.0,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, margin, sample_rate)
        self.h = float(h)
        self.t_alpha = float(t_alpha)
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, h={self.h}, t_alpha={self.t_alpha}"

    def quality(self, norms: torch.Tensor) -> torch.Tensor:
        """``z (B,)`` in ``[-1, 1]``; updates the running norm statistics first when training."""
        norms = norms.detach().clamp(0.001, 100.0)
        if self.training:
            alpha = self.t_alpha
            self.batch_mean.mul_(1 - alpha).add_(alpha * norms.mean())
            if norms.numel() > 1:
                self.batch_std.mul_(1 - alpha).add_(alpha * norms.std())
        return ((norms - self.batch_mean) / (self.batch_std + self.eps) * self.h).clamp(-1.0, 1.0)

    def target_logit(self, cosine: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        z = self.quality(norms)
        theta = (torch.arccos(cosine) - self.margin * z).clamp(self.eps, math.pi - self.eps)  # g_angle
        return torch.cos(theta) - (self.margin + self.margin * z)  # g_add


#: name -> head class, for configs
HEADS: dict[str, type[MarginHead]] = {"adaface": AdaFace, "arcface": ArcFace, "cosface": CosFace}


def build_head(name: str, embedding_size: int, num_classes: int, **kwargs) -> MarginHead:
    """A head by name (``adaface``, ``arcface``, ``cosface``); ``kwargs`` are its constructor's."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of {', '.join(HEADS)}")
    from kprpe.config import check_keys, constructor_keys

    cls = HEADS[name]
    allowed = constructor_keys(cls) - {"embedding_size", "num_classes"}
    return cls(embedding_size, num_classes, **check_keys(f"head ({name})", kwargs, allowed))
