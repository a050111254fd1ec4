"""SynthGait's walker: per-identity body and gait parameters, 3-D kinematics, camera projection.

Units are the stature ``H = 1`` (standing height, sole to top of the head). The body frame has ``x``
forward (walking direction), ``y`` to the person's left, ``z`` up. A gait cycle runs over
``p in [0, 1)`` from the left heel strike: stance to ``p ~= 0.6``, then swing.

:func:`pose_3d` returns a :class:`Pose3D` (COCO-17 joints plus the extra points the renderer needs:
neck, pelvis, head centre, heels, toes, hands); :func:`project` maps it through a :class:`Camera`
(walking yaw and elevation, orthographic) into pixels.

Nothing here depends on the identity except :class:`Body` and :class:`Gait`; views, clothing and
camera distance are drawn per sequence, so identity shows only in shape and walking pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
#: extra points after the 17 COCO joints
NECK, PELVIS, HEAD, L_HEEL, R_HEEL, L_TOE, R_TOE, L_HAND, R_HAND = range(17, 26)
NUM_POINTS = 26
LEFT_POINTS = (L_EYE, L_EAR, L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE, L_HEEL, L_TOE, L_HAND)
RIGHT_POINTS = (R_EYE, R_EAR, R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE, R_HEEL, R_TOE, R_HAND)


@dataclass(frozen=True)
class Body:
    """An identity's shape (fractions of stature; widths are half-widths, radii of round limbs)."""

    head_r: float  # head radius (horizontal); the head is 1.15x taller than wide
    neck: float
    torso: float  # neck base to hip line
    thigh: float
    shank: float
    ankle_h: float  # ankle above the sole
    foot: float
    upper_arm: float
    forearm: float
    shoulder_w: float  # lateral half-width at the shoulders
    hip_w: float  # lateral half-distance of the hip joints
    chest_w: float  # torso lateral half-width (chest)
    chest_d: float  # torso sagittal half-depth (chest)
    waist_w: float
    waist_d: float
    pelvis_w: float  # lateral half-width over the hips (flesh)
    pelvis_d: float
    thigh_r: float
    shank_r: float
    arm_r: float
    forearm_r: float
    neck_r: float
    lean: float  # forward torso lean (rad)
    belly: float  # forward offset of the waist (paunch), fraction of stature
    bulk: float  # clothing bulk (multiplies flesh widths and radii)


@dataclass(frozen=True)
class Gait:
    """An identity's walking pattern."""

    cadence: float  # gait cycles per second (two steps)
    hip_amp: float  # sagittal hip amplitude (rad)
    hip_offset: float
    knee_swing: float  # peak knee flexion in swing (rad)
    knee_stance: float  # knee flexion at loading response (rad)
    swing_center: float  # cycle phase of the swing knee peak
    toe_off: float  # heel-rise depth at push-off (rad of foot pitch)
    arm_swing: float  # shoulder amplitude (rad)
    arm_offset: float
    elbow: float  # mean elbow flexion (rad)
    elbow_amp: float
    arm_abduction: float  # arms held away from the body (rad)
    asym: float  # right/left amplitude ratio - 1
    phase_asym: float  # right leg phase offset from half a cycle (cycles)
    pelvis_rot: float  # transverse pelvis rotation amplitude (rad)
    sway: float  # lateral sway amplitude (fraction of stature)
    toe_out: float  # feet turned out (rad)
    head_pitch: float  # head bent forward (rad)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_body(rng: np.random.Generator) -> Body:
    """Draw an identity's body (vertical segments renormalised so the stature is exactly 1)."""
    head_r = _u(rng, 0.052, 0.068)
    neck = _u(rng, 0.025, 0.05)
    torso = _u(rng, 0.27, 0.33)
    leg = _u(rng, 0.44, 0.52)
    thigh_share = _u(rng, 0.47, 0.54)
    ankle_h = _u(rng, 0.035, 0.045)
    total = 2.3 * head_r + neck + torso + leg + ankle_h
    k = 1.0 / total  # renormalise: vertical extent when standing = 1
    head_r, neck, torso, leg, ankle_h = head_r * k, neck * k, torso * k, leg * k, ankle_h * k
    width = _u(rng, 0.85, 1.2)  # overall build (slim .. broad)
    arm = _u(rng, 0.36, 0.42)
    return Body(
        head_r=head_r,
        neck=neck,
        torso=torso,
        thigh=leg * thigh_share,
        shank=leg * (1 - thigh_share),
        ankle_h=ankle_h,
        foot=_u(rng, 0.13, 0.16),
        upper_arm=arm * _u(rng, 0.52, 0.58),
        forearm=arm * _u(rng, 0.42, 0.48),
        shoulder_w=_u(rng, 0.105, 0.135) * width,
        hip_w=_u(rng, 0.045, 0.06) * width,
        chest_w=_u(rng, 0.085, 0.11) * width,
        chest_d=_u(rng, 0.055, 0.075) * width,
        waist_w=_u(rng, 0.07, 0.1) * width,
        waist_d=_u(rng, 0.05, 0.08) * width,
        pelvis_w=_u(rng, 0.085, 0.11) * width,
        pelvis_d=_u(rng, 0.055, 0.075) * width,
        thigh_r=_u(rng, 0.04, 0.055) * width,
        shank_r=_u(rng, 0.028, 0.036) * width,
        arm_r=_u(rng, 0.024, 0.032) * width,
        forearm_r=_u(rng, 0.019, 0.025) * width,
        neck_r=_u(rng, 0.026, 0.034) * width,
        lean=_u(rng, -0.02, 0.12),
        belly=_u(rng, 0.0, 0.03) * width,
        bulk=_u(rng, 0.95, 1.15),
    )


