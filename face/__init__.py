"""Face recognition on the KP-RPE core.

This release holds the data side that every face model needs first: five-point alignment to the ArcFace
template, keypoints normalised for :class:`kprpe.core.KeypointRPE`, misalignment simulation
(:mod:`face.align`) and the ``kprpe-face align`` command (:mod:`face.cli`). The backbone, margin heads,
evaluation and training follow (see the README's status).
"""

from .align import (
    ARCFACE_TEMPLATE,
    AlignedFaces,
    align_faces,
    estimate_similarity,
    normalise_landmarks,
    random_similarity,
    transform_points,
)

__all__ = [
    "ARCFACE_TEMPLATE",
    "AlignedFaces",
    "align_faces",
    "estimate_similarity",
    "normalise_landmarks",
    "random_similarity",
    "transform_points",
]
