"""TAR@FAR as the field reads it: sklearn's ``roc_curve`` (``drop_intermediate=True``) read with ``ijb_11.py``'s
nearest-FAR rule, transcribed here independently of ``face.eval.verification`` and compared on cases with ties
and vertical steps; the full-ROC readout stays available."""

import numpy as np
import pytest

from face.eval import READOUTS, roc_curve, tar_at_far, verification_metrics


def sklearn_roc_transcription(labels, scores):
    """sklearn's ``roc_curve(labels, scores)`` with its defaults, written out from its source."""
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")[::-1]
    y_true, y_score = labels[order], scores[order]
    threshold_idxs = np.r_[np.where(np.diff(y_score))[0], y_true.size - 1]
    tps = np.cumsum(y_true)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    thresholds = y_score[threshold_idxs]
    if len(fps) > 2:  # drop_intermediate
        optimal = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[optimal], tps[optimal], thresholds[optimal]
    tps, fps, thresholds = np.r_[0, tps], np.r_[0, fps], np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def ijb_11_readout(labels, scores, far):
    """``ijb_11.py``: flip the ROC, then ``min`` over ``(|fpr - far|, index)``; returns (tar, far)."""
    fpr, tpr, _ = sklearn_roc_transcription(labels, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    _, index = min(zip(abs(fpr - far), range(len(fpr))))
    return tpr[index], fpr[index]


def test_minimal_case_reads_the_kept_corner():
    scores = np.array([6.0, 5, 4, 3, 2, 1])
    same = np.array([1, 0, 0, 0, 1, 0], dtype=bool)
    field = tar_at_far(scores, same, (0.5,))["5e-01"]
    full = tar_at_far(scores, same, (0.5,), readout="full")["5e-01"]
    assert (field["tar"], field["far"], field["threshold"]) == (1.0, 0.75, 2.0)
    assert (full["tar"], full["far"], full["threshold"]) == (0.5, 0.5, 4.0)
    assert ijb_11_readout(same, scores, 0.5) == (1.0, 0.75)
    fpr, tpr, thresholds = roc_curve(scores, same, drop_intermediate=True)
    np.testing.assert_array_equal(fpr, [0, 0, 0.75, 0.75, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 6, 3, 2, 1])


def test_equal_distance_takes_the_last_point_as_ijb_11():
    # kept corners at FAR 0.25 and 0.75 are equally near 0.5: the flipped min takes the later (0.75) one
    scores = np.arange(8.0, 0, -1)
    same = np.array([1, 0, 1, 0, 0, 1, 0, 0], dtype=bool)
    ours = tar_at_far(scores, same, (0.5,))["5e-01"]
    assert (ours["tar"], ours["far"]) == ijb_11_readout(same, scores, 0.5)


@pytest.mark.parametrize("seed", range(6))
def test_field_readout_equals_the_transcription_with_ties_and_steps(seed):
    rng = np.random.default_rng(seed)
    n = [50, 300, 2000][seed % 3]
    same = rng.random(n) < [0.5, 0.2, 0.05][seed % 3]
    same[:2] = [True, False]
    scores = rng.normal(same * 1.5, 1.0)
    if seed < 3:  # rounding makes many ties (several pairs per threshold: steps with both fp and tp)
        scores = np.round(scores, 1 + seed % 2)
    fpr, tpr, thresholds = roc_curve(scores, same, drop_intermediate=True)
    ref = sklearn_roc_transcription(same, scores)
    for ours, theirs in zip((fpr, tpr, thresholds), ref):
        np.testing.assert_array_equal(ours, theirs)
    fars = (1e-3, 1e-2, 3e-2, 7e-2, 1e-1, 2e-1, 3e-1, 4e-1, 5e-1, 6e-1, 8e-1, 9e-1)  # distinct keys
    field = tar_at_far(scores, same, fars)
    full = tar_at_far(scores, same, fars, readout="full")
    differ = 0
    for far in fars:
        key = f"{far:.0e}"
        assert (field[key]["tar"], field[key]["far"]) == ijb_11_readout(same, scores, far)
        differ += field[key]["tar"] != full[key]["tar"]
        # the full readout is never farther from the target than the field's
        assert abs(full[key]["far"] - far) <= abs(field[key]["far"] - far)
    if seed >= 3:  # distinct scores: runs of negatives are straight stretches sklearn drops
        assert differ > 0  # the two readouts really differ on such sets (not a vacuous comparison)


def test_full_roc_keeps_every_point_and_readouts_are_named():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    same = np.array([True, False, False, False, True])
    assert len(roc_curve(scores, same)[0]) == 6 and len(roc_curve(scores, same, drop_intermediate=True)[0]) == 4
    assert READOUTS == ("field", "full")
    with pytest.raises(ValueError, match="readout must be one of"):
        tar_at_far(scores, same, readout="sklearn")
    rng = np.random.default_rng(0)
    embeddings, same = rng.normal(size=(40, 4)), rng.random(20) < 0.5
    for readout in READOUTS:
        assert verification_metrics(embeddings, same, readout=readout)["tar_readout"] == readout
