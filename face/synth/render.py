"""SynthFace rendering: identities drawn in a face frame tied to the five landmarks, photographed with nuisances.

Why it is built this way (what makes misalignment hurt a model that ignores landmarks):

* **The face frame.** Every identity is drawn in the coordinates of the 112x112 ArcFace crop ("face frame"),
  with its five landmarks *at the template* (plus per-image expression and yaw, never per identity). So the
  landmarks themselves carry no identity -- a landmark-aware model cannot read identity off the keypoints --
  while everything that does carry identity is geometry *relative to* the landmarks: eye shape, size, tilt and
  iris colour; brow height above the eye, length, thickness, arch and slant; nostril spacing and drop, nose
  bridge width; lip thickness and resting curvature; face width, length and jaw taper; the hairline's shape;
  and moles and skin patches at identity-specific face-frame positions.
* **Weak global cues.** Skin tone and hair colour differ between identities only modestly and every photo
  gets its own illumination direction, colour cast, brightness, blur and noise, so colour statistics alone
  (which survive any misalignment) do not identify a face; reading the local geometry does, and that needs
  to know where the landmarks are.
* **Real misalignment in the detection crop.** The detector box is axis-aligned (the face's roll, normal with
  sigma 12 degrees, stays in the crop), looser than the alignment (1.05-1.35x, so the face is smaller) and
  off-centre by a normal error of 5 % of its side, with a taller-than-wide aspect that the resize to 112x112
  squashes. A model trained on aligned crops that ignores landmarks then looks for the eyes where they
  are not; a model told where the landmarks are can follow them.

A photo: background clutter, hair, face (shaded by a light direction on an ellipsoid), eyes, brows, nose,
mouth, marks and beard, fringe, optional occluders, then blur, a low-resolution round trip and noise. The
five landmarks are exact (the forward map of the face-frame points); the box is drawn around them.
Everything is numpy on an ``(H, W)`` grid (float32), one photo per call, seeded by the caller's generator.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from face.synth.config import SynthConfig

__all__ = ["TEMPLATE", "Camera", "Identity", "Photo", "render_photo", "sample_identity"]

#: The ArcFace template: the landmarks of every identity in the face frame (before expression and yaw).
TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
_SKIN = np.array([[244, 212, 190], [226, 180, 150], [198, 146, 110], [160, 110, 80], [112, 74, 52]], np.float32)
_HAIR = np.array(
    [[30, 26, 24], [70, 48, 34], [120, 86, 54], [180, 150, 100], [140, 70, 40], [150, 150, 150]], np.float32
)
_IRIS = np.array([[70, 45, 30], [40, 90, 140], [60, 110, 70], [110, 80, 50], [30, 30, 30]], np.float32)


@dataclass
class Identity:
    """Everything identity-specific, in face-frame pixels (112-crop units) unless said otherwise."""

    skin: np.ndarray  # (3,) RGB
    hair: np.ndarray  # (3,)
    iris: np.ndarray  # (3,)
    lips: np.ndarray  # (3,)
    face_centre: tuple[float, float]
    face_half: tuple[float, float]  # half width, half height
    jaw: float  # taper of the lower face
    hair_half: tuple[float, float]
    hairline: tuple[float, float, float, float, float]  # base v, amplitude, frequency, phase, slant
    eye_half: tuple[float, float]
    eye_tilt: float  # radians, mirrored on the other eye
    iris_radius: float
    brow: tuple[float, float, float, float, float, float]  # offset, half length, thickness, arch, slant, shift
    nostril: tuple[float, float, float, float]  # half spacing, radius x, radius y, drop
    bridge: float
    lip_thickness: tuple[float, float]  # upper, lower
    lip_curve: float
    marks: np.ndarray  # (K, 4): u, v, radius, darkness
    patches: np.ndarray  # (3, 4): u, v, sigma, amplitude
    beard: float  # 0 = none, else darkness


@dataclass
class Photo:
    """A rendered raw photo with its exact landmarks and a detector-like box."""

    image: np.ndarray  # (H, W, 3) uint8
    landmarks: np.ndarray  # (5, 2) float32 pixel indices
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1 (continuous coordinates)
    roll: float  # degrees
    yaw: float  # degrees


def _palette(
    rng: np.random.Generator, colours: np.ndarray, jitter: float, span: tuple[float, float] | None = None
) -> np.ndarray:
    """A colour between neighbours of ``colours`` (index drawn in ``span``), plus Gaussian jitter."""
    i = rng.uniform(*(span or (0, len(colours) - 1)))
    low = int(i)
    mixed = colours[low] + (i - low) * (colours[min(low + 1, len(colours) - 1)] - colours[low])
    return np.clip(mixed + rng.normal(0, jitter, 3), 0, 255).astype(np.float32)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one identity."""
    u = rng.uniform
    skin = _palette(rng, _SKIN, 6, span=(1, 3))  # moderate spread: colour alone should not identify
    face_half = (u(37, 46), u(51, 61))
    centre = (56 + rng.normal(0, 0.8), u(57, 65))
    marks = []
    for _ in range(rng.integers(2, 7)):  # inside the face, off the eyes and mouth
        r, angle = math.sqrt(u(0.05, 0.8)), u(0, 2 * math.pi)
        marks.append([centre[0] + r * face_half[0] * math.cos(angle), centre[1] + r * face_half[1] * math.sin(angle),
                      u(0.9, 2.3), u(0.3, 0.6)])  # fmt: skip
    patches = [[u(25, 87), u(35, 105), u(5, 12), u(-0.14, 0.14)] for _ in range(3)]
    return Identity(
        skin=skin,
        hair=_palette(rng, _HAIR, 10, span=(0, 3)),
        iris=_palette(rng, _IRIS, 12),
        lips=np.clip(skin * np.array([0.85, 0.6, 0.62]) + rng.normal(0, 8, 3), 0, 255).astype(np.float32),
        face_centre=centre,
        face_half=face_half,
        jaw=u(0.1, 0.45),
        hair_half=(face_half[0] + u(3, 12), face_half[1] + u(2, 12)),
        hairline=(u(14, 30), u(0, 6), u(0.04, 0.2), u(0, 2 * math.pi), u(-0.15, 0.15)),
        eye_half=(u(5.0, 8.0), u(2.2, 3.8)),
        eye_tilt=u(-0.25, 0.25),
        iris_radius=u(1.8, 3.0),
        brow=(u(7, 13), u(6, 10), u(1.4, 3.2), u(0, 3.5), u(-0.2, 0.2), u(-2, 2)),
        nostril=(u(3.5, 6.5), u(1.5, 2.8), u(1.0, 2.0), u(1, 4)),
        bridge=u(2, 5),
        lip_thickness=(u(1.5, 3.5), u(2, 5)),
        lip_curve=u(-1.5, 1.5),
        marks=np.array(marks, np.float32),
        patches=np.array(patches, np.float32),
        beard=u(0.55, 0.8) if rng.random() < 0.25 else 0.0,
    )


