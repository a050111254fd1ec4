"""Encoded images <-> ``(3, H, W)`` uint8 RGB tensors, with errors that name where the bytes came from."""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from PIL import Image

__all__ = ["PIL_ERRORS", "decode_image", "encode_image", "image_size", "load_image", "missing_landmarks"]

#: what PIL raises for corrupt, truncated or oversized image data (a decompression bomb is no OSError)
PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def decode_image(data: bytes | bytearray | memoryview | np.ndarray, where: str) -> torch.Tensor:
    """Encoded bytes (JPEG, PNG, ...) -> ``(3, H, W)`` uint8 RGB tensor.

    Args:
        data: the encoded image; a uint8 numpy array of the bytes is accepted too (some ``.bin`` files hold those).
        where: names the source in errors, e.g. ``"lfw.bin entry 17"``.

    Raises:
        ValueError: naming ``where`` when the bytes are not a decodable image.
    """
    if isinstance(data, np.ndarray):
        data = data.tobytes()
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            array = np.asarray(img.convert("RGB"))
    except PIL_ERRORS as e:
        raise ValueError(f"{where}: not a decodable image ({type(e).__name__}: {e})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (nothing decoded); errors name the file."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} not found") from None
    except PIL_ERRORS as e:
        raise ValueError(f"{path}: not a decodable image ({type(e).__name__}: {e})") from None


def encode_image(image: torch.Tensor | np.ndarray, format: str = "png", quality: int = 95) -> bytes:
    """``(3, H, W)`` uint8 tensor or ``(H, W, 3)`` uint8 array -> encoded bytes (``"png"`` or ``"jpeg"``)."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(f"image must be a (3, H, W) uint8 tensor, got {tuple(image.shape)} {image.dtype}")
        image = image.permute(1, 2, 0).contiguous().numpy()
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    buffer = io.BytesIO()
    if format.lower() in ("jpg", "jpeg"):
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    elif format.lower() == "png":
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    else:
        raise ValueError(f"image format must be 'png' or 'jpeg', got {format!r}")
    return buffer.getvalue()


def load_image(path) -> torch.Tensor:
    """An image file -> ``(3, H, W)`` uint8 RGB tensor; errors name the path."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} not found") from None
    return decode_image(data, str(path))


def missing_landmarks(count: int | None = None) -> torch.Tensor:
    """``(5, 3)`` (or ``(count, 5, 3)``) landmarks that are all missing: NaN ``x, y`` and confidence 0."""
    shape = (5, 3) if count is None else (count, 5, 3)
    out = torch.full(shape, float("nan"))
    out[..., 2] = 0.0
    return out
