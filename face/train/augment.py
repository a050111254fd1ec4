"""Training augmentations of face batches that move the five landmarks with the image.

Geometry (one ``(2, 3)`` affine per sample, pixel-index convention of :mod:`face.align`, so the image is
warped with kornia's ``warp_affine(align_corners=True)`` and the landmarks with
:func:`face.align.transform_points` through the very same matrix):

1. random resized crop (torchvision's sampling of area ``crop_scale`` and aspect ``crop_ratio``), the crop
   stretched back to the full image, with probability ``crop_prob``;
2. scale (uniform in ``scale``) and shift (up to ``max_shift`` of the side) about the centre, always
   (the authors' grid-sample augmenter); rotation up to ``max_rotation`` degrees with ``rotation_prob``;
3. horizontal flip with ``flip_prob``: ``x -> W - 1 - x`` in the matrix, and the landmark indices swapped
   left <-> right by :func:`face.landmarks.flip_landmarks`'s order.

Then, image only: cutout (a zeroed random rectangle), Gaussian blur, low resolution (down to a random side
ratio and back up), and photometric RandAugment ops (the authors' ``PhotometricRandAugment``: ``num_ops``
draws from identity, brightness, saturation, contrast, sharpness, equalise, greyscale, magnitudes from
``magnitude +- magnitude_offset`` of ``num_magnitude_bins`` bins over ``[0, 0.9]`` with a random sign).

Every draw comes from the global torch generator, or ``generator`` when given, so a saved RNG state replays
a batch exactly. Images are float ``(B, C, H, W)`` in ``[0, 1]``; landmarks ``(B, 5, 2|3)`` pixel indices
(NaN / confidence 0 = missing, carried along). Landmarks moved outside the image are kept as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import kornia
import torch
import torch.nn.functional as F
from kornia.geometry.transform import warp_affine

from face.align import _compose, transform_points
from face.landmarks import FLIP_ORDER

__all__ = ["PHOTOMETRIC_OPS", "AugmentConfig", "FaceAugment"]

PHOTOMETRIC_OPS = ("identity", "brightness", "saturation", "contrast", "sharpness", "equalize", "grayscale")


@dataclass
class AugmentConfig:
    """Probabilities and ranges of :class:`FaceAugment` (defaults: the authors' ``gridsample_v1`` recipe
    plus the ``basic_v1`` crop and low-resolution augmentations at 0.2)."""

    crop_prob: float = 0.2
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    scale: tuple[float, float] = (0.8, 1.2)
    max_shift: float = 0.1
    rotation_prob: float = 0.2
    max_rotation: float = 20.0
    flip_prob: float = 0.5
    cutout_prob: float = 0.2
    blur_prob: float = 0.2
    max_blur_sigma: float = 1.5
    low_res_prob: float = 0.2
    low_res_ratio: tuple[float, float] = (0.2, 1.0)
    photometric_prob: float = 1.0
    num_ops: int = 2
    magnitude: int = 14
    magnitude_offset: int = 9
    num_magnitude_bins: int = 31

    def __post_init__(self) -> None:
        for name in ("crop_scale", "crop_ratio", "scale", "low_res_ratio"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or value[0] > value[1] or value[0] <= 0:
                raise ValueError(f"augment.{name} must be (low, high) with 0 < low <= high, got {value}")
            setattr(self, name, value)
        for name, value in asdict(self).items():
            if name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"augment.{name} must be a probability in [0, 1], got {value}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (identity)."""
        return cls(crop_prob=0.0, scale=(1.0, 1.0), max_shift=0.0, rotation_prob=0.0, flip_prob=0.0,
                   cutout_prob=0.0, blur_prob=0.0, low_res_prob=0.0, photometric_prob=0.0)  # fmt: skip


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


