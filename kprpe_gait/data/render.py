"""SynthGait's renderer: a posed walker -> filled body parts -> anti-aliased, binarised silhouette.

Limbs are tapered capsules (a quadrilateral between two end disks), the trunk a polygon through
elliptical cross-sections (pelvis, waist, chest, shoulders) whose image width follows the view, the head
an ellipse; clothing adds a coat skirt, a backpack or a hand bag. Shapes are drawn with Pillow at
``supersample`` times the resolution, box-averaged down and thresholded at half, so edges are the
anti-aliased boundary of the shapes rather than a jagged rasterisation.

All coordinates are continuous pixels (pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``), the
convention of :mod:`kprpe_gait.data.formats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from . import walker as W
from .walker import Body, Camera, Pose3D

SUPERSAMPLE = 4


@dataclass(frozen=True)
class Outfit:
    """Per-sequence clothing: ``bulk`` multiplies flesh widths; ``coat`` is the coat's length below the
    hips (fraction of stature, 0 = none); ``backpack`` its depth (0 = none); ``bag_side`` a hand bag in
    the left (+1) or right (-1) hand (0 = none)."""

    bulk: float = 1.0
    coat: float = 0.0
    backpack: float = 0.0
    bag_side: int = 0


class Capsule(NamedTuple):
    """A tapered capsule: disks of radius ``ra`` at ``(ax, ay)`` and ``rb`` at ``(bx, by)`` and their hull."""

    ax: float
    ay: float
    bx: float
    by: float
    ra: float
    rb: float


class Ellipse(NamedTuple):
    """An axis-aligned ellipse."""

    cx: float
    cy: float
    rx: float
    ry: float


class Polygon(NamedTuple):
    points: tuple[tuple[float, float], ...]


Shape = Capsule | Ellipse | Polygon


@dataclass(frozen=True)
class Projector:
    """Body frame -> image pixels: ``scale`` pixels per stature, ``origin`` the pixel of the body origin."""

    camera: Camera
    scale: float
    origin: tuple[float, float]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` body-frame points -> ``(..., 2)`` continuous pixels."""
        cam = self.camera.rotate(np.asarray(points, dtype=np.float64))
        return np.stack([self.origin[0] + cam[..., 0] * self.scale, self.origin[1] - cam[..., 1] * self.scale], axis=-1)


_LEGS = ((W.L_HIP, W.L_KNEE, W.L_ANKLE), (W.R_HIP, W.R_KNEE, W.R_ANKLE))
_ARMS = ((W.L_SHOULDER, W.L_ELBOW, W.L_WRIST, W.L_HAND), (W.R_SHOULDER, W.R_ELBOW, W.R_WRIST, W.R_HAND))
# extra 3-D points projected with the pose: rows after the walker's NUM_POINTS
_HEEL_C, _TOE_C = (W.NUM_POINTS, W.NUM_POINTS + 1), (W.NUM_POINTS + 2, W.NUM_POINTS + 3)
_NECK_TOP, _COAT, _BACKPACK, _BAG = range(W.NUM_POINTS + 4, W.NUM_POINTS + 8)
_SECTIONS = W.NUM_POINTS + 8  # first of the trunk section centres


