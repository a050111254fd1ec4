"""Training of face recognition models: augmentations that move landmarks, the trainer and its config."""

from face.train.augment import PHOTOMETRIC_OPS, AugmentConfig, FaceAugment

__all__ = ["PHOTOMETRIC_OPS", "AugmentConfig", "FaceAugment"]
