"""Face evaluation: embeddings with flip TTA, LFW-protocol verification, TAR@FAR, IJB-B/C template
verification, rank-k identification, and the paper's Fig. 5 path from the detection crop to the aligned crop."""

from face.eval.embedding import embed, embed_views, normalise_images
from face.eval.evaluate import (
    IJB_PROTOCOLS,
    evaluate_identification,
    evaluate_ijb_protocols,
    evaluate_path,
    evaluate_verification,
    format_table,
    write_results,
    xnorm,
)
from face.eval.identification import identification_metrics
from face.eval.ijb import IJB_FARS, SCORINGS, evaluate_ijb, ijb_features, ijb_metrics, pair_scores, template_features
from face.eval.ijb_search import IJB_FPIRS, IJB_RANKS, ijb_search_metrics, search_metrics
from face.eval.landmark_sources import (
    LANDMARK_SOURCES,
    PairLandmarks,
    detect_landmarks,
    pair_landmarks,
    template_landmarks,
)
from face.eval.path import alignment_matrix, interpolate_affine, path_crops
from face.eval.verification import (
    READOUTS,
    THRESHOLDS,
    kfold_accuracy,
    pair_distances,
    roc_curve,
    tar_at_far,
    verification_metrics,
)

__all__ = [
    "IJB_FARS",
    "IJB_FPIRS",
    "IJB_PROTOCOLS",
    "IJB_RANKS",
    "LANDMARK_SOURCES",
    "PairLandmarks",
    "READOUTS",
    "SCORINGS",
    "THRESHOLDS",
    "alignment_matrix",
    "detect_landmarks",
    "embed",
    "embed_views",
    "evaluate_identification",
    "evaluate_ijb",
    "evaluate_ijb_protocols",
    "evaluate_path",
    "evaluate_verification",
    "format_table",
    "identification_metrics",
    "ijb_features",
    "ijb_metrics",
    "ijb_search_metrics",
    "interpolate_affine",
    "kfold_accuracy",
    "normalise_images",
    "pair_distances",
    "pair_landmarks",
    "pair_scores",
    "path_crops",
    "roc_curve",
    "search_metrics",
    "tar_at_far",
    "template_landmarks",
    "template_features",
    "verification_metrics",
    "write_results",
    "xnorm",
]
