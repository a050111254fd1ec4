"""Verification metrics: 10-fold accuracy (the LFW protocol) and TAR at FAR from the ROC.

* Accuracy: pairs are split into 10 consecutive folds (the first ``N % 10`` folds one pair longer, as
  scikit-learn's unshuffled ``KFold`` that insightface uses); on 9 folds the threshold on the squared L2
  distance of the normalised embeddings with the best accuracy is chosen from ``0, 0.01, ..., 3.99`` (the
  first best on ties), a pair is "same" when ``distance < threshold``, and accuracy is measured on the 10th.
  Reported: mean and (population) standard deviation over the folds, and each fold's threshold.
* TAR@FAR: the ROC of the cosine similarity (every distinct score is a threshold, "same" when
  ``score >= threshold``), read at the ROC point whose FAR is *nearest* to the target; where several points
  are equally near (a vertical step of the ROC), the last one, the highest TAR, is taken (insightface's
  ``ijb_11.py`` flips the arrays before its ``min``, so it takes the same point). Two readouts
  (:data:`READOUTS`):

  - ``"field"`` (the default): the ROC as ``sklearn.metrics.roc_curve`` returns it with its default
    ``drop_intermediate=True``, which insightface and CVLface read. It keeps the first and last points and
    every point where the step in false or in true positives changes (a nonzero second difference of
    either), and drops the points in between on a straight stretch. A dropped point can be the nearest one to
    the target; the field then reads a kept corner (e.g. labels 1, 0, 0, 0, 1, 0 by descending score at FAR
    0.5: the full ROC has (0.5, 0.5), the kept corners nearest are (0.75, 0.5) and (0.75, 1.0): TAR 1.0).
  - ``"full"``: every point of the ROC: the TAR at the FAR truly nearest the target. It differs from the
    field's readout only where that point lies inside a straight stretch that sklearn drops.

  Scores are compared in float64. The FAR actually reached is reported beside the TAR; a target below
  ``1 / negatives`` cannot be resolved by the set, and ``resolved`` says so.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "READOUTS",
    "THRESHOLDS",
    "kfold_accuracy",
    "pair_distances",
    "roc_curve",
    "tar_at_far",
    "verification_metrics",
]

#: Distance thresholds of the LFW protocol (insightface ``np.arange(0, 4, 0.01)``).
THRESHOLDS = np.arange(0, 4, 0.01)
FARS = (1e-4, 1e-3, 1e-2)
#: TAR@FAR readouts: ``"field"`` (sklearn's ``drop_intermediate`` ROC, as insightface / CVLface) or ``"full"``
READOUTS = ("field", "full")


def pair_distances(embeddings: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(2N, D)`` embeddings (pair ``k`` = rows ``2k, 2k + 1``) -> ``(N,)`` squared L2 of the normalised rows."""
    e = torch.as_tensor(embeddings, dtype=torch.float64)
    if e.dim() != 2 or e.shape[0] % 2:
        raise ValueError(f"embeddings must be (2N, D) with consecutive pairs, got shape {tuple(e.shape)}")
    e = torch.nn.functional.normalize(e, dim=1)
    return (e[0::2] - e[1::2]).square().sum(1).numpy()