def body_shapes(pose: Pose3D, body: Body, outfit: Outfit, proj: Projector) -> list[Shape]:
    """The filled shapes of one frame, in image pixels."""
    pts3 = pose.points
    S = proj.scale
    bulk = body.bulk * outfit.bulk
    cam = proj.camera
    up, fwd = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    pelvis, neck = pts3[W.PELVIS], pts3[W.NECK]
    axis = neck - pelvis
    sections = (  # (fraction along the trunk, half-width, half-depth, forward offset, twist)
        (-0.14, body.pelvis_w * 0.85, body.pelvis_d * 0.9, -0.01, pose.pelvis_twist),
        (0.0, body.pelvis_w, body.pelvis_d, -0.005, pose.pelvis_twist),
        (0.45, body.waist_w, body.waist_d, body.belly, 0.5 * (pose.pelvis_twist + pose.shoulder_twist)),
        (0.78, body.chest_w, body.chest_d, 0.01, pose.shoulder_twist),
        (0.93, body.shoulder_w * 0.95, body.chest_d * 0.85, 0.0, pose.shoulder_twist),
        (1.0, body.neck_r * 1.6, body.neck_r * 1.4, 0.0, pose.shoulder_twist),
    )
    coat_t = min(1.0, outfit.coat / body.thigh) if outfit.coat > 0 else 0.0
    knees = 0.5 * (pts3[W.L_KNEE] + pts3[W.R_KNEE])
    bag_hand = W.L_HAND if outfit.bag_side > 0 else W.R_HAND
    extra = np.stack(
        [
            pts3[W.L_HEEL] + up * 0.018,
            pts3[W.R_HEEL] + up * 0.018,
            pts3[W.L_TOE] + up * 0.01,
            pts3[W.R_TOE] + up * 0.01,
            neck + up * body.neck * 1.3,
            pelvis + coat_t * (knees - pelvis),
            pelvis + 0.62 * axis - fwd * (body.chest_d * bulk + outfit.backpack * 0.5),
            pts3[bag_hand] - up * 0.055,
        ]
        + [pelvis + f * axis + fwd * off for f, _, _, off, _ in sections]
    )
    p2 = proj(np.concatenate([pts3, extra])).tolist()
    shapes: list[Shape] = []

    def capsule(a: int, b: int, ra: float, rb: float) -> None:
        shapes.append(Capsule(p2[a][0], p2[a][1], p2[b][0], p2[b][1], ra, rb))

    # legs and feet
    for side, (hip, knee, ankle) in enumerate(_LEGS):
        capsule(hip, knee, body.thigh_r * S * bulk, body.shank_r * 1.1 * S * bulk)
        capsule(knee, ankle, body.shank_r * S * bulk, body.shank_r * 0.65 * S * bulk)
        capsule(ankle, _HEEL_C[side], body.shank_r * 0.65 * S * bulk, 0.018 * S)
        capsule(_HEEL_C[side], _TOE_C[side], 0.018 * S, 0.011 * S)

    # trunk: a polygon through elliptical sections along the pelvis -> neck line
    centers = np.asarray(p2[_SECTIONS : _SECTIONS + len(sections)])
    widths = np.array([cam.apparent_half_width(a, b, tw) for _, a, b, _, tw in sections]) * S * bulk
    d = centers[-1] - centers[0]
    perp = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)
    left, right = centers + perp * widths[:, None], centers - perp * widths[:, None]
    shapes.append(Polygon(tuple(map(tuple, np.concatenate([left, right[::-1]]).tolist()))))
    shapes.append(Ellipse(centers[0, 0], centers[0, 1], widths[0], widths[0] * 0.6))

    # coat: a skirt from the waist to ``coat`` below the hips, wide enough to cover the thighs
    if outfit.coat > 0:
        bottom = p2[_COAT]
        spread = abs(p2[W.L_KNEE][0] - p2[W.R_KNEE][0]) * coat_t * 0.5 + body.thigh_r * S * bulk
        half_bottom = max(widths[1] * 1.15, spread * 1.1)
        top, half_top = centers[2], widths[2] * 1.1
        shapes.append(
            Polygon(
                (
                    (top[0] - half_top, top[1]),
                    (top[0] + half_top, top[1]),
                    (bottom[0] + half_bottom, bottom[1]),
                    (bottom[0] - half_bottom, bottom[1]),
                )
            )
        )

    # arms and hands
    arm_bulk = bulk * (1.15 if outfit.coat > 0 else 1.0)
    for sh, el, wr, hand in _ARMS:
        capsule(sh, el, body.arm_r * 1.1 * S * arm_bulk, body.forearm_r * 1.05 * S * arm_bulk)
        capsule(el, wr, body.forearm_r * S * arm_bulk, body.forearm_r * 0.8 * S * arm_bulk)
        capsule(wr, hand, body.forearm_r * 0.85 * S, body.forearm_r * 1.2 * S)

    # neck and head
    capsule(W.NECK, _NECK_TOP, body.neck_r * S * bulk, body.neck_r * S * bulk)
    head_half = cam.apparent_half_width(body.head_r * 0.88, body.head_r, pose.shoulder_twist)
    head_v = body.head_r * (1.15 * np.cos(cam.elevation) + 0.15 * np.sin(cam.elevation))
    shapes.append(Ellipse(p2[W.HEAD][0], p2[W.HEAD][1], head_half * S, head_v * S))

    # bags
    if outfit.backpack > 0:
        half = cam.apparent_half_width(0.085, outfit.backpack * 0.5, pose.shoulder_twist) * S
        shapes.append(Ellipse(p2[_BACKPACK][0], p2[_BACKPACK][1], half, 0.09 * S))
    if outfit.bag_side != 0:
        half = cam.apparent_half_width(0.018, 0.06, 0.0) * S
        shapes.append(Ellipse(p2[_BAG][0], p2[_BAG][1], half, 0.045 * S))
    return shapes


