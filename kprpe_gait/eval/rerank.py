"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with the numerics of OpenGait's ``re_ranking``.

OpenGait's ``HID_submission`` (and the MGR'24 writer of Gait3D-Benchmark) re-rank with ``k1 = k2 = 6``
and ``lambda = 0.3`` on the distances between *all* test sequences, probes first::

    dist = pairwise_distance(concat(probe, gallery), concat(probe, gallery), metric)   # (P+G, P+G)
    reranked = k_reciprocal_rerank(dist, num_probes=P)                                  # (P, G)

The steps and their number types follow OpenGait's function exactly (float16 neighbour encodings,
numpy's default ``argsort`` for the neighbour lists), so the re-ranked matrix equals its output on
the same distances. Only the final ranking of the callers (:func:`kprpe_gait.eval.submission.top_k_labels`)
breaks exact ties, by gallery position; OpenGait's ``np.argsort`` leaves their order unspecified.

Memory: ``(P+G)^2`` float32 distances plus two float16 matrices of that size (GREW's 24,000 test
sequences: about 4.6 GB).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RERANK_K1", "RERANK_K2", "RERANK_LAMBDA", "k_reciprocal_rerank"]

#: OpenGait's ``HID_submission`` settings
RERANK_K1 = 6
RERANK_K2 = 6
RERANK_LAMBDA = 0.3


def _check_inputs(dist: np.ndarray, num_probes: int, k1: int, k2: int, lambda_value: float) -> None:
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1] or not np.issubdtype(dist.dtype, np.floating):
        raise ValueError(f"dist must be a square floating-point (P+G, P+G) matrix, got {dist.shape} {dist.dtype}")
    if not np.isfinite(dist).all():
        raise ValueError("dist holds NaN or inf values")
    if isinstance(num_probes, bool) or not 1 <= int(num_probes) < dist.shape[0]:
        raise ValueError(
            f"num_probes must be in [1, {dist.shape[0] - 1}] (probes first, then gallery), got {num_probes}"
        )
    if not 1 <= k1 < dist.shape[0] or not 1 <= k2 <= dist.shape[0]:
        raise ValueError(f"k1 must be in [1, {dist.shape[0] - 1}] and k2 in [1, {dist.shape[0]}], got {k1}, {k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")


def _column_normalized(dist: np.ndarray) -> np.ndarray:
    """``(dist / column maxima)`` transposed: row ``i`` holds the distances *to* sequence ``i``, scaled."""
    scale = dist.max(axis=0)
    if (scale <= 0).any():
        raise ValueError("every sequence needs a positive distance to some other one (identical features?)")
    return np.transpose(dist / scale)


def _reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """The ``k``-reciprocal neighbours of ``i``: among its ``k + 1`` nearest, those that have ``i`` among theirs."""
    forward = rank[i, : k + 1]
    has_i = np.where(rank[forward, : k + 1] == i)[0]  # rows of the backward lists that contain i
    return forward[has_i]


def _expanded_neighbours(rank: np.ndarray, i: int, k1: int) -> np.ndarray:
    """``R*(i, k1)``: the k1-reciprocal set, grown by the half-size sets of its members that overlap it by > 2/3."""
    core = _reciprocal(rank, i, k1)
    half = int(np.around(k1 / 2))
    expanded = core
    for candidate in core:
        theirs = _reciprocal(rank, int(candidate), half)
        if len(np.intersect1d(theirs, core)) > 2 / 3 * len(theirs):
            expanded = np.append(expanded, theirs)
    return np.unique(expanded)


def _neighbour_encoding(scaled: np.ndarray, rank: np.ndarray, k1: int) -> np.ndarray:
    """``V`` (float16): row ``i`` spreads weights ``exp(-d)`` (summing to 1) over ``R*(i, k1)``."""
    encoding = np.zeros_like(scaled).astype(np.float16)
    for i in range(scaled.shape[0]):
        members = _expanded_neighbours(rank, i, k1)
        weight = np.exp(-scaled[i, members])
        encoding[i, members] = weight / np.sum(weight)
    return encoding


def _query_expansion(encoding: np.ndarray, rank: np.ndarray, k2: int) -> np.ndarray:
    """Each row replaced by the mean of the rows of its ``k2`` nearest (itself included); float16."""
    if k2 == 1:
        return encoding
    expanded = np.zeros_like(encoding, dtype=np.float16)
    for i in range(encoding.shape[0]):
        expanded[i, :] = np.mean(encoding[rank[i, :k2], :], axis=0)
    return expanded


def _jaccard_distances(encoding: np.ndarray, num_probes: int) -> np.ndarray:
    """``(P, P+G)`` float16 Jaccard distances ``1 - m / (2 - m)``, ``m`` = summed element-wise minima.

    The minima are summed column by column in float16, in increasing column order, and only over
    the rows where the column is non-zero, as OpenGait's loop does (the order fixes the rounding).
    """
    num_all = encoding.shape[0]
    rows_of_column = [np.where(encoding[:, c] != 0)[0] for c in range(num_all)]
    jaccard = np.zeros((num_probes, num_all), dtype=np.float16)
    for i in range(num_probes):
        overlap = np.zeros(shape=[1, num_all], dtype=np.float16)
        for c in np.where(encoding[i, :] != 0)[0]:
            rows = rows_of_column[c]
            overlap[0, rows] = overlap[0, rows] + np.minimum(encoding[i, c], encoding[rows, c])
        jaccard[i] = 1 - overlap / (2 - overlap)
    return jaccard


def k_reciprocal_rerank(
    dist: np.ndarray,
    num_probes: int,
    k1: int = RERANK_K1,
    k2: int = RERANK_K2,
    lambda_value: float = RERANK_LAMBDA,
) -> np.ndarray:
    """Re-ranked ``(P, G)`` probe-to-gallery distances from the ``(P+G, P+G)`` distances of all sequences.

    Args:
        dist: distances between all sequences, the ``num_probes`` probes first, then the gallery
            (OpenGait: ``cuda_dist(feat, feat)`` with ``feat = concat(probe, gallery)``).
        num_probes: ``P``.
        k1: size of the k-reciprocal neighbourhoods.
        k2: neighbours averaged in the query expansion (1: none).
        lambda_value: weight of the original (column-scaled) distance; ``1 - lambda_value`` weighs
            the Jaccard distance.

    Returns:
        ``(P, G)`` float32, equal to OpenGait's ``re_ranking(dist, P, k1, k2, lambda_value)``.
    """
    dist = np.asarray(dist)
    _check_inputs(dist, num_probes, k1, k2, lambda_value)
    num_probes = int(num_probes)
    scaled = _column_normalized(dist)
    rank = np.argsort(scaled).astype(np.int32)  # numpy's default sort, as OpenGait: the same neighbours on ties
    encoding = _query_expansion(_neighbour_encoding(scaled, rank, k1), rank, k2)
    jaccard = _jaccard_distances(encoding, num_probes)
    lam = float(lambda_value)  # a Python float keeps the float16 Jaccard term float16, as in OpenGait
    final = jaccard * (1 - lam) + scaled[:num_probes] * lam
    return final[:, num_probes:]