def _accuracy(distances: np.ndarray, issame: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(T,)`` accuracy of ``distance < threshold`` for each threshold."""
    return ((distances[:, None] < thresholds[None]) == issame[:, None]).mean(0)


def kfold_accuracy(
    distances: np.ndarray, issame: np.ndarray, folds: int = 10, thresholds: np.ndarray = THRESHOLDS
) -> dict:
    """The LFW protocol on ``(N,)`` distances: threshold from ``folds - 1`` folds, accuracy on the held-out one.

    Returns:
        ``{"accuracy", "accuracy_std", "fold_accuracies", "fold_thresholds"}``.
    """
    distances = np.asarray(distances, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    if distances.shape != issame.shape or distances.ndim != 1:
        raise ValueError(f"distances {distances.shape} and issame {issame.shape} must be (N,) alike")
    if len(distances) < folds:
        raise ValueError(f"{len(distances)} pairs cannot make {folds} folds")
    accuracies, chosen = [], []
    for test in np.array_split(np.arange(len(distances)), folds):
        train = np.ones(len(distances), dtype=bool)
        train[test] = False
        best = int(np.argmax(_accuracy(distances[train], issame[train], thresholds)))  # first best on ties
        accuracies.append(float(_accuracy(distances[test], issame[test], thresholds[best : best + 1])[0]))
        chosen.append(float(thresholds[best]))
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "fold_thresholds": chosen,
    }


def _corners(fp: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """Indices of the ROC points sklearn's ``drop_intermediate`` keeps: the first, the last, and every point
    where the step of ``fp`` or of ``tp`` (cumulative counts, one per distinct threshold) changes."""
    if len(fp) <= 2:
        return np.arange(len(fp))
    bends = (np.diff(fp, 2) != 0) | (np.diff(tp, 2) != 0)
    return np.flatnonzero(np.r_[True, bends, True])


def roc_curve(
    scores: np.ndarray, issame: np.ndarray, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of similarity ``scores`` (higher = more alike): ``(fpr, tpr, thresholds)``, FAR ascending.

    The first point is ``(0, 0)`` at threshold ``+inf``; then one point per distinct score, "same" when
    ``score >= threshold``. ``drop_intermediate`` drops the points sklearn's ``roc_curve`` drops by default
    (:func:`_corners`; the ``(0, 0)`` point is added after the drop, as sklearn does).
    """
    scores = np.asarray(scores, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    if scores.shape != issame.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and issame {issame.shape} must be (N,) alike")
    positives, negatives = int(issame.sum()), int((~issame).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"the ROC needs positive and negative pairs, got {positives} and {negatives}")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_same = scores[order], issame[order]
    last_of_tie = np.r_[np.diff(sorted_scores) != 0, True]
    tp = np.cumsum(sorted_same)[last_of_tie]
    fp = np.cumsum(~sorted_same)[last_of_tie]
    thresholds = sorted_scores[last_of_tie]
    if drop_intermediate:
        keep = _corners(fp, tp)
        tp, fp, thresholds = tp[keep], fp[keep], thresholds[keep]
    fpr = np.r_[0.0, fp / negatives]
    tpr = np.r_[0.0, tp / positives]
    return fpr, tpr, np.r_[np.inf, thresholds]


def tar_at_far(scores: np.ndarray, issame: np.ndarray, fars: tuple[float, ...] = FARS, readout: str = "field") -> dict:
    """TAR at the ROC point nearest to each target FAR, read as ``readout`` says (see the module docstring).

    Returns:
        ``{"1e-04": {"tar", "far", "threshold", "resolved"}, ...}`` keyed by ``f"{far:.0e}"``.
    """
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    fpr, tpr, thresholds = roc_curve(scores, issame, drop_intermediate=readout == "field")
    negatives = int((~np.asarray(issame, dtype=bool)).sum())
    out = {}
    for far in fars:
        gap = np.abs(fpr - far)
        point = np.flatnonzero(gap == gap.min())[-1]  # the last of the nearest: the highest TAR
        out[f"{far:.0e}"] = {
            "tar": float(tpr[point]),
            "far": float(fpr[point]),
            "threshold": float(thresholds[point]),
            "resolved": bool(far * negatives >= 1),
        }
    return out


def verification_metrics(
    embeddings: torch.Tensor | np.ndarray,
    issame: np.ndarray,
    folds: int = 10,
    fars: tuple[float, ...] = FARS,
    readout: str = "field",
) -> dict:
    """Accuracy (``kfold_accuracy``) and TAR@FAR (``tar_at_far`` on cosine similarity, read as ``readout``)
    of consecutive pairs."""
    issame = np.asarray(issame, dtype=bool)
    distances = pair_distances(embeddings)
    if len(distances) != len(issame):
        raise ValueError(f"{len(distances)} pairs of embeddings but {len(issame)} labels")
    result = kfold_accuracy(distances, issame, folds)
    result["tar_at_far"] = tar_at_far(1 - distances / 2, issame, fars, readout)  # cosine of unit vectors
    result.update(tar_readout=readout, pairs=len(issame), positives=int(issame.sum()), negatives=int((~issame).sum()))
    return result
