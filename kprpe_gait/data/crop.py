"""OpenGait's silhouette crop, with the geometry recorded so it can be replayed on joints.

OpenGait's ``datasets/pretreatment.py`` turns a person-crop silhouette of any size into a ``64 x 64``
frame; per frame it

1. drops the frame when the pixel sum is ``<= 10000`` (fewer than ~40 white pixels);
2. keeps the rows ``[y_top, y_btm]`` that hold any foreground (all columns);
3. resizes that band bicubically to ``(width=int(64 * W / h), height=64)``;
4. takes as x centre the first column where the cumulative column sum exceeds half the total (a frame
   whose centre is column 0 is dropped, as OpenGait's ``if not x_center`` does);
5. cuts columns ``[x_c - 32, x_c + 32)``, padding 32 zero columns on both sides first when that window
   touches or leaves the image (``left <= 0 or right >= width``).

:func:`crop_silhouette` does the same and returns a :class:`CropGeometry`; :meth:`CropGeometry.map_points`
replays it on points. In the continuous pixel convention of :mod:`kprpe_gait.data.formats` (pixel ``c``
covers ``[c, c + 1)``) a resize by ``s`` maps ``X -> s * X`` (OpenCV's resize samples destination pixel
centres at ``(i + 0.5) / s``), so the whole crop is::

    x' = x * sx - (x_c - 32)          sx = out_width / W
    y' = (y - y_top) * sy             sy = 64 / h

and the padding does not move anything (it shifts the image and the window by the same 32 columns).

The resize is OpenCV's ``cv2.resize(..., interpolation=cv2.INTER_CUBIC)``, as in OpenGait, and the
width is computed as OpenGait does (``int(size * (W / h))``, the ratio first: ``int(size * W / h)`` can
round the other way when ``size`` is not a power of two), so every frame kept is byte-identical to OpenGait's (tested against ``cv2`` and,
with ``OPENGAIT_ROOT`` set, against OpenGait's own ``imgs2pickle``). The silhouette is not re-binarised
after the resize (OpenGait keeps the interpolated grey levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .formats import SIL_SIZE

#: OpenGait's empty-frame threshold on the raw frame's pixel sum (``img.sum() <= 10000`` is dropped)
MIN_PIXEL_SUM = 10000

DROP_TOO_FEW_PIXELS = "too_few_pixels"
DROP_NO_CENTER = "no_center"


@dataclass(frozen=True)
class CropGeometry:
    """Where one raw frame went in OpenGait's crop (all integers are pixel indices).

    Attributes:
        y_top: first raw row with foreground.
        height: rows kept, ``y_btm - y_top + 1``.
        src_width: raw frame width ``W``.
        out_width: width after the resize, ``int(size * (W / height))``.
        x_center: centre column in the resized band.
        padded: whether 32 zero columns were added on both sides.
        size: output height and width (64).
    """

    y_top: int
    height: int
    src_width: int
    out_width: int
    x_center: int
    padded: bool
    size: int = SIL_SIZE

    @property
    def scale_x(self) -> float:
        return self.out_width / self.src_width

    @property
    def scale_y(self) -> float:
        return self.size / self.height

    @property
    def left(self) -> int:
        """First column of the cut in the resized (unpadded) band; may be negative."""
        return self.x_center - self.size // 2

    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """Map raw-frame points to the cropped frame.

        Args:
            xy: ``(..., 2)`` ``x, y`` in the raw frame's continuous pixel coordinates (pixel centres
                at ``i + 0.5``).

        Returns:
            ``(..., 2)`` float64 in the ``size x size`` frame, same convention.
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape[-1] != 2:
            raise ValueError(f"points must have shape (..., 2), got {xy.shape}")
        out = np.empty_like(xy)
        out[..., 0] = xy[..., 0] * self.scale_x - self.left
        out[..., 1] = (xy[..., 1] - self.y_top) * self.scale_y
        return out

    def matrix(self) -> np.ndarray:
        """The same map as a ``(2, 3)`` affine matrix acting on ``(x, y, 1)``."""
        return np.array(
            [[self.scale_x, 0.0, -float(self.left)], [0.0, self.scale_y, -self.y_top * self.scale_y]],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class CropResult:
    """Output of :func:`crop_silhouette`: either ``image`` + ``geometry``, or ``dropped`` (the reason).

    ``box`` is the raw frame's foreground bounding box ``(x0, y0, x1, y1)`` in pixel edges (``x1``,
    ``y1`` exclusive), ``None`` for an empty frame.
    """

    image: np.ndarray | None
    geometry: CropGeometry | None
    dropped: str | None = None
    box: tuple[int, int, int, int] | None = None


def _resize_bicubic(band: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenCV's bicubic resize (``a = -0.75``, no antialiasing), exactly OpenGait's call."""
    return cv2.resize(band, (width, height), interpolation=cv2.INTER_CUBIC)


def crop_silhouette(img: np.ndarray, size: int = SIL_SIZE, min_sum: int = MIN_PIXEL_SUM) -> CropResult:
    """OpenGait's per-frame silhouette crop (see the module docstring), recording its geometry.

    Args:
        img: ``(H, W)`` uint8 raw silhouette.
        size: output size (OpenGait's ``--img_size``, 64).
        min_sum: frames with ``img.sum() <= min_sum`` are dropped.

    Returns:
        a :class:`CropResult` with ``image`` ``(size, size)`` uint8 and ``geometry``, or with
        ``dropped`` = :data:`DROP_TOO_FEW_PIXELS` / :data:`DROP_NO_CENTER`.
    """
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"silhouette must be a 2-D uint8 array, got {img.shape} {img.dtype}")
    # OpenCV's reductions: the same integers as OpenGait's numpy sums, at a fraction of the call overhead
    # (per-frame overhead dominates on Gait3D's small crops)
    x0, y_top, box_w, height = cv2.boundingRect(img)  # rows/columns holding any foreground
    box = (x0, y_top, x0 + box_w, y_top + height) if height else None
    if cv2.sumElems(img)[0] <= min_sum:
        return CropResult(None, None, DROP_TOO_FEW_PIXELS, box)
    band = img[y_top : y_top + height]
    src_width = band.shape[1]
    out_width = int(size * (src_width / height))  # ratio first, as OpenGait (differs for sizes not powers of 2)
    if out_width < 1:
        return CropResult(None, None, DROP_NO_CENTER, box)
    resized = _resize_bicubic(band, out_width, size)

    col_cumsum = resized.sum(axis=0, dtype=np.int64).cumsum()
    # OpenGait's centre: the first column whose cumulative sum exceeds half the total
    x_center = int(np.searchsorted(col_cumsum, col_cumsum[-1] / 2, side="right"))
    if x_center in (0, out_width):  # centre at column 0 (OpenGait's ``if not x_center``), or no mass at all
        return CropResult(None, None, DROP_NO_CENTER, box)

    half = size // 2
    left, right = x_center - half, x_center + half
    padded = left <= 0 or right >= out_width
    if padded:  # OpenGait pads ``half`` zero columns on both sides first: the same as cutting into zeros
        out = np.zeros((size, right - left), dtype=np.uint8)
        lo, hi = max(left, 0), min(right, out_width)
        out[:, lo - left : hi - left] = resized[:, lo:hi]
    else:
        out = np.ascontiguousarray(resized[:, left:right])
    geometry = CropGeometry(y_top, height, src_width, out_width, x_center, padded, size)
    return CropResult(out, geometry, None, box)