def shapes_bbox(shapes: list[Shape]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` bounding box of the shapes in continuous pixels."""
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for s in shapes:
        if isinstance(s, Capsule):
            x0 = min(x0, s.ax - s.ra, s.bx - s.rb)
            x1 = max(x1, s.ax + s.ra, s.bx + s.rb)
            y0 = min(y0, s.ay - s.ra, s.by - s.rb)
            y1 = max(y1, s.ay + s.ra, s.by + s.rb)
        elif isinstance(s, Ellipse):
            x0, x1 = min(x0, s.cx - s.rx), max(x1, s.cx + s.rx)
            y0, y1 = min(y0, s.cy - s.ry), max(y1, s.cy + s.ry)
        else:
            xs, ys = zip(*s.points)
            x0, x1, y0, y1 = min(x0, *xs), max(x1, *xs), min(y0, *ys), max(y1, *ys)
    return x0, y0, x1, y1


def rasterize(
    shapes: list[Shape],
    width: int,
    height: int,
    offset: tuple[float, float] = (0.0, 0.0),
    supersample: int = SUPERSAMPLE,
) -> np.ndarray:
    """Draw the union of ``shapes`` (shifted by ``-offset``) into a ``(height, width)`` 0/255 silhouette."""
    k = supersample
    canvas = Image.new("L", (width * k, height * k), 0)
    draw = ImageDraw.Draw(canvas)
    # continuous pixel -> Pillow coordinate at k x resolution (Pillow puts pixel centres on integers)
    sx, sy = -offset[0] * k - 0.5, -offset[1] * k - 0.5

    def disk(x: float, y: float, rx: float, ry: float) -> None:
        x, y, rx, ry = x * k + sx, y * k + sy, max(rx * k, 0.5), max(ry * k, 0.5)
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=255)

    for s in shapes:
        if isinstance(s, Capsule):
            disk(s.ax, s.ay, s.ra, s.ra)
            disk(s.bx, s.by, s.rb, s.rb)
            dx, dy = s.bx - s.ax, s.by - s.ay
            n = math.hypot(dx, dy)
            if n > 1e-9:
                px, py = -dy / n, dx / n
                quad = ((s.ax + px * s.ra, s.ay + py * s.ra), (s.bx + px * s.rb, s.by + py * s.rb),
                        (s.bx - px * s.rb, s.by - py * s.rb), (s.ax - px * s.ra, s.ay - py * s.ra))  # fmt: skip
                draw.polygon([(x * k + sx, y * k + sy) for x, y in quad], fill=255)
        elif isinstance(s, Ellipse):
            disk(s.cx, s.cy, s.rx, s.ry)
        else:
            draw.polygon([(x * k + sx, y * k + sy) for x, y in s.points], fill=255)
    small = canvas.resize((width, height), Image.Resampling.BOX)
    return np.where(np.asarray(small) >= 128, 255, 0).astype(np.uint8)
