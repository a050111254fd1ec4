"""Does a face model use its landmarks? The keypoint-reliance probe, and controlled misalignments of test pairs.

:func:`keypoint_reliance` scores the same verification pairs three times: with the true landmarks, with
**constant** landmarks (the ArcFace template, the same five points for every face) and with landmarks
**shuffled** across faces (real landmark sets, each on another face). It reports the accuracy and TAR of
each, the embedding cosine true vs constant, and per attention layer the keypoint part of the bias against
the logits' spread (:func:`kprpe.core.bias_reliance`). A model that ignores its landmarks reads
cosine ~1.0, accuracy deltas ~0 and a keypoint part far below the spread; a model without KP-RPE reads
exactly that (its landmarks are not an input).

:func:`warp_pairs` makes the controlled test sets of the face protocol (``benchmarks/face_demo/README.md``):
aligned crops translated by an exact number of tokens (a random direction per face, seeded), scaled and
rotated about the crop centre, with the landmarks moved by the very same map.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from face.align import ARCFACE_TEMPLATE, TEMPLATE_SIZE
from face.data.crop import warp_faces
from face.eval.embedding import embed_views, normalise_images
from face.eval.verification import verification_metrics
from kprpe.core import KeypointRPE
from kprpe.core.probe import bias_reliance

__all__ = [
    "KEYPOINT_MODES",
    "ConstantLandmarks",
    "constant_landmarks",
    "keypoint_reliance",
    "replace_landmarks",
    "uses_landmarks",
    "warp_pairs",
]

#: what :func:`replace_landmarks` can put in place of the true landmarks
KEYPOINT_MODES = ("true", "constant", "shuffled")


def constant_landmarks(count: int, size: tuple[int, int] = TEMPLATE_SIZE) -> torch.Tensor:
    """``(count, 5, 3)`` the ArcFace template in ``[0, 1]`` of a ``size`` crop, confidence 1 (the same for all)."""
    unit = (ARCFACE_TEMPLATE + 0.5) / torch.tensor([TEMPLATE_SIZE[1], TEMPLATE_SIZE[0]], dtype=torch.float32)
    points = torch.cat([unit, torch.ones(5, 1)], -1)
    del size  # the template is defined relative to the crop: the same unit coordinates at any size
    return points.expand(count, 5, 3).clone()


def replace_landmarks(keypoints: torch.Tensor, mode: str, seed: int = 0) -> torch.Tensor:
    """``keypoints (N, 5, 2|3)`` in ``[0, 1]`` as ``mode`` says: ``true`` (unchanged), ``constant`` (the
    template for every face) or ``shuffled`` (a seeded permutation with no face keeping its own set)."""
    if mode not in KEYPOINT_MODES:
        raise ValueError(f"unknown keypoint mode {mode!r}; choose one of {KEYPOINT_MODES}")
    if keypoints.dim() != 3 or keypoints.shape[1] != 5 or keypoints.shape[2] not in (2, 3):
        raise ValueError(f"keypoints must be (N, 5, 2|3), got {tuple(keypoints.shape)}")
    if mode == "true":
        return keypoints
    if mode == "constant":
        out = constant_landmarks(len(keypoints))
        return out if keypoints.shape[2] == 3 else out[..., :2]
    count = len(keypoints)
    if count < 2:
        raise ValueError("shuffled landmarks need at least two faces")
    # a random cyclic shift of a random order: a permutation without fixed points
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    target = torch.empty_like(order)
    target[order] = order.roll(1)
    return keypoints[target]


def uses_landmarks(model: nn.Module) -> bool:
    """Whether ``model``'s output can depend on the landmarks it is given: it holds a
    :class:`~kprpe.core.KeypointRPE` and is not wrapped in :class:`ConstantLandmarks`."""
    if any(isinstance(m, ConstantLandmarks) for m in model.modules()):
        return False
    return any(isinstance(m, KeypointRPE) for m in model.modules())


def keypoint_reliance(
    model: nn.Module,
    images: torch.Tensor,
    keypoints: torch.Tensor,
    issame: np.ndarray,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    probe_faces: int = 64,
    seed: int = 0,
) -> dict:
    """The reliance probe of one set of verification pairs.

    Args:
        model: ``model(images, landmarks) -> (B, D)`` (any face model; one without KP-RPE, or
            wrapped in :class:`ConstantLandmarks`, reads exactly "not used": its constant and shuffled scores are
            its true ones, not recomputed).
        images: ``(2N, 3, H, W)`` uint8 (or normalised float) faces, pairs consecutive.
        keypoints: ``(2N, 5, 2|3)`` true landmarks in ``[0, 1]`` of the images.
        issame: ``(N,)`` bool.
        flip: flip test-time augmentation for the accuracies.
        probe_faces: faces whose attention bias is recorded (the first ones).
        seed: the shuffle's seed.

    Returns:
        ``{"accuracy": {mode: acc}, "tar_at_far": {mode: {far: tar}}, "embedding_cosine": {"mean", "min"},
        "bias": [per-layer rows, true vs constant], "bias_shuffled": [... true vs shuffled],
        "keypoint_bias": mean of the layers' keypoint part, "logit_spread": mean of their spreads}``.
    """
    if len(images) != len(keypoints) or len(images) != 2 * len(issame):
        raise ValueError(f"{len(images)} images, {len(keypoints)} landmark sets and {len(issame)} pairs do not match")
    out: dict = {"accuracy": {}, "tar_at_far": {}}
    points = {mode: replace_landmarks(keypoints, mode, seed) for mode in KEYPOINT_MODES}
    plain: dict[str, torch.Tensor] = {}  # unflipped embeddings, for the cosine
    reads = uses_landmarks(model)
    for mode in KEYPOINT_MODES:
        if not reads and mode != "true":  # landmarks are not an input: every mode is the true one, exactly
            out["accuracy"][mode], out["tar_at_far"][mode] = out["accuracy"]["true"], out["tar_at_far"]["true"]
            plain[mode] = plain["true"]
            continue
        views = embed_views(model, images, points[mode], flip, batch_size, device)  # (2N, 1|2, D), one pass
        metrics = verification_metrics(F.normalize(views.sum(1), dim=1), issame)  # embed()'s flip fusion
        out["accuracy"][mode] = metrics["accuracy"]
        out["tar_at_far"][mode] = {far: p["tar"] for far, p in metrics["tar_at_far"].items()}
        plain[mode] = F.normalize(views[:, 0], dim=1)
    cosine = (plain["true"] * plain["constant"]).sum(-1)
    out["embedding_cosine"] = {"mean": float(cosine.mean()), "min": float(cosine.min())}

    n = min(probe_faces, len(images))
    parameter = next(model.parameters())
    x = normalise_images(images[:n]).to(parameter.device)
    probe = {mode: p[:n].to(parameter.device, x.dtype) for mode, p in points.items()}
    for key, other in (("bias", "constant"), ("bias_shuffled", "shuffled")):
        out[key] = bias_reliance(model, lambda: model(x, probe["true"]), lambda o=other: model(x, probe[o]))
    rows = out["bias"]
    out["keypoint_bias"] = float(np.mean([r["keypoint_bias"] for r in rows]))
    out["logit_spread"] = float(np.mean([r["logit_spread"] for r in rows]))
    return out


def warp_pairs(
    images: torch.Tensor,
    keypoints: torch.Tensor,
    shift: float = 0.0,
    scale: float = 1.0,
    rotation: float = 0.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned crops moved by an exact similarity about the crop centre, landmarks moved along.

    Args:
        images: ``(B, 3, H, W)`` uint8 crops.
        keypoints: ``(B, 5, 2|3)`` in ``[0, 1]`` of the crops.
        shift: translation length in pixels, in a random direction per face (seeded by ``seed``).
        scale: zoom factor about the centre (``< 1`` shrinks the face).
        rotation: degrees, a random sign per face (seeded).

    Returns:
        ``(crops (B, 3, H, W) uint8, keypoints (B, 5, 3) in [0, 1])`` (landmarks moved out of the crop stay
        where they land).
    """
    batch, _, height, width = images.shape
    generator = torch.Generator().manual_seed(seed)
    direction = torch.rand(batch, generator=generator, dtype=torch.float64) * 2 * math.pi
    sign = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0).to(torch.float64)
    angle = math.radians(rotation) * sign
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    offset = centre + shift * torch.stack([torch.cos(direction), torch.sin(direction)], -1) - linear @ centre
    matrices = torch.cat([linear, offset[..., None]], -1)
    size = torch.tensor([width, height], dtype=torch.float64)
    points = keypoints.to(torch.float64)
    pixels = points[..., :2] * size - 0.5
    confidence = points[..., 2:] if points.shape[-1] == 3 else torch.ones_like(points[..., :1])
    return warp_faces(images, torch.cat([pixels, confidence], -1), matrices, (height, width))


class ConstantLandmarks(nn.Module):
    """A face model that always sees the ArcFace template as its landmarks, whatever it is given.

    Evaluates the control arm (a KP-RPE model trained with constant landmarks, ``TrainConfig(keypoints=
    "constant")``) with every tool written for ``model(images, landmarks)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        del landmarks  # replaced by the template, which is the point of the control
        points = constant_landmarks(len(images)).to(device=images.device, dtype=images.dtype)
        return self.model(images, points)
