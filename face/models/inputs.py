"""Input checks shared by the face backbones (:class:`~face.models.FaceViT`, :class:`~face.models.FaceSwin`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kprpe.core import split_keypoints

__all__ = ["check_images", "check_landmarks"]

# Landmarks further than this outside [0, 1] are not normalised coordinates (pixel coordinates, most likely).
LANDMARK_SLACK = 1.0


def check_images(images: torch.Tensor, size: Sequence[int]) -> None:
    """Raise unless ``images`` is a float ``(B, 3, size[0], size[1])`` tensor.

    Raises:
        ValueError: wrong type or shape (the message gives the expected one).
        TypeError: an integer tensor (not normalised).
    """
    if not torch.is_tensor(images) or images.dim() != 4 or tuple(images.shape[1:]) != (3, *size):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be (B, 3, {size[0]}, {size[1]}) RGB in [-1, 1], got {shape}")
    if not images.is_floating_point():
        raise TypeError(f"images must be float, normalised as (x / 255 - 0.5) / 0.5; got {images.dtype}")


def check_landmarks(landmarks: torch.Tensor, batch: int, num_keypoints: int) -> None:
    """Raise unless ``landmarks`` is ``(batch, num_keypoints, 2|3)`` with its present points near ``[0, 1]``.

    Missing landmarks (NaN, confidence 0) are allowed. The range check is skipped while tracing or
    exporting (it depends on the data).
    """
    coords, valid = split_keypoints(landmarks, num_keypoints)  # shape and dtype errors
    if landmarks.shape[0] != batch:
        raise ValueError(f"{landmarks.shape[0]} landmark sets for a batch of {batch} images")
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return
    outside = valid & ((coords < -LANDMARK_SLACK) | (coords > 1 + LANDMARK_SLACK)).any(-1)
    if bool(outside.any()):
        sample = int(outside.any(-1).nonzero()[0, 0])
        raise ValueError(
            f"landmarks of sample {sample} lie far outside the image ({landmarks[sample, :, :2].tolist()}): "
            "they must be (x, y) in [0, 1] of the model's input; convert pixel coordinates with "
            "face.align.normalise_landmarks"
        )
