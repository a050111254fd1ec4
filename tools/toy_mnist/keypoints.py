"""Keypoints of a digit, computed from the image itself, and the Abs-PE* rendering of them.

The paper (Sec. 3.3) defines the MNIST keypoints as "the four corners and the center of the minimum
cover box of a foreground image". Here:

* foreground = pixels ``> threshold`` (0.5 by default: MNIST ink is mostly close to 1, and the
  faint anti-aliased rim, which bilinear resampling smears further, should not widen the box);
* the box is the tight axis-aligned box of the foreground pixels, taken at the pixel *edges*: columns
  ``c0..c1`` and rows ``r0..r1`` give ``x in [c0/W, (c1+1)/W]``, ``y in [r0/H, (r1+1)/H]``;
* keypoints, in this order: top-left, top-right, bottom-right, bottom-left, centre, as ``(x, y)``
  normalised to ``[0, 1]`` of the canvas (:mod:`kprpe.core.geometry`'s convention).

An image without foreground gets NaN keypoints, which :class:`kprpe.core.KeypointRPE` treats as missing.
"""

from __future__ import annotations

import torch

__all__ = ["NUM_KEYPOINTS", "box_keypoints", "draw_keypoints", "mask_span"]

NUM_KEYPOINTS = 5


def mask_span(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last ``True`` index of each row of ``mask (B, N)``, each ``(B,)`` int64; a row without
    ``True`` gets ``(N, -1)``."""
    idx = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask, idx, mask.shape[1]).amin(1), torch.where(mask, idx, -1).amax(1)


def box_keypoints(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Corners and centre of the tight foreground box of each image.

    Args:
        images: ``(B, H, W)`` or ``(B, 1, H, W)``, ink bright on a dark background.
        threshold: a pixel is foreground when its value is ``> threshold``.

    Returns:
        ``(B, 5, 2)`` float32 ``(x, y)`` in ``[0, 1]``: TL, TR, BR, BL, centre; NaN where an image has
        no foreground.
    """
    if images.dim() == 4:
        if images.shape[1] != 1:
            raise ValueError(f"expected one channel, got images of shape {tuple(images.shape)}")
        images = images[:, 0]
    if images.dim() != 3:
        raise ValueError(f"images must be (B, H, W) or (B, 1, H, W), got {tuple(images.shape)}")
    if torch.isnan(images).any():
        raise ValueError("images contain NaN")
    height, width = images.shape[-2:]
    fg = images > threshold
    rows, cols = fg.any(dim=2), fg.any(dim=1)  # (B, H), (B, W)

    r0, r1 = mask_span(rows)
    c0, c1 = mask_span(cols)
    x0, x1 = c0.float() / width, (c1 + 1).float() / width
    y0, y1 = r0.float() / height, (r1 + 1).float() / height
    xc, yc = (x0 + x1) / 2, (y0 + y1) / 2
    kps = torch.stack(
        [torch.stack(p, -1) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (xc, yc))], dim=1
    )  # (B, 5, 2)
    empty = ~rows.any(1)
    return kps.masked_fill(empty[:, None, None], float("nan"))


def draw_keypoints(images: torch.Tensor, keypoints: torch.Tensor, value: float = 1.0) -> torch.Tensor:
    """Abs-PE*: burn each keypoint into the image as a 2x2-pixel dot of ``value``.

    The dot covers the four pixels around the pixel corner nearest to the keypoint, so a box corner
    (which lies on a pixel edge) sits at the dot's centre. Dots are clipped at the canvas border;
    non-finite keypoints draw nothing. The input is not modified.

    Args:
        images: ``(B, H, W)`` or ``(B, 1, H, W)``.
        keypoints: ``(B, L, 2)`` ``(x, y)`` in ``[0, 1]``.

    Returns:
        a new tensor shaped like ``images``.
    """
    squeeze = images.dim() == 3
    planes = images if squeeze else images[:, 0]
    if planes.dim() != 3 or (not squeeze and images.shape[1] != 1):
        raise ValueError(f"images must be (B, H, W) or (B, 1, H, W), got {tuple(images.shape)}")
    if keypoints.dim() != 3 or keypoints.shape[-1] != 2 or keypoints.shape[0] != planes.shape[0]:
        raise ValueError(f"keypoints must be (B, L, 2) with B={planes.shape[0]}, got {tuple(keypoints.shape)}")
    batch, height, width = planes.shape
    finite = torch.isfinite(keypoints).all(-1)  # (B, L)
    safe = torch.where(finite[..., None], keypoints, torch.zeros_like(keypoints))
    cx = torch.round(safe[..., 0] * width).long()  # nearest pixel corner (column index of its right pixel)
    cy = torch.round(safe[..., 1] * height).long()
    offsets = torch.tensor([[-1, -1], [-1, 0], [0, -1], [0, 0]], device=images.device)  # (4, [dy, dx])
    ys = cy[..., None] + offsets[:, 0]  # (B, L, 4)
    xs = cx[..., None] + offsets[:, 1]
    inside = finite[..., None] & (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    flat = (ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)).reshape(batch, -1)
    hits = torch.zeros(batch, height * width, device=images.device)
    hits.scatter_add_(1, flat, inside.reshape(batch, -1).float())  # clipped dots add 0: order-free
    out = torch.where(hits.view(batch, height, width) > 0, torch.as_tensor(value, dtype=planes.dtype), planes)
    return out if squeeze else out[:, None]