def _soft(sdf: np.ndarray, aa: float) -> np.ndarray:
    """Coverage of ``sdf < 0`` with an anti-aliased edge ``aa`` wide."""
    return np.clip(0.5 - sdf / aa, 0.0, 1.0)


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    image += alpha[..., None] * (colour - image)


def _ellipse_sdf(u, v, cu, cv, ru, rv, angle=0.0):
    """Approximate signed distance (in face pixels) to a rotated ellipse."""
    c, s = math.cos(angle), math.sin(angle)
    du, dv = u - cu, v - cv
    x, y = c * du + s * dv, -s * du + c * dv
    return (np.sqrt((x / ru) ** 2 + (y / rv) ** 2) - 1) * min(ru, rv)


class _Canvas:
    """The photo being painted, with the face-frame coordinates of every pixel; features paint inside boxes.

    A feature's face-frame box is mapped to a photo-pixel window (padded for the yaw warp and the soft
    edges), so each feature costs its own area, not the photo's.
    """

    def __init__(self, image: np.ndarray, u: np.ndarray, v: np.ndarray, forward: np.ndarray, yaw: float, cu: float):
        self.image, self.u, self.v = image, u, v
        self.forward, self.cos_yaw, self.cu = forward, math.cos(yaw), cu

    def window(self, u0: float, v0: float, u1: float, v1: float) -> tuple[slice, slice]:
        pad = 6.0  # face pixels: covers the yaw's sideways shift (at most 14 sin(yaw)) and soft edges
        ua = self.cu + self.cos_yaw * (u0 - self.cu)
        ub = self.cu + self.cos_yaw * (u1 - self.cu)
        ua, ub = min(ua, ub) - pad, max(ua, ub) + pad
        (a, b, c), (d, e, f) = self.forward.tolist()
        xs = [a * uu + b * vv + c for uu in (ua, ub) for vv in (v0 - pad, v1 + pad)]
        ys = [d * uu + e * vv + f for uu in (ua, ub) for vv in (v0 - pad, v1 + pad)]
        height, width = self.u.shape
        x0, x1 = min(max(math.floor(min(xs)), 0), width), min(max(math.ceil(max(xs)) + 1, 0), width)
        y0, y1 = min(max(math.floor(min(ys)), 0), height), min(max(math.ceil(max(ys)) + 1, 0), height)
        return slice(y0, y1), slice(x0, x1)

    def paint(self, colour, box: tuple[float, float, float, float], alpha_of) -> None:
        """Blend ``colour`` (RGB, or a function of ``(u, v)``) with coverage ``alpha_of(u, v)`` inside ``box``."""
        rows, cols = self.window(*box)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return
        u, v = self.u[rows, cols], self.v[rows, cols]
        alpha = alpha_of(u, v)
        if np.any(alpha > 0):
            _blend(self.image[rows, cols], colour(u, v) if callable(colour) else colour, alpha)