class FaceAugment:
    """Callable ``(images, landmarks) -> (images, landmarks)`` drawing fresh parameters per sample.

    Args:
        config: an :class:`AugmentConfig` (``AugmentConfig()`` = the authors' recipe).
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()

    # ------------------------------------------------------------------ geometry
    def sample_geometry(
        self, batch: int, size: tuple[int, int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(matrices (B, 2, 3) float64 source pixel -> output pixel, flipped (B,) bool)``."""
        cfg, (height, width) = self.config, size
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        eye = torch.eye(2, 3, dtype=torch.float64).expand(batch, 2, 3).clone()

        # 1. random resized crop: box (x0, y0, w, h) in pixels, stretched onto the full image
        crop = eye.clone()
        use_crop = torch.rand(batch, generator=generator) < cfg.crop_prob
        area = _uniform(batch, *cfg.crop_scale, generator) * height * width
        ratio = torch.exp(_uniform(batch, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), generator))
        box_w = torch.sqrt(area * ratio).clamp(1, width)
        box_h = torch.sqrt(area / ratio).clamp(1, height)
        x0 = _uniform(batch, 0, 1, generator) * (width - box_w)
        y0 = _uniform(batch, 0, 1, generator) * (height - box_h)
        # pixel-edge mapping: [x0, x0 + w] -> [0, W] in continuous coordinates (pixel index p <-> p + 0.5)
        sx, sy = width / box_w, height / box_h
        crop[:, 0, 0], crop[:, 1, 1] = sx, sy
        crop[:, 0, 2] = (0.5 - x0) * sx - 0.5
        crop[:, 1, 2] = (0.5 - y0) * sy - 0.5
        crop = torch.where(use_crop[:, None, None], crop, eye)

        # 2. scale, rotation, shift about the centre
        factor = _uniform(batch, *cfg.scale, generator)
        rotate = torch.rand(batch, generator=generator) < cfg.rotation_prob
        angle = torch.deg2rad(_uniform(batch, -cfg.max_rotation, cfg.max_rotation, generator)) * rotate
        shift = torch.stack([_uniform(batch, -1, 1, generator) for _ in range(2)], -1) * cfg.max_shift
        shift = shift * torch.tensor([width, height], dtype=torch.float64)
        cos, sin = factor * torch.cos(angle), factor * torch.sin(angle)
        linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        offset = centre + shift - linear @ centre
        similarity = torch.cat([linear, offset[..., None]], -1)

        # 3. flip
        flipped = torch.rand(batch, generator=generator) < cfg.flip_prob
        flip = eye.clone()
        flip[flipped, 0, 0] = -1.0
        flip[flipped, 0, 2] = width - 1.0
        return _compose(flip, _compose(similarity, crop)), flipped

    @staticmethod
    def apply_geometry(
        images: torch.Tensor, landmarks: torch.Tensor, matrices: torch.Tensor, flipped: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp ``images (B, C, H, W)`` and move ``landmarks (B, 5, 2|3)`` (pixel indices) by ``matrices``;
        flipped samples get their left/right landmarks swapped."""
        size = images.shape[-2:]
        warped = warp_affine(images, matrices.to(images.dtype), dsize=(size[0], size[1]), mode="bilinear",
                             padding_mode="zeros", align_corners=True)  # fmt: skip
        moved = transform_points(landmarks.to(torch.float64), matrices).to(landmarks.dtype)
        swapped = moved[:, list(FLIP_ORDER)]
        return warped, torch.where(flipped[:, None, None].to(moved.device), swapped, moved)

    # ------------------------------------------------------------------ image-only ops
    def _cutout(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        batch, _, height, width = images.shape
        use = torch.rand(batch, generator=generator) < self.config.cutout_prob
        area = _uniform(batch, 0.02, 0.2, generator) * height * width
        ratio = torch.exp(_uniform(batch, math.log(0.3), math.log(3.3), generator))
        box_w = torch.sqrt(area * ratio).clamp(1, width)
        box_h = torch.sqrt(area / ratio).clamp(1, height)
        x0 = _uniform(batch, 0, 1, generator) * (width - box_w)
        y0 = _uniform(batch, 0, 1, generator) * (height - box_h)
        xs = torch.arange(width, dtype=torch.float64)
        ys = torch.arange(height, dtype=torch.float64)
        inside_x = (xs >= x0[:, None]) & (xs < (x0 + box_w)[:, None])  # (B, W)
        inside_y = (ys >= y0[:, None]) & (ys < (y0 + box_h)[:, None])  # (B, H)
        hole = (inside_y[:, :, None] & inside_x[:, None, :] & use[:, None, None]).to(images.device)
        return images.masked_fill(hole[:, None], 0.0)

    def _blur(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        use = torch.rand(len(images), generator=generator) < self.config.blur_prob
        sigma = _uniform(len(images), 0.1, self.config.max_blur_sigma, generator)
        out = images.clone()
        for i in use.nonzero().flatten().tolist():
            s = float(sigma[i])
            k = 2 * math.ceil(3 * s) + 1
            out[i : i + 1] = kornia.filters.gaussian_blur2d(images[i : i + 1], (k, k), (s, s), border_type="reflect")
        return out

    def _low_resolution(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        use = torch.rand(len(images), generator=generator) < self.config.low_res_prob
        ratio = _uniform(len(images), *self.config.low_res_ratio, generator)
        modes = ("nearest", "bilinear", "area", "bicubic")
        mode = torch.randint(len(modes), (len(images), 2), generator=generator)
        out = images.clone()
        height, width = images.shape[-2:]
        for i in use.nonzero().flatten().tolist():
            small = (max(1, int(ratio[i] * height)), max(1, int(ratio[i] * width)))
            down = F.interpolate(images[i : i + 1], size=small, mode=modes[mode[i, 0]])
            out[i : i + 1] = F.interpolate(down, size=(height, width), mode=modes[mode[i, 1]]).clamp(0, 1)
        return out

    def _photometric(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        cfg = self.config
        magnitudes = torch.linspace(0.0, 0.9, cfg.num_magnitude_bins, dtype=torch.float64)
        out = images.clone()
        use = torch.rand(len(images), generator=generator) < cfg.photometric_prob
        for _ in range(cfg.num_ops):
            ops = torch.randint(len(PHOTOMETRIC_OPS), (len(images),), generator=generator)
            low, high = cfg.magnitude - cfg.magnitude_offset, cfg.magnitude + cfg.magnitude_offset
            index = torch.randint(low, high, (len(images),), generator=generator).clamp(0, cfg.num_magnitude_bins - 1)
            sign = torch.where(torch.rand(len(images), generator=generator) < 0.5, -1.0, 1.0).to(torch.float64)
            factor = 1.0 + sign * magnitudes[index]
            for i in use.nonzero().flatten().tolist():
                out[i : i + 1] = _photometric_op(out[i : i + 1], PHOTOMETRIC_OPS[ops[i]], float(factor[i]))
        return out

    # ------------------------------------------------------------------ all together
    def __call__(
        self, images: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch: ``images (B, 3, H, W)`` in ``[0, 1]``, ``landmarks (B, 5, 2|3)`` pixel indices."""
        if images.dim() != 4 or landmarks.dim() != 3 or landmarks.shape[0] != images.shape[0]:
            raise ValueError(
                f"need images (B, C, H, W) and landmarks (B, 5, 2|3), got {tuple(images.shape)}, {tuple(landmarks.shape)}"
            )
        matrices, flipped = self.sample_geometry(len(images), tuple(images.shape[-2:]), generator)
        images, landmarks = self.apply_geometry(images, landmarks, matrices.to(images.device), flipped)
        images = self._cutout(images, generator)
        images = self._blur(images, generator)
        images = self._low_resolution(images, generator)
        images = self._photometric(images, generator)
        return images.clamp(0.0, 1.0), landmarks


def _photometric_op(image: torch.Tensor, op: str, factor: float) -> torch.Tensor:
    """One RandAugment colour op on ``(1, 3, H, W)`` in ``[0, 1]`` (torchvision's definitions)."""
    if op == "brightness":  # blend with black
        return (image * factor).clamp(0, 1)
    if op == "contrast":  # blend with the mean grey level
        mean = kornia.color.rgb_to_grayscale(image).mean()
        return (mean + factor * (image - mean)).clamp(0, 1)
    if op == "saturation":  # blend with the greyscale image
        grey = kornia.color.rgb_to_grayscale(image)
        return (grey + factor * (image - grey)).clamp(0, 1)
    if op == "sharpness":
        return kornia.enhance.sharpness(image, max(factor, 0.0))  # 0 blurred, 1 original, > 1 sharper
    if op == "equalize":
        return kornia.enhance.equalize(image)
    if op == "grayscale":
        return kornia.color.rgb_to_grayscale(image).expand_as(image)
    return image