def sample_gait(rng: np.random.Generator) -> Gait:
    """Draw an identity's walking pattern."""
    return Gait(
        cadence=_u(rng, 0.8, 1.05),
        hip_amp=_u(rng, 0.3, 0.48),
        hip_offset=_u(rng, 0.0, 0.1),
        knee_swing=_u(rng, 0.85, 1.25),
        knee_stance=_u(rng, 0.1, 0.35),
        swing_center=_u(rng, 0.7, 0.76),
        toe_off=_u(rng, 0.3, 0.6),
        arm_swing=_u(rng, 0.12, 0.55),
        arm_offset=_u(rng, -0.05, 0.1),
        elbow=_u(rng, 0.1, 0.6),
        elbow_amp=_u(rng, 0.05, 0.35),
        arm_abduction=_u(rng, 0.03, 0.2),
        asym=_u(rng, -0.15, 0.15),
        phase_asym=_u(rng, -0.04, 0.04),
        pelvis_rot=_u(rng, 0.03, 0.15),
        sway=_u(rng, 0.005, 0.02),
        toe_out=_u(rng, 0.0, 0.25),
        head_pitch=_u(rng, -0.05, 0.25),
    )


def with_speed(gait: Gait, speed: float) -> Gait:
    """The same person walking ``speed`` times their usual pace: cadence and stride both grow."""
    root = float(np.sqrt(speed))
    return replace(gait, cadence=gait.cadence * root, hip_amp=gait.hip_amp * root, arm_swing=gait.arm_swing * speed)


def _bump(p: np.ndarray | float, center: float, width: float) -> np.ndarray:
    """Periodic Gaussian bump over the cycle."""
    d = (np.asarray(p) - center + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def _rot_z(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])


def _sagittal(length: float, angle: float) -> np.ndarray:
    """A segment hanging down, swung forward by ``angle`` in the sagittal plane."""
    return length * np.array([np.sin(angle), 0.0, -np.cos(angle)])


@dataclass(frozen=True)
class Pose3D:
    """Points ``(NUM_POINTS, 3)`` in the body frame (sole at ``z = 0``) and the trunk twist angles."""

    points: np.ndarray
    pelvis_twist: float
    shoulder_twist: float


