"""Face recognition on the KP-RPE core.

One package for the whole path a face researcher takes, each part in its own subpackage:

* :mod:`face.models`: the authors' ViT (``rpe`` none / iRPE / KP-RPE) and Swin (KP-RPE / Swin V2's bias) for
  112x112 faces built on :mod:`kprpe.core`, ``load_pretrained`` for their released checkpoints and ours,
  ``save_pretrained``;
* :mod:`face.align`, :mod:`face.landmarks`: five-point alignment to the ArcFace template, landmark CSVs, flips;
* :mod:`face.detect`: landmarks on raw photos (MTCNN as the ``detect`` extra, or a CSV) and the model's input;
* :mod:`face.data`: image folders, insightface RecordIO, verification ``.bin`` files, probe/gallery sets;
* :mod:`face.eval`: flip-TTA embeddings, 10-fold verification, TAR@FAR, rank-k, the Fig. 5 alignment path;
* :mod:`face.heads`, :mod:`face.train`: AdaFace / ArcFace / CosFace, partial-class sampling, the trainer;
* :mod:`face.synth`: SynthFace, generated identities in the formats above, for tests and the demo.

``kprpe-face align|convert|demo|embed|eval|synth|train`` (:mod:`face.cli`) runs each from the shell.

Contract of every model here::

    model = face.load_pretrained("path/to/folder-or-checkpoint")     # eval mode
    emb = model(images, landmarks)   # images (B, 3, 112, 112) RGB in [-1, 1]; landmarks (B, 5, 2|3) in [0, 1]
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
from .data import (
    FaceFolder,
    RecordFaceDataset,
    VerificationPairs,
    box_crop_matrix,
    read_identification_folder,
    read_verification_bin,
    write_face_recordio,
    write_verification_bin,
)
from .detect import CsvLandmarks, Detections, FaceDetector, FaceInput, MTCNNDetector, prepare_face
from .eval import (
    embed,
    evaluate_identification,
    evaluate_path,
    evaluate_verification,
    identification_metrics,
    interpolate_affine,
    kfold_accuracy,
    tar_at_far,
    verification_metrics,
)
from .heads import AdaFace, ArcFace, CosFace, build_head
from .landmarks import flip_landmarks, read_landmark_csv, write_landmark_csv
from .models import PRESETS, FaceSwin, FaceViT, build_model, load_pretrained, save_pretrained
from .synth import SynthConfig, synth_config
from .synth import generate as generate_synthface
from .train import FaceAugment, TrainConfig, Trainer

__all__ = [
    "ARCFACE_TEMPLATE",
    "PRESETS",
    "AdaFace",
    "AlignedFaces",
    "ArcFace",
    "CosFace",
    "CsvLandmarks",
    "Detections",
    "FaceAugment",
    "FaceDetector",
    "FaceFolder",
    "FaceInput",
    "FaceSwin",
    "FaceViT",
    "MTCNNDetector",
    "RecordFaceDataset",
    "SynthConfig",
    "TrainConfig",
    "Trainer",
    "VerificationPairs",
    "align_faces",
    "box_crop_matrix",
    "build_head",
    "build_model",
    "embed",
    "estimate_similarity",
    "evaluate_identification",
    "evaluate_path",
    "evaluate_verification",
    "flip_landmarks",
    "generate_synthface",
    "identification_metrics",
    "interpolate_affine",
    "kfold_accuracy",
    "load_pretrained",
    "normalise_landmarks",
    "prepare_face",
    "random_similarity",
    "read_identification_folder",
    "read_landmark_csv",
    "read_verification_bin",
    "save_pretrained",
    "synth_config",
    "tar_at_far",
    "transform_points",
    "verification_metrics",
    "write_face_recordio",
    "write_landmark_csv",
    "write_verification_bin",
]
