"""Training of face recognition models: landmark-aware augmentations, the recipe (:class:`TrainConfig`) and
the :class:`Trainer` (margin heads of :mod:`face.heads`, DDP, exact resume)."""

from face.train.augment import PHOTOMETRIC_OPS, AugmentConfig, FaceAugment
from face.train.config import TrainConfig
from face.train.trainer import FaceRecognizer, FaceTrainSet, StepBatchSampler, Trainer, model_inputs

__all__ = [
    "PHOTOMETRIC_OPS",
    "AugmentConfig",
    "FaceAugment",
    "FaceRecognizer",
    "FaceTrainSet",
    "StepBatchSampler",
    "TrainConfig",
    "Trainer",
    "model_inputs",
]