def _draw_face(canvas: _Canvas, ident: Identity, marks: np.ndarray, expr: dict, aa: float) -> None:
    """Paint ``ident`` with face-frame landmarks ``marks`` (5, 2) and expression ``expr`` on ``canvas``."""
    cu, cv = ident.face_centre
    fa, fb = ident.face_half
    hw, hh = ident.hair_half
    _ = canvas.paint(ident.hair, (cu - hw, cv - 6 - hh, cu + hw, cv - 6 + hh),
                     lambda u, v: _soft(_ellipse_sdf(u, v, cu, cv - 6, hw, hh), aa))  # fmt: skip

    def half_width(v):
        return fa * (1 - ident.jaw * np.clip((v - cv) / fb, 0, 1) ** 2)

    def face(u, v):
        return _soft((np.sqrt(((u - cu) / half_width(v)) ** 2 + ((v - cv) / fb) ** 2) - 1) * fa, aa)

    def skin(u, v):
        colour = np.broadcast_to(ident.skin, (*u.shape, 3)).copy()
        for pu, pv, sigma, amplitude in ident.patches:  # identity skin patches
            colour *= (1 + amplitude * np.exp(-((u - pu) ** 2 + (v - pv) ** 2) / (2 * sigma**2)))[..., None]
        return colour

    face_box = (cu - fa, cv - fb, cu + fa, cv + fb)
    canvas.paint(skin, face_box, face)
    eye_v = (marks[0, 1] + marks[1, 1]) / 2
    eye_u = (marks[0, 0] + marks[1, 0]) / 2
    # nose: bridge shading, ala, nostrils, tip highlight
    nose = marks[2]
    for side in (-1, 1):

        def bridge(u, v, side=side):
            along = np.clip((v - eye_v) / max(nose[1] - eye_v, 1.0), 0, 1)
            centre = eye_u + along * (nose[0] - eye_u) + side * ident.bridge * (0.6 + 0.6 * along)
            inside = (v > eye_v + 2) & (v < nose[1])
            return 0.5 * _soft(np.abs(u - centre) - 0.6, aa) * inside

        reach = 2 * ident.bridge + 2
        canvas.paint(
            ident.skin * 0.72, (min(eye_u, nose[0]) - reach, eye_v, max(eye_u, nose[0]) + reach, nose[1]), bridge
        )
    spacing, rx, ry, drop = ident.nostril
    for side in (-1, 1):
        nu, nv = nose[0] + side * spacing, nose[1] + drop
        box = (nu - 2 * rx - 1, nv - 2 * ry - 2, nu + 2 * rx + 1, nv + 2 * ry + 1)
        canvas.paint(
            ident.skin * 0.82,
            box,
            lambda u, v, nu=nu, nv=nv: 0.6 * _soft(_ellipse_sdf(u, v, nu, nv - 1, rx * 1.9, ry * 1.8), aa),
        )
        canvas.paint(ident.skin * 0.35, box, lambda u, v, nu=nu, nv=nv: _soft(_ellipse_sdf(u, v, nu, nv, rx, ry), aa))
    canvas.paint(np.minimum(ident.skin * 1.15, 255), (nose[0] - 3, nose[1] - 4, nose[0] + 3, nose[1] + 2),
                 lambda u, v: 0.5 * _soft(_ellipse_sdf(u, v, nose[0], nose[1] - 1, 2.5, 2), aa))  # fmt: skip
    # eyes and brows, mirrored between the two sides
    ew, eh = ident.eye_half
    offset, half_len, thick, arch, slant, shift = ident.brow
    for k, side in ((0, -1), (1, 1)):
        eu, ev = marks[k]
        tilt = -side * ident.eye_tilt
        box = (eu - ew - 2, ev - ew - 2, eu + ew + 2, ev + ew + 2)

        def eye_sdf(u, v, eu=eu, ev=ev, tilt=tilt):
            return _ellipse_sdf(u, v, eu, ev, ew, eh * expr["eye_open"], tilt)

        gaze_u = eu + expr["gaze"]

        def eye(u, v, eye_sdf=eye_sdf):
            return _soft(eye_sdf(u, v), aa)

        def iris(u, v, eye=eye, gaze_u=gaze_u, ev=ev, radius=ident.iris_radius):
            return eye(u, v) * _soft(np.sqrt((u - gaze_u) ** 2 + (v - ev) ** 2) - radius, aa)

        canvas.paint(ident.skin * 0.55, box, lambda u, v, eye_sdf=eye_sdf: _soft(np.abs(eye_sdf(u, v) + 0.3) - 0.7, aa))
        canvas.paint(np.array([236, 234, 228], np.float32), box, eye)
        canvas.paint(ident.iris, box, iris)
        canvas.paint(np.zeros(3, np.float32), box, lambda u, v, iris=iris, gaze_u=gaze_u, ev=ev: _soft(
            np.sqrt((u - gaze_u) ** 2 + (v - ev) ** 2) - 0.9, aa) * (iris(u, v) > 0))  # fmt: skip
        bu = eu - side * shift  # brow centre (shift > 0 moves both brows inwards)
        top = ev - offset - expr["brow_raise"] - arch - thick - abs(slant) * half_len - 2
        box = (bu - half_len - 1, top, bu + half_len + 1, ev - offset + thick + abs(slant) * half_len + 2)

        def brow(u, v, bu=bu, ev=ev, side=side):
            s = (u - bu) / half_len
            centre = ev - offset - expr["brow_raise"] - arch * (1 - np.clip(s, -1, 1) ** 2) + side * slant * (u - bu)
            return _soft(
                np.maximum(np.abs(v - centre) - thick / 2 * (1 - 0.4 * np.abs(s)), (np.abs(s) - 1) * half_len), aa
            )

        canvas.paint(ident.hair * 0.8, box, brow)
    # mouth between the corner landmarks
    left, right = marks[3], marks[4]
    mid = (left + right) / 2
    direction = (right - left) / max(np.linalg.norm(right - left), 1e-3)
    half = np.linalg.norm(right - left) / 2
    top, bottom = ident.lip_thickness
    curve = ident.lip_curve + expr["smile"]

    def lips(u, v):
        s = ((u - mid[0]) * direction[0] + (v - mid[1]) * direction[1]) / half
        w = -(u - mid[0]) * direction[1] + (v - mid[1]) * direction[0]  # down the face
        bulge = np.sqrt(np.clip(1 - s**2, 0, 1))
        centre = curve * (1 - np.clip(s, -1, 1) ** 2)
        gap = expr["open"] * bulge
        inside = np.abs(s) < 1
        upper = inside & (w > centre - top * bulge) & (w < centre)
        lower = inside & (w > centre + gap) & (w < centre + gap + bottom * bulge)
        return upper, lower, inside & (w >= centre) & (w <= centre + gap)

    reach = top + bottom + expr["open"] + abs(curve) + 3
    mouth_box = (min(left[0], right[0]) - 2, min(left[1], right[1]) - reach, max(left[0], right[0]) + 2,
                 max(left[1], right[1]) + reach)  # fmt: skip
    canvas.paint(ident.lips, mouth_box, lambda u, v: lips(u, v)[0].astype(np.float32))
    canvas.paint(ident.lips * 1.08, mouth_box, lambda u, v: lips(u, v)[1].astype(np.float32))
    canvas.paint(np.array([60, 20, 25], np.float32), mouth_box, lambda u, v: lips(u, v)[2].astype(np.float32))
    # marks, beard
    for mu, mv, radius, dark in ident.marks:
        canvas.paint(ident.skin * (1 - dark), (mu - radius - 1, mv - radius - 1, mu + radius + 1, mv + radius + 1),
                     lambda u, v, mu=mu, mv=mv, radius=radius: face(u, v) * _soft(
                         np.sqrt((u - mu) ** 2 + (v - mv) ** 2) - radius, aa))  # fmt: skip
    if ident.beard:

        def beard(u, v):
            upper, lower, _ = lips(u, v)
            chin = (v > mid[1] + 5) * (1 - upper - lower) * _soft(np.abs(u - cu) - half_width(v) * 0.95, aa)
            moustache = (np.abs(v - (mid[1] - top - 2.5)) < 1.6) * (np.abs(u - mid[0]) < 1.1 * half)
            return 0.75 * face(u, v) * np.clip(chin + moustache, 0, 1)

        canvas.paint(ident.hair * ident.beard, (cu - fa, mid[1] - top - 5, cu + fa, cv + fb), beard)
    # fringe over the forehead
    base, amplitude, frequency, phase, parting = ident.hairline

    def fringe(u, v):
        return face(u, v) * _soft(v - (base + amplitude * np.sin(frequency * u + phase) + parting * (u - cu)), aa)

    canvas.paint(ident.hair, (cu - fa, cv - fb, cu + fa, base + amplitude + abs(parting) * fa + 2), fringe)