def _leg(body: Body, gait: Gait, p: float, amp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Knee, ankle, heel, toe offsets from the hip joint for cycle phase ``p``."""
    theta = gait.hip_offset + amp * np.cos(2 * np.pi * p)
    knee = 0.05 + gait.knee_stance * _bump(p, 0.12, 0.06) + gait.knee_swing * _bump(p, gait.swing_center, 0.1)
    knee_pt = _sagittal(body.thigh, theta)
    ankle_pt = knee_pt + _sagittal(body.shank, theta - float(knee))
    # foot pitch: toe up at heel strike, heel up at push-off, neutral in between
    pitch = 0.25 * _bump(p, 0.0, 0.05) - gait.toe_off * _bump(p, 0.58, 0.06) + 0.1 * _bump(p, 0.85, 0.08)
    c, s = np.cos(pitch), np.sin(pitch)

    def foot_point(fx: float, fz: float) -> np.ndarray:
        return ankle_pt + np.array([fx * c - fz * s, 0.0, fx * s + fz * c])

    heel = foot_point(-0.22 * body.foot, -body.ankle_h)
    toe = foot_point(0.78 * body.foot, -0.75 * body.ankle_h)
    return knee_pt, ankle_pt, heel, toe


def pose_3d(body: Body, gait: Gait, t: float, phase0: float) -> Pose3D:
    """The walker's points at time ``t`` seconds, with the sole of the lowest foot at ``z = 0``."""
    p_left = (t * gait.cadence + phase0) % 1.0
    p_right = (p_left + 0.5 + gait.phase_asym) % 1.0
    cyc = 2 * np.pi * p_left
    pts = np.zeros((NUM_POINTS, 3))
    pelvis_twist = gait.pelvis_rot * np.cos(cyc)  # left hip forward at left heel strike
    shoulder_twist = -0.7 * pelvis_twist
    pelvis = np.array([0.0, gait.sway * np.sin(cyc), 0.0])
    pts[PELVIS] = pelvis
    for side, hip_idx, p, amp in (
        (1, L_HIP, p_left, gait.hip_amp),
        (-1, R_HIP, p_right, gait.hip_amp * (1 + gait.asym)),
    ):
        hip = pelvis + _rot_z(np.array([0.0, side * body.hip_w, 0.0]), pelvis_twist)
        knee, ankle, heel, toe = _leg(body, gait, p, amp)
        turn = side * gait.toe_out
        off = [_rot_z(v, turn) for v in (knee, ankle, heel, toe)]
        k_idx, a_idx, h_idx, t_idx = (L_KNEE, L_ANKLE, L_HEEL, L_TOE) if side == 1 else (R_KNEE, R_ANKLE, R_HEEL, R_TOE)
        pts[hip_idx] = hip
        pts[k_idx], pts[a_idx], pts[h_idx], pts[t_idx] = (hip + v for v in off)

    lean = body.lean + 0.03 * np.cos(2 * cyc)
    neck = pelvis + body.torso * np.array([np.sin(lean), 0.0, np.cos(lean)])
    pts[NECK] = neck
    for side, s_idx, e_idx, w_idx, h_idx, p in (
        (1, L_SHOULDER, L_ELBOW, L_WRIST, L_HAND, p_left),
        (-1, R_SHOULDER, R_ELBOW, R_WRIST, R_HAND, p_right),
    ):
        shoulder = neck + _rot_z(np.array([0.0, side * body.shoulder_w, -0.025]), shoulder_twist)
        # the arm swings against the leg of its side
        alpha = gait.arm_offset - gait.arm_swing * np.cos(2 * np.pi * p)
        elbow_flex = gait.elbow + gait.elbow_amp * 0.5 * (1 + np.cos(2 * np.pi * p + np.pi))
        abd = np.array([0.0, side * np.sin(gait.arm_abduction), 0.0])
        upper = _sagittal(body.upper_arm, alpha) + body.upper_arm * abd
        fore = _sagittal(body.forearm, alpha + elbow_flex) + body.forearm * 0.5 * abd
        pts[s_idx] = shoulder
        pts[e_idx] = shoulder + upper
        pts[w_idx] = pts[e_idx] + fore
        pts[h_idx] = pts[w_idx] + fore * (0.055 / body.forearm)  # middle of the hand

    tilt = 0.5 * lean + gait.head_pitch * 0.5
    head = neck + (body.neck + 1.15 * body.head_r) * np.array([np.sin(tilt), 0.0, np.cos(tilt)])
    pts[HEAD] = head
    r = body.head_r
    down = np.array([0.0, 0.0, -1.0])
    fwd = np.array([np.cos(gait.head_pitch), 0.0, -np.sin(gait.head_pitch)])
    pts[NOSE] = head + r * (0.98 * fwd + 0.25 * down)
    for side, e_idx, r_idx in ((1, L_EYE, L_EAR), (-1, R_EYE, R_EAR)):
        pts[e_idx] = head + r * (0.8 * fwd + np.array([0.0, side * 0.35, 0.0]) - 0.05 * down)
        pts[r_idx] = head + r * (0.05 * fwd + np.array([0.0, side * 0.95, 0.0]) + 0.05 * down)

    ground = min(pts[[L_HEEL, R_HEEL, L_TOE, R_TOE], 2])
    pts[:, 2] -= ground
    return Pose3D(pts, float(pelvis_twist), float(shoulder_twist))


@dataclass(frozen=True)
class Camera:
    """Orthographic camera: ``yaw`` is the walking direction in the image plane (0: walking right,
    side view; pi/2: walking away, back view; -pi/2: towards the camera), ``elevation`` looks down."""

    yaw: float
    elevation: float

    def rotate(self, points: np.ndarray) -> np.ndarray:
        """Body frame -> camera frame ``(u right, v up, depth away)``, all ``(..., 3)``."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        wx, wy = c * x - s * y, s * x + c * y  # world: X right, Y into the scene, Z up
        ce, se = np.cos(self.elevation), np.sin(self.elevation)
        return np.stack([wx, wy * se + z * ce, wy * ce - z * se], axis=-1)

    def apparent_half_width(self, half_width: float, half_depth: float, twist: float = 0.0) -> float:
        """Image half-width of a horizontal elliptical body section (lateral ``half_width``, sagittal
        ``half_depth``) rotated by ``twist`` about the vertical axis."""
        a = self.yaw + twist
        return float(np.hypot(half_depth * np.cos(a), half_width * np.sin(a)))

    def far_side_weight(self) -> float:
        """How much one body side hides the other: 1 in a pure side view, 0 front or back."""
        return float(abs(np.cos(self.yaw)))

    def far_side(self) -> int:
        """``+1`` when the person's left side is away from the camera, ``-1`` when the right is."""
        return 1 if np.cos(self.yaw) >= 0 else -1
