"""IJB-B / IJB-C 1:N identification as insightface's ``ijb_1n.py`` defines it.

1. Image features are pooled into template features exactly as for 1:1 (:func:`face.eval.ijb.template_features`:
   media means summed per template, L2-normalised, float64), per scoring of :data:`face.eval.ijb.SCORINGS`
   (``ijb_1n.py`` itself uses ``Norm:True_Det:True``).
2. The gallery is the two gallery lists concatenated (IJB-C G1 + G2, IJB-B S1 + S2): one search over both,
   not G1 and G2 apart as NIST reports them. Probes are the ``probe_mixed`` templates; each probe's subject
   has exactly one gallery template, its mate (:func:`face.data.read_ijb_search`).
3. Rank-k (1, 5, 10): the mate is among the ``k`` most similar gallery templates (cosine). Ties go to the
   mate (the project's rule, :func:`face.eval.identification_metrics`; ``ijb_1n.py``'s ``argsort`` leaves
   their order unspecified).
4. TPIR at FPIR (0.01, 0.1), ``ijb_1n.py``'s definition: with ``P`` probes, the threshold is the
   ``ceil(P * fpir)``-th highest of *all* non-mate similarities (every probe against every non-mate gallery
   template, ``P * (G - 1)`` scores), and TPIR is the share of probes whose mate similarity is strictly above
   it. (NIST's FPIR counts only each probe's best non-mate score and searches with non-mated probes; this
   follows insightface so the numbers compare with the tables that use its script.)

Similarities are computed ``chunk`` probes at a time, keeping only the highest non-mate scores that any FPIR
needs, so memory stays ``chunk x G`` whatever ``P``.
"""

from __future__ import annotations

import math

import numpy as np

from face.data.ijb import IJBSearch, IJBSet
from face.eval.ijb import SCORINGS, template_features

__all__ = ["IJB_FPIRS", "IJB_RANKS", "ijb_search_metrics", "search_metrics"]

IJB_FPIRS = (0.01, 0.1)
IJB_RANKS = (1, 5, 10)


def _top_nonmates(similarity: np.ndarray, mates: np.ndarray, keep: int, best: np.ndarray) -> np.ndarray:
    """The ``keep`` highest of ``best`` and the non-mate entries of ``similarity (p, G)`` (unsorted)."""
    nonmate = similarity.copy()
    nonmate[np.arange(len(nonmate)), mates] = -np.inf
    pool = np.concatenate([best, nonmate.reshape(-1)])
    if len(pool) <= keep:
        return pool
    return np.partition(pool, len(pool) - keep)[len(pool) - keep :]


def search_metrics(
    probes: np.ndarray,
    gallery: np.ndarray,
    mates: np.ndarray,
    fpirs: tuple[float, ...] = IJB_FPIRS,
    ranks: tuple[int, ...] = IJB_RANKS,
    chunk: int = 4096,
) -> dict:
    """Rank-k and TPIR@FPIR (module docstring) of L2-normalised template features.

    Args:
        probes: ``(P, D)`` probe template features.
        gallery: ``(G, D)`` gallery template features.
        mates: ``(P,)`` the gallery row of each probe's mate.

    Returns:
        ``{"rank1": ..., "rank5": ..., "rank10": ..., "tpir_at_fpir": {"1e-02": {"tpir", "threshold"}, ...},
        "probes": P, "gallery": G}``.
    """
    probes, gallery = np.asarray(probes, np.float64), np.asarray(gallery, np.float64)
    mates = np.asarray(mates, np.int64)
    if probes.ndim != 2 or gallery.ndim != 2 or probes.shape[1] != gallery.shape[1] or mates.shape != (len(probes),):
        raise ValueError(
            f"probes (P, D), gallery (G, D) and mates (P,) needed, got {probes.shape}, {gallery.shape}, {mates.shape}"
        )
    if len(probes) == 0 or ((mates < 0) | (mates >= len(gallery))).any():
        raise ValueError(
            f"every one of the {len(probes)} probes (at least one) needs a mate among {len(gallery)} gallery rows"
        )
    needed = {fpir: math.ceil(len(probes) * fpir) for fpir in fpirs}
    keep = max(needed.values(), default=0)
    if keep > len(probes) * (len(gallery) - 1) or min(needed.values(), default=1) < 1:
        raise ValueError(f"FPIRs {fpirs} need 1 to {len(probes) * (len(gallery) - 1)} non-mate scores, i.e. {needed}")
    rank = np.empty(len(probes), np.int64)
    mate_scores = np.empty(len(probes))
    best = np.empty(0)
    for start in range(0, len(probes), chunk):
        rows = slice(start, start + chunk)
        similarity = probes[rows] @ gallery.T
        own = similarity[np.arange(len(similarity)), mates[rows]]
        mate_scores[rows] = own
        rank[rows] = (similarity > own[:, None]).sum(1)  # ties go to the mate
        best = _top_nonmates(similarity, mates[rows], keep, best)
    highest = np.sort(best)[::-1]
    result: dict = {f"rank{k}": float((rank < k).mean()) for k in ranks}
    result["tpir_at_fpir"] = {}
    for fpir, count in needed.items():
        threshold = float(highest[count - 1])
        result["tpir_at_fpir"][f"{fpir:.0e}"] = {
            "tpir": float((mate_scores > threshold).mean()),
            "threshold": threshold,
        }
    result.update(probes=len(probes), gallery=len(gallery))
    return result


def _rows(template_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Rows of ``wanted`` template ids in the sorted ``template_ids`` (all present: checked when read)."""
    return np.searchsorted(template_ids, wanted)


def ijb_search_metrics(
    features: np.ndarray,
    data: IJBSet,
    search: IJBSearch,
    scorings: dict[str, tuple[bool, bool]] = SCORINGS,
) -> dict:
    """1:N metrics of every scoring configuration from the image features ``(N, D)`` of ``data``.

    Returns:
        ``{"galleries": [...], "probes": P, "gallery": G, "scorings": {scoring: search_metrics(...)}}``.
    """
    if len(features) != len(data):
        raise ValueError(f"{len(features)} features for the {len(data)} images of {data.name}")
    out: dict = {
        "galleries": list(search.galleries),
        "probes": len(search.probe_templates),
        "gallery": len(search.gallery_templates),
        "scorings": {},
    }
    for name, (keep_norm, use_faceness) in scorings.items():
        ids, pooled = template_features(features, data.templates, data.medias, data.faceness, keep_norm, use_faceness)
        probes = pooled[_rows(ids, search.probe_templates)]
        gallery = pooled[_rows(ids, search.gallery_templates)]
        out["scorings"][name] = search_metrics(probes, gallery, search.mates)
    return out