def _similarity(scale: float, angle: float, shift: np.ndarray) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]], np.float64)


@dataclass
class Camera:
    """Face frame <-> photo pixels: a yaw warp about the face's vertical axis, then a similarity.

    Yaw fore-shortens the face horizontally about ``cu`` and moves points that stand out (a bump around the
    nose, ``depth``) sideways: ``u' = cu + cos(yaw) (u - cu) + sin(yaw) depth(u', v)``; the similarity
    (``scale``, ``roll``) then places face-frame point ``(56, 60)`` at ``centre``. ``to_face`` is the exact
    inverse used to render; ``to_photo`` solves the implicit yaw equation by fixed-point iteration (a
    contraction: the depth slope times ``sin(yaw)`` is well below 1), so landmarks are exact to float precision.
    """

    scale: float
    roll: float  # radians
    yaw: float  # radians
    centre: np.ndarray  # (2,) photo pixels
    cu: float
    nose: tuple[float, float]

    @property
    def forward(self) -> np.ndarray:
        """``(2, 3)`` similarity from the (yawed) face frame to photo pixels."""
        linear = _similarity(self.scale, self.roll, np.zeros(2))[:, :2]
        return np.concatenate([linear, (self.centre - linear @ np.array([56.0, 60.0]))[:, None]], 1)

    def depth(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """How far a face point stands out (face pixels), at yawed coordinates."""
        nu, nv = self.nose
        return 14.0 * np.exp(-((u - nu) ** 2 / (2 * 9.0**2) + (v - nv - 8) ** 2 / (2 * 16.0**2)))

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """``(P, 2)`` face-frame points -> photo pixel indices (float64)."""
        points = np.asarray(points, np.float64)
        yawed = points.copy()
        for _ in range(40):
            yawed[:, 0] = (
                self.cu
                + math.cos(self.yaw) * (points[:, 0] - self.cu)
                + math.sin(self.yaw) * self.depth(yawed[:, 0], points[:, 1])
            )
        forward = self.forward
        return yawed @ forward[:, :2].T + forward[:, 2]

    def to_face(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Photo pixel indices -> face-frame ``(u, v)`` (same shapes)."""
        inverse = np.linalg.inv(np.vstack([self.forward, [0, 0, 1]]))[:2]
        up = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        vp = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        return self.cu + (up - self.cu - math.sin(self.yaw) * self.depth(up, vp)) / math.cos(self.yaw), vp


def render_photo(ident: Identity, rng: np.random.Generator, config: SynthConfig) -> Photo:
    """One raw photo of ``ident`` with nuisances drawn from ``rng`` (see the module docstring)."""
    u01 = rng.uniform
    size = config.photo_size
    # expression: moves the mouth corners (landmarks follow), eye openness, brow raise, gaze
    expr = {
        "smile": u01(-1.0, 3.0),
        "open": u01(0, 4) if rng.random() < 0.3 else 0.0,
        "eye_open": u01(0.55, 1.1),
        "brow_raise": u01(-1, 2.5),
        "gaze": u01(-1.2, 1.2),
    }
    marks = TEMPLATE.copy()
    widen = u01(-1.0, 2.5)
    marks[3] += [-widen, -0.6 * expr["smile"]]
    marks[4] += [widen, -0.6 * expr["smile"]]
    marks[3:, 1] += expr["open"] / 2
    yaw = math.radians(u01(-config.max_yaw, config.max_yaw))
    roll = math.radians(float(np.clip(rng.normal(0, config.roll_std), -config.max_roll, config.max_roll)))
    scale = u01(*config.scale)
    cu = ident.face_centre[0]
    extent = 112 * scale * config.box_scale[1] * config.box_aspect[1]
    room = max(0.0, (size - extent) / 2)
    centre = np.array([size / 2 + u01(-room, room), size / 2 + u01(-room, room)])
    camera = Camera(scale, roll, yaw, centre, cu, (float(marks[2, 0]), float(marks[2, 1])))
    landmarks = camera.to_photo(marks)
    ys, xs = _grid(size)
    u, vp = camera.to_face(xs, ys)
    image = _background(rng, size)
    canvas = _Canvas(image, u, vp, camera.forward, yaw, cu)
    _draw_face(canvas, ident, marks, expr, aa=1.0 / scale)
    # illumination: a light direction on an ellipsoid over the face and hair, then a colour cast
    light = np.array([u01(-0.8, 0.8), u01(-0.6, 0.4), 1.0])
    light /= np.linalg.norm(light)
    ru, rv = ident.hair_half[0] * 1.1, ident.hair_half[1] * 1.1
    rows, cols = canvas.window(cu - ru, ident.face_centre[1] - rv, cu + ru, ident.face_centre[1] + rv)
    nu, nv = (u[rows, cols] - cu) / ru, (vp[rows, cols] - ident.face_centre[1]) / rv
    nz = np.sqrt(np.clip(1 - nu**2 - nv**2, 0, 1))
    shade = np.where(nz > 0, 0.55 + 0.6 * np.clip(nu * light[0] + nv * light[1] + nz * light[2], 0, 1), 1.0)
    image[rows, cols] *= shade[..., None].astype(np.float32)
    image *= (u01(0.7, 1.2) * rng.uniform(0.88, 1.12, 3)).astype(np.float32)
    if rng.random() < config.occluder_prob:
        _occlude(image, rng, u, vp, marks, xs, ys, size, scale)
    photo = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    blur = u01(0, config.max_blur)
    if blur > 0.2:
        photo = photo.filter(ImageFilter.GaussianBlur(blur))
    if rng.random() < config.low_res_prob:
        small = max(8, round(size / u01(*config.low_res_factor)))
        photo = photo.resize((small, small), Image.BILINEAR).resize((size, size), Image.BILINEAR)
    noise = rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(u01(0, config.max_noise))
    pixels = np.asarray(photo, np.float32) + noise
    box = _detector_box(rng, config, camera.forward, yaw, cu, scale)
    image = np.clip(pixels, 0, 255).round().astype(np.uint8)
    return Photo(image, landmarks.astype(np.float32), box, math.degrees(roll), math.degrees(yaw))


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ys, xs)`` pixel-index grids of a square photo (read-only, shared)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour gradient with a few soft blobs of clutter."""
    ys, xs = _grid(size)
    base = rng.uniform(20, 235, 3).astype(np.float32)
    slope = rng.uniform(-60, 60, (2, 3)).astype(np.float32) / size
    image = base + xs[..., None] * slope[0] + ys[..., None] * slope[1]
    for _ in range(rng.integers(1, 5)):
        cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(0.05, 0.3) * size]
        rows = slice(max(0, int(cy - r - 2)), max(0, int(cy + r + 3)))
        cols = slice(max(0, int(cx - r - 2)), max(0, int(cx + r + 3)))
        alpha = np.clip((r - np.sqrt((xs[rows, cols] - cx) ** 2 + (ys[rows, cols] - cy) ** 2)) / 2, 0, 1)
        _blend(image[rows, cols], rng.uniform(0, 255, 3).astype(np.float32), alpha)
    return image


def _occlude(image, rng, u, v, marks, xs, ys, size, scale) -> None:
    """Glasses or sunglasses on the face, or a blob (a hand, a cup) over part of the photo."""
    kind = rng.integers(3)
    if kind < 2:  # frames around both eyes; sunglasses are dark and opaque
        colour = rng.uniform(0, 60, 3).astype(np.float32)
        for k in (0, 1):
            sdf = _ellipse_sdf(u, v, marks[k, 0], marks[k, 1] + 1, 11, 8)
            alpha = _soft(sdf, 1 / scale) * 0.85 if kind == 0 else _soft(np.abs(sdf) - 0.9, 1 / scale)
            _blend(image, colour, alpha)
        _blend(image, colour, _soft(np.maximum(np.abs(v - marks[0, 1]) - 0.9, np.abs(u - 56) - 6), 1 / scale))
    else:
        cx, cy = rng.uniform(0.25, 0.75) * size, rng.uniform(0.4, 0.9) * size
        rx, ry = rng.uniform(0.1, 0.25) * size, rng.uniform(0.08, 0.2) * size
        alpha = _soft(_ellipse_sdf(xs, ys, cx, cy, rx, ry, rng.uniform(0, math.pi)), 1.0)
        _blend(image, rng.uniform(30, 230, 3).astype(np.float32), alpha)


def _detector_box(rng, config: SynthConfig, forward: np.ndarray, yaw: float, cu: float, scale: float) -> np.ndarray:
    """An axis-aligned box around the face with a detector's scale, aspect and centring errors."""
    centre = forward[:, :2] @ np.array([cu + 4 * math.sin(yaw), 60.0]) + forward[:, 2]
    width = 112 * scale * rng.uniform(*config.box_scale)
    height = width * rng.uniform(*config.box_aspect)
    centre = centre + rng.normal(0, config.box_shift, 2) * np.array([width, height])
    return np.array([centre[0] - width / 2, centre[1] - height / 2, centre[0] + width / 2, centre[1] + height / 2],
                    np.float32)  # fmt: skip
