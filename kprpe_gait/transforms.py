"""Joint-aware augmentation: silhouettes and their joints moved by the *same* geometric transform.

OpenGait augments each modality on its own (a random flip of the silhouettes would leave the joints
where they were); here every random transform is one homography applied to both, once per sequence
(all frames share the parameters, as in OpenGait).

Coordinates are continuous pixels of the frame: pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``, so
its centre is ``(c + 0.5, r + 0.5)`` (the convention of :mod:`kprpe_gait.data.formats`). Joints are
``(T, J, 3)``: ``x``, ``y`` in those pixels and a confidence that no transform changes (a joint moved
out of the frame keeps its confidence; KP-RPE handles positions outside ``[0, 1]``).

API::

    from kprpe_gait.transforms import JointAugment, cut_sides, normalize_joints

    aug = JointAugment(perspective_prob=0.2, flip_prob=0.2, rotate_prob=0.2, seed=0)
    sils, joints = aug(sils, joints)            # (T, H, W) any dtype -> float32; (T, J, 3) -> float32
    params = aug.sample(64, 64, rng)            # or draw once and replay: aug.apply(sils, joints, params)
    sils, joints = cut_sides(sils, joints)      # OpenGait's side cut: 10 px per side of a 64-wide frame
    joints01 = normalize_joints(joints, *sils.shape[-2:])   # x / W, y / H: the network's input

Transforms of :class:`JointAugment`, applied in this order (each with its own probability):

* ``perspective``: OpenGait's ``RandomPerspective``: the top and bottom corners are drawn from the
  outer ``margin`` pixels of each side (``margin = W // 44 * 10`` by default) and stretched onto the
  frame's corners;
* ``affine``: scale in ``scale_range`` and translation up to ``max_translate`` of the frame size,
  about the frame centre;
* ``flip``: horizontal mirror ``x -> W - x``; the joints also swap left and right (``flip_order``,
  COCO's by default);
* ``rotate``: rotation by up to ``rotate_degree`` degrees about the frame centre.

Silhouettes are resampled once, bilinearly, through the composed inverse map (outside the frame: 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from kprpe_gait.data.formats import COCO_FLIP_ORDER

__all__ = [
    "AugmentParams",
    "JointAugment",
    "cut_sides",
    "default_cut",
    "default_perspective_margin",
    "normalize_joints",
    "warp_sequence",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def default_cut(width: int) -> int:
    """OpenGait's side cut for a frame ``width`` pixels wide: ``width // 64 * 10`` per side."""
    return int(width // 64) * 10


def _check_joints(joints, frames: int | None = None) -> None:
    if joints.ndim != 3 or joints.shape[-1] not in (2, 3):
        raise ValueError(f"joints must have shape (T, J, 3) with (x, y, confidence), got {tuple(joints.shape)}")
    if frames is not None and joints.shape[0] != frames:
        raise ValueError(f"silhouettes have {frames} frames but joints have {joints.shape[0]}")


def cut_sides(sils: Array, joints: Array | None = None, cut: int | None = None) -> tuple[Array, Array | None]:
    """Cut ``cut`` columns from each side (OpenGait's ``BaseSilCuttingTransform``), joints follow.

    Args:
        sils: ``(..., H, W)`` numpy array or tensor.
        joints: ``(..., J, 3)`` in pixels of that frame, or ``None``.
        cut: columns per side; ``None`` uses :func:`default_cut` (10 for a 64-wide frame).

    Returns:
        ``(sils[..., cut:W - cut], joints with x - cut)``; the inputs are not modified.
    """
    width = sils.shape[-1]
    cut = default_cut(width) if cut is None else int(cut)
    if cut < 0 or 2 * cut >= width:
        raise ValueError(f"cannot cut {cut} columns from each side of a {width}-wide frame")
    if joints is not None and joints.shape[-1] not in (2, 3):
        raise ValueError(f"joints must end in (x, y[, confidence]), got shape {tuple(joints.shape)}")
    out = sils[..., cut : width - cut]
    if joints is None or cut == 0:
        return out, joints
    shifted = joints.clone() if torch.is_tensor(joints) else np.array(joints, copy=True)
    shifted[..., 0] -= cut
    return out, shifted


def normalize_joints(joints: Array, height: int, width: int) -> Array:
    """Pixels of an ``height x width`` frame -> ``[0, 1]``: ``(x / W, y / H)``; confidence unchanged."""
    if joints.shape[-1] not in (2, 3):
        raise ValueError(f"joints must end in (x, y[, confidence]), got shape {tuple(joints.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    out = joints.clone() if torch.is_tensor(joints) else np.array(joints, dtype=np.float32, copy=True)
    out[..., 0] /= width
    out[..., 1] /= height
    return out


# ---------------------------------------------------------------------------------- homographies
def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _about_centre(linear: np.ndarray, height: int, width: int) -> np.ndarray:
    cx, cy = width / 2.0, height / 2.0
    return _translate(cx, cy) @ linear @ _translate(-cx, -cy)


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 map sending the 4 points ``src`` (4, 2) to ``dst`` (4, 2) (``h33 = 1``)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def warp_sequence(sils: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Resample every frame of ``sils`` (T, H, W) through the pixel map ``matrix`` (input -> output).

    Output pixel centre ``p`` takes the bilinear value of the input at ``matrix^-1 p`` (0 outside).
    """
    frames, height, width = sils.shape
    inverse = torch.from_numpy(np.linalg.inv(matrix))
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64) + 0.5, torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij"
    )
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1) @ inverse.T  # (H, W, 3) input coords
    src = points[..., :2] / points[..., 2:]
    grid = torch.stack([2 * src[..., 0] / width - 1, 2 * src[..., 1] / height - 1], dim=-1)  # align_corners=False
    image = torch.from_numpy(np.ascontiguousarray(sils, dtype=np.float32))[:, None]  # (T, 1, H, W)
    out = F.grid_sample(
        image, grid.float()[None].expand(frames, -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[:, 0].numpy()


def _move_joints(joints: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    out = np.array(joints, dtype=np.float32, copy=True)
    xy1 = np.concatenate([out[..., :2].astype(np.float64), np.ones(out.shape[:-1] + (1,))], axis=-1)
    moved = xy1 @ matrix.T
    with np.errstate(invalid="ignore", divide="ignore"):  # missing joints may be NaN: they stay NaN
        out[..., :2] = (moved[..., :2] / moved[..., 2:]).astype(np.float32)
    return out


# ---------------------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class AugmentParams:
    """One draw of :class:`JointAugment`: the pixel map (input -> output) and whether it mirrors.

    Attributes:
        matrix: ``(3, 3)`` homography in continuous pixel coordinates of a ``size`` frame.
        flip: the map includes the horizontal mirror (joints swap left/right).
        size: ``(H, W)`` of the frame it was drawn for.
        applied: names of the transforms that were drawn, in order.
    """

    matrix: np.ndarray
    flip: bool
    size: tuple[int, int]
    applied: tuple[str, ...] = field(default=())

    @property
    def is_identity(self) -> bool:
        return not self.applied


class JointAugment:
    """Random perspective / affine / flip / rotation of a silhouette sequence and its joints together.

    Args:
        perspective_prob, affine_prob, flip_prob, rotate_prob: probability of each transform.
        perspective_margin: pixels per side the perspective corners are drawn from (``None``:
            OpenGait's ``W // 44 * 10``).
        scale_range: affine scale range.
        max_translate: affine translation bound as a fraction of ``(W, H)``.
        rotate_degree: rotation bound in degrees.
        flip_order: joint permutation of a horizontal flip (COCO's by default).
        seed: seed of the generator used when ``__call__`` gets no ``rng``.

    Defaults are OpenGait's SwinGait recipe (perspective, flip and rotation with probability 0.2).
    """

    def __init__(
        self,
        perspective_prob: float = 0.2,
        affine_prob: float = 0.0,
        flip_prob: float = 0.2,
        rotate_prob: float = 0.2,
        perspective_margin: int | None = None,
        scale_range: tuple[float, float] = (0.9, 1.1),
        max_translate: float = 0.1,
        rotate_degree: float = 10.0,
        flip_order: Sequence[int] = COCO_FLIP_ORDER,
        seed: int | None = None,
    ) -> None:
        for name, p in (("perspective_prob", perspective_prob), ("affine_prob", affine_prob),
                        ("flip_prob", flip_prob), ("rotate_prob", rotate_prob)):  # fmt: skip
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be 0 < low <= high, got {scale_range}")
        if sorted(flip_order) != list(range(len(flip_order))):
            raise ValueError(f"flip_order must be a permutation of 0..J-1, got {tuple(flip_order)}")
        self.perspective_prob = perspective_prob
        self.affine_prob = affine_prob
        self.flip_prob = flip_prob
        self.rotate_prob = rotate_prob
        self.perspective_margin = perspective_margin
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.max_translate = float(max_translate)
        self.rotate_degree = float(rotate_degree)
        self.flip_order = np.asarray(flip_order, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def sample(self, height: int, width: int, rng: np.random.Generator | None = None) -> AugmentParams:
        """Draw the transforms for one ``height x width`` sequence."""
        rng = self.rng if rng is None else rng
        matrix, applied, flip = np.eye(3), [], False
        if rng.random() < self.perspective_prob:
            margin = default_perspective_margin(width) if self.perspective_margin is None else self.perspective_margin
            if margin > 0:
                left, right = rng.uniform(0, margin, size=2), width - rng.uniform(0, margin, size=2)
                src = np.array([[left[0], 0], [right[0], 0], [right[1], height], [left[1], height]], dtype=np.float64)
                dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
                matrix, applied = _homography(src, dst) @ matrix, applied + ["perspective"]
        if rng.random() < self.affine_prob:
            scale = rng.uniform(*self.scale_range)
            tx, ty = rng.uniform(-self.max_translate, self.max_translate, size=2) * (width, height)
            linear = np.diag([scale, scale, 1.0])
            matrix, applied = _translate(tx, ty) @ _about_centre(linear, height, width) @ matrix, applied + ["affine"]
        if rng.random() < self.flip_prob:
            mirror = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            matrix, applied, flip = mirror @ matrix, applied + ["flip"], True
        if rng.random() < self.rotate_prob:
            theta = np.deg2rad(rng.uniform(-self.rotate_degree, self.rotate_degree))
            c, s = np.cos(theta), np.sin(theta)
            rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            matrix, applied = _about_centre(rotation, height, width) @ matrix, applied + ["rotate"]
        return AugmentParams(matrix, flip, (int(height), int(width)), tuple(applied))

    def apply(self, sils: np.ndarray, joints: np.ndarray, params: AugmentParams) -> tuple[np.ndarray, np.ndarray]:
        """Apply one draw to ``sils`` (T, H, W) and ``joints`` (T, J, 3); returns float32 copies."""
        sils = np.asarray(sils)
        joints = np.asarray(joints)
        if sils.ndim != 3:
            raise ValueError(f"silhouettes must have shape (T, H, W), got {sils.shape}")
        _check_joints(joints, sils.shape[0])
        if tuple(sils.shape[1:]) != params.size:
            raise ValueError(f"parameters were drawn for a {params.size} frame, got {tuple(sils.shape[1:])}")
        if params.is_identity:
            return sils.astype(np.float32), joints.astype(np.float32)
        out_joints = _move_joints(joints, params.matrix)
        if params.flip:
            if joints.shape[1] != len(self.flip_order):
                raise ValueError(f"flip_order covers {len(self.flip_order)} joints, got {joints.shape[1]}")
            out_joints = out_joints[:, self.flip_order]
        return warp_sequence(sils, params.matrix), out_joints

    def __call__(
        self, sils: np.ndarray, joints: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw once for the sequence and apply it (see :meth:`sample`, :meth:`apply`)."""
        sils = np.asarray(sils)
        if sils.ndim != 3:
            raise ValueError(f"silhouettes must have shape (T, H, W), got {sils.shape}")
        return self.apply(sils, joints, self.sample(*sils.shape[1:], rng=rng))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(perspective_prob={self.perspective_prob}, affine_prob={self.affine_prob}, "
            f"flip_prob={self.flip_prob}, rotate_prob={self.rotate_prob}, rotate_degree={self.rotate_degree})"
        )


def default_perspective_margin(width: int) -> int:
    """OpenGait's ``RandomPerspective`` margin: ``width // 44 * 10`` pixels per side."""
    return int(width // 44) * 10
