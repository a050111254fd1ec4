"""Keypoint geometry: patch centres, keypoint validity and query-to-keypoint offsets.

Conventions (every task package follows them):

* Keypoints are ``(x, y)`` normalised to ``[0, 1]`` in the frame the network sees (after any crop,
  resize or augmentation), optionally with a third column holding a confidence / visibility.
* Tokens are row-major on an ``h x w`` grid; the centre of token ``(row, col)`` is
  ``((col + 0.5) / w, (row + 0.5) / h)``.

Missing keypoints. A keypoint is *invalid* when either coordinate is NaN or infinite, or when a
confidence is given and is ``<= min_confidence`` (confidence 0 is the usual "not detected"). An
invalid keypoint contributes nothing: its offsets are set to exactly zero, so the linear map ``W_L``
receives no input from it, and no NaN can reach the attention.
"""

from __future__ import annotations

import torch

__all__ = ["patch_centers", "split_keypoints", "keypoint_offsets"]


def patch_centers(
    h: int,
    w: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Centres of the tokens of an ``h x w`` grid, normalised to ``[0, 1]``.

    Returns:
        ``(h*w, 2)`` tensor of ``(x, y)``, row-major: ``x = (col + 0.5) / w``, ``y = (row + 0.5) / h``.
    """
    if not (isinstance(h, int) and isinstance(w, int)) or h < 1 or w < 1:
        raise ValueError(f"grid size must be two positive ints, got ({h!r}, {w!r})")
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(h * w, 2)


def split_keypoints(
    keypoints: torch.Tensor,
    num_keypoints: int | None = None,
    min_confidence: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate keypoints and separate coordinates from validity.

    Args:
        keypoints: ``(B, L, 2)`` as ``(x, y)`` in ``[0, 1]``, or ``(B, L, 3)`` with a confidence.
        num_keypoints: the ``L`` the caller was built for; a different count is an error.
        min_confidence: keypoints with confidence ``<= min_confidence`` are invalid.

    Returns:
        ``(coords, valid)``: ``coords (B, L, 2)`` with invalid entries replaced by ``0`` (never NaN),
        and ``valid (B, L)`` bool.
    """
    if not torch.is_tensor(keypoints):
        raise TypeError(f"keypoints must be a tensor, got {type(keypoints).__name__}")
    if keypoints.dim() != 3 or keypoints.shape[-1] not in (2, 3):
        raise ValueError(
            f"keypoints must have shape (B, L, 2) as (x, y) or (B, L, 3) with a confidence, "
            f"got {tuple(keypoints.shape)}"
        )
    if num_keypoints is not None and keypoints.shape[1] != num_keypoints:
        raise ValueError(f"got {keypoints.shape[1]} keypoints per sample but this layer was built for {num_keypoints}")
    if not keypoints.is_floating_point():
        raise TypeError(f"keypoints must be floating point, got {keypoints.dtype}")
    coords = keypoints[..., :2]
    valid = torch.isfinite(coords).all(dim=-1)
    if keypoints.shape[-1] == 3:
        conf = keypoints[..., 2]
        valid = valid & torch.isfinite(conf) & (conf > min_confidence)
    coords = torch.where(valid[..., None], coords, torch.zeros_like(coords))
    return coords, valid


def keypoint_offsets(coords: torch.Tensor, valid: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Offsets of every token centre to every keypoint: the paper's ``D`` (eq. 8-9).

    Args:
        coords: ``(B, L, 2)`` keypoints ``(x, y)`` (from :func:`split_keypoints`).
        valid: ``(B, L)`` bool; invalid keypoints get zero offsets.
        grid: ``(N, 2)`` token centres (from :func:`patch_centers`).

    Returns:
        ``(B, N, 2L)`` laid out ``[dx0, dy0, dx1, dy1, ...]`` with ``d = grid - keypoint``.
    """
    diff = grid[None, :, None, :].to(coords.dtype) - coords[:, None, :, :]  # (B, N, L, 2)
    diff = diff * valid[:, None, :, None].to(diff.dtype)
    return diff.flatten(2)
