"""kprpe_gait.eval: retrieval metrics (Rank-k, mAP, mINP), Gait3D's evaluator, submission files.

::

    from kprpe_gait.eval import pairwise_distance, evaluate_retrieval, evaluate_gait3d

    dist = pairwise_distance(probe_emb, gallery_emb, metric="euc")   # (P, c, p), (G, c, p) -> (P, G)
    evaluate_retrieval(dist, probe_labels, gallery_labels)           # {"Rank-1": ..., "mAP": ..., ...} in %
    evaluate_gait3d(inference_dict, partition="Gait3D.json")         # OpenGait evaluator signature

Submission writers (GREW, HID / MGR'24 challenge, full distance matrix) are in
:mod:`kprpe_gait.eval.submission`, OpenGait's k-reciprocal re-ranking in :mod:`kprpe_gait.eval.rerank`;
``kprpe-gait submit`` (:mod:`kprpe_gait.eval.submit`) runs a checkpoint over a test set and writes the
file each leaderboard takes. Never imports OpenGait.
"""

from . import submission
from .metrics import (
    DEFAULT_GAIT3D_PARTITION,
    RetrievalScores,
    evaluate_gait3d,
    evaluate_retrieval,
    gait3d_probe_mask,
    pairwise_distance,
    read_probe_set,
    retrieval_scores,
    sequence_keys,
)
from .submission import (
    nearest_labels,
    read_challenge_csv,
    read_distance_npz,
    read_grew_csv,
    top_k_labels,
    write_challenge_csv,
    write_distance_npz,
    write_grew_csv,
)

__all__ = [
    "DEFAULT_GAIT3D_PARTITION",
    "RetrievalScores",
    "evaluate_gait3d",
    "evaluate_retrieval",
    "gait3d_probe_mask",
    "nearest_labels",
    "pairwise_distance",
    "read_challenge_csv",
    "read_distance_npz",
    "read_grew_csv",
    "read_probe_set",
    "retrieval_scores",
    "sequence_keys",
    "submission",
    "top_k_labels",
    "write_challenge_csv",
    "write_distance_npz",
    "write_grew_csv",
]
