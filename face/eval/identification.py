"""Closed-set identification: rank-k accuracy of probes against a gallery with distractors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["RANKS", "identification_metrics"]

RANKS = (1, 5, 20)


def identification_metrics(
    probe: torch.Tensor,
    probe_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    ranks: tuple[int, ...] = RANKS,
) -> dict:
    """Rank-k accuracy by cosine similarity.

    A probe's rank is the number of gallery entries scoring strictly higher than its best-scoring true match
    (ties go to the match); it is a hit at rank ``k`` when that number is below ``k``. Distractors (label
    -100, or any label no probe has) only compete. A probe whose identity is absent from the gallery
    counts as a miss at every rank (counted in ``without_match``).

    Args:
        probe: ``(P, D)`` embeddings; ``probe_labels``: ``(P,)``.
        gallery: ``(G, D)`` embeddings; ``gallery_labels``: ``(G,)``.

    Returns:
        ``{"rank1": ..., "rank5": ..., "rank20": ..., "probes": P, "gallery": G, "without_match": n}``.
    """
    if probe.shape[0] != len(probe_labels) or gallery.shape[0] != len(gallery_labels):
        raise ValueError("embeddings and labels must have the same length")
    similarity = F.normalize(probe.double(), dim=1) @ F.normalize(gallery.double(), dim=1).T  # (P, G)
    match = probe_labels[:, None] == gallery_labels[None]  # (P, G)
    best_match = torch.where(match, similarity, torch.full_like(similarity, -torch.inf)).amax(1)  # (P,)
    rank = (similarity > best_match[:, None]).sum(1)
    has_match = match.any(1)
    result: dict = {f"rank{k}": float(((rank < k) & has_match).double().mean()) for k in ranks}
    result.update(probes=len(probe_labels), gallery=len(gallery_labels), without_match=int((~has_match).sum()))
    return result
