import math

import numpy as np
import pytest
import torch

from face.eval import identification_metrics, kfold_accuracy, pair_distances, roc_curve, tar_at_far
from face.eval.verification import THRESHOLDS, verification_metrics


def test_kfold_hand_computed():
    # 10 folds of 2 pairs (same, different); fold 0's different pair is closer than the same pairs
    distances = np.array([0.5, 1.5] * 10)
    distances[1] = 0.2
    issame = np.array([True, False] * 10)
    result = kfold_accuracy(distances, issame)
    # every training split is best at the first threshold above 0.5 (0.51): fold 0 then scores 1/2, the rest 1
    assert result["fold_thresholds"] == pytest.approx([0.51] * 10)
    assert result["fold_accuracies"] == [0.5] + [1.0] * 9
    assert result["accuracy"] == pytest.approx(0.95) and result["accuracy_std"] == pytest.approx(0.15)


def test_kfold_fold_sizes_follow_kfold():
    # 23 pairs: folds of 3, 3, 3, 2, ... (first N % 10 folds one longer); fold 2 (pairs 6-8) holds a wrong pair
    distances = np.where(np.arange(23) % 2 == 0, 0.3, 2.0)
    issame = distances < 1
    distances[7] = 0.1  # a different pair, very close
    result = kfold_accuracy(distances, issame)
    assert result["fold_accuracies"][2] == pytest.approx(2 / 3)
    assert result["fold_accuracies"][:2] + result["fold_accuracies"][3:] == [1.0] * 9


def test_pair_distances_are_squared_l2_of_normalised_rows():
    e = torch.tensor([[3.0, 4.0], [4.0, 3.0], [1.0, 0.0], [-2.0, 0.0]])
    np.testing.assert_allclose(pair_distances(e), [(0.6 - 0.8) ** 2 * 2, 4.0])


def _brute_force_tar(scores, issame, far):
    """Independent TAR@FAR: sweep every candidate threshold with plain loops, keep the nearest-FAR points."""
    pos = [s for s, same in zip(scores, issame) if same]
    neg = [s for s, same in zip(scores, issame) if not same]
    points = []
    for threshold in [math.inf] + sorted(set(scores)):
        fa = sum(1 for s in neg if s >= threshold) / len(neg)
        ta = sum(1 for s in pos if s >= threshold) / len(pos)
        points.append((abs(fa - far), -ta, fa, ta))
    best = min(points)
    return best[3], best[2]


def test_tar_at_far_hand_computed_and_against_brute_force():
    scores = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1])
    issame = np.array([True, True, True, False, False, False, False])
    fpr, tpr, thresholds = roc_curve(scores, issame)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.25, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1])
    assert thresholds[0] == math.inf and thresholds[-1] == 0.1
    result = tar_at_far(scores, issame, (0.01, 0.3, 0.6), readout="full")
    assert result["1e-02"]["tar"] == pytest.approx(2 / 3) and result["1e-02"]["far"] == 0  # top of the fpr=0 step
    assert result["1e-02"]["threshold"] == 0.8 and not result["1e-02"]["resolved"]
    assert result["3e-01"]["tar"] == 1.0 and result["3e-01"]["far"] == 0.25 and result["3e-01"]["resolved"]
    assert result["6e-01"]["far"] == 0.5

    rng = np.random.default_rng(0)
    for trial in range(5):
        n = 300
        issame = rng.random(n) < 0.5
        scores = np.round(rng.normal(issame * 1.0, 1.0), 1 + trial % 3)  # rounding makes ties
        for far in (1e-3, 1e-2, 0.05, 0.2):
            ours = tar_at_far(scores, issame, (far,), readout="full")[f"{far:.0e}"]
            tar, fa = _brute_force_tar(scores.tolist(), issame.tolist(), far)
            assert (ours["tar"], ours["far"]) == pytest.approx((tar, fa))


def test_verification_metrics_separable_and_chance():
    g = torch.Generator().manual_seed(0)
    ids = torch.randn(50, 32, generator=g)
    same = torch.arange(100) % 2 == 0
    a = ids[torch.arange(100) // 2]
    b = torch.where(same[:, None], a + 0.05 * torch.randn(100, 32, generator=g), ids[(torch.arange(100) // 2 + 1) % 50])
    embeddings = torch.stack([a, b], 1).reshape(200, 32)
    result = verification_metrics(embeddings, same.numpy())
    assert result["accuracy"] == 1.0 and result["tar_at_far"]["1e-02"]["tar"] == 1.0
    assert (result["pairs"], result["positives"], result["negatives"]) == (100, 50, 50)
    assert len(THRESHOLDS) == 400 and THRESHOLDS[-1] == pytest.approx(3.99)


def test_identification_hand_computed():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    gallery_labels = torch.tensor([1, 2, -100, 3])
    probe = torch.tensor([[1.0, 0.1], [0.6, 0.8], [0.0, -1.0], [0.5, 0.5]])
    probe_labels = torch.tensor([1, 2, 3, 7])
    # probe 0: match 1 is the best -> rank 0; probe 1: distractor (0.98) beats match 2 (0.8) -> rank 1;
    # probe 2: scores (0, -1, -0.7, 0): match 3 ties gallery 0, ties go to the match -> rank 0;
    # probe 3: identity 7 not in the gallery -> a miss
    result = identification_metrics(probe, probe_labels, gallery, gallery_labels, ranks=(1, 2))
    assert result == {"rank1": 0.5, "rank2": 0.75, "probes": 4, "gallery": 4, "without_match": 1}
