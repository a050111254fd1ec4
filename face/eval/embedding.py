"""Embeddings of a face model, batched, with flip test-time augmentation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from face.landmarks import flip_landmarks

__all__ = ["embed", "embed_views", "normalise_images"]


def normalise_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``(B, 3, H, W)`` -> float ``(x / 255 - 0.5) / 0.5`` in ``[-1, 1]``; float input is returned as is."""
    if images.dtype == torch.uint8:
        return (images.float() / 255 - 0.5) / 0.5
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or float (already normalised), got {images.dtype}")
    return images


def _batch(images: torch.Tensor | Sequence[torch.Tensor], start: int, stop: int) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[start:stop]
    items = [images[i] for i in range(start, stop)]
    shapes = {tuple(item.shape) for item in items}
    if len(shapes) > 1:
        raise ValueError(f"images {start}..{stop - 1} differ in shape {sorted(shapes)}; the model needs one size")
    return torch.stack(items)


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_landmarks(name: str, landmarks: torch.Tensor | None, count: int) -> None:
    if landmarks is not None and len(landmarks) != count:
        raise ValueError(f"{count} images but {name} for {len(landmarks)}")


@torch.no_grad()
def embed_views(
    model: nn.Module,
    images: torch.Tensor | Sequence[torch.Tensor],
    landmarks: torch.Tensor | None = None,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
    flipped_landmarks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unnormalised embeddings ``(N, V, D)`` float32 of each view: ``V = 2`` (the image, its mirror) with
    ``flip``, else ``V = 1``. Arguments as :func:`embed`; the model runs in eval mode (restored afterwards)."""
    count = len(images)
    _check_landmarks("landmarks", landmarks, count)
    _check_landmarks("flipped landmarks", flipped_landmarks, count)
    if flipped_landmarks is not None and (landmarks is None or not flip):
        raise ValueError("flipped_landmarks go with landmarks and flip=True")
    device = _model_device(model) if device is None else device
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    try:
        for start in tqdm(range(0, count, batch_size), desc="embed", unit="batch", disable=not progress):
            stop = min(start + batch_size, count)
            x = normalise_images(_batch(images, start, stop)).to(device)
            points = None if landmarks is None else landmarks[start:stop].to(device=device, dtype=x.dtype)
            views = [model(x, points).float()]
            if flip:
                if flipped_landmarks is not None:
                    mirrored = flipped_landmarks[start:stop].to(device=device, dtype=x.dtype)
                else:
                    mirrored = None if points is None else flip_landmarks(points)
                views.append(model(x.flip(-1), mirrored).float())
            out.append(torch.stack(views, 1).cpu())
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("no images to embed")
    return torch.cat(out)


def embed(
    model: nn.Module,
    images: torch.Tensor | Sequence[torch.Tensor],
    landmarks: torch.Tensor | None = None,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
    normalize: bool = True,
    flipped_landmarks: torch.Tensor | None = None,
) -> torch.Tensor:
    """L2-normalised embeddings of ``images`` (in eval mode; the model's mode is restored afterwards).

    With ``flip``, each face is also embedded mirrored, with its landmarks mirrored and left/right swapped
    (:func:`face.landmarks.flip_landmarks`) unless ``flipped_landmarks`` gives the mirror's own (e.g. detected
    on it), and the two unnormalised embeddings are summed before the L2 normalisation (the insightface /
    CVLface fusion).

    Args:
        model: called as ``model(images, landmarks)`` -> ``(B, D)``; ``landmarks`` is ``None`` when not given.
        images: ``(N, 3, H, W)`` uint8 RGB (normalised here) or float already in ``[-1, 1]``, or a sequence of
            ``(3, H, W)`` tensors of one size (decoded lazily, e.g. ``VerificationPairs.images()``).
        landmarks: ``(N, 5, 2|3)`` in ``[0, 1]`` of the images (see :func:`face.align.normalise_landmarks`).
        flip: flip test-time augmentation.
        batch_size: faces per forward pass (a flipped batch is a second pass).
        device: where to run; the model's device by default.
        progress: show a tqdm bar.
        normalize: ``False`` returns the (flip-summed) embeddings unnormalised, their norm kept as a
            quality signal (IJB template pooling, :mod:`face.eval.ijb`).
        flipped_landmarks: ``(N, 5, 2|3)`` in ``[0, 1]`` of the mirrored images (needs ``landmarks``, ``flip``).

    Returns:
        ``(N, D)`` float32 on the CPU, unit L2 norm unless ``normalize=False``.
    """
    views = embed_views(model, images, landmarks, flip, batch_size, device, progress, flipped_landmarks)
    features = views.sum(1)
    return F.normalize(features, dim=1) if normalize else features
