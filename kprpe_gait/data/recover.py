"""Joints into an existing OpenGait silhouette pickle set, when the raw silhouettes are gone.

OpenGait's pretreatment did not record its per-frame crop, so it has to be estimated from what is left:
the pickled ``64 x 64`` silhouette and the frame's pose in raw person-crop pixels. The crop is
``x' = sx * x - left``, ``y' = sy * (y - y_top)`` with ``sx ~= sy`` (they differ only by the integer
rounding of the resized width), so one scale ``s`` and an offset ``(tx, ty)`` per frame are estimated:

* **vertical** (``s``, ``ty``): the crop maps the silhouette's vertical extent (top of the head to the
  sole of the lowest foot) onto rows ``[0, 64)``. Anthropometry places the eyes, ears and nose a fixed
  fraction of the stature below the top of the head and the ankles a fixed fraction above the sole
  (:data:`HEAD_DEPTH`, :data:`ANKLE_HEIGHT`, from standard segment tables). A least-squares fit of the
  confident head joints and the lower ankle against those rows gives ``s`` and ``ty``; ``s`` is then
  median-filtered over time (a person's image scale changes slowly) and ``ty`` refit.
* **horizontal** (``tx``): the torso's centre line is the mean ``x`` of the confident shoulders and hips;
  its position in the 64x64 frame is read off the silhouette as the (intensity-weighted) median column of
  the rows between the mapped shoulder and hip heights.

* **refinement** (``tx``, ``ty``): the offset is then nudged, within +-2 px, to where the confident
  joints sit deepest inside the silhouette (the sum of their confidences times the silhouette blurred
  with a Gaussian of 1.5 px, which peaks on the limbs' centre lines).

Frames with no usable anchor get the parameters interpolated from their neighbours. What is
approximate: the anthropometric constants (people and hairstyles vary), the torso line vs the
silhouette's torso (arms in front of the body, bags, coats), pose-estimator noise, and partial
silhouettes (occlusions break the "extent = stature" assumption). The error measured on SynthGait,
where the truth is known, is reported by ``tests/gait/data/test_recover.py`` and docs/data.md.

Frame pairing is the other unknown: OpenGait's pickle holds the frames that survived its filters, in
**string** order of their file names, without the names. The pose files' names give the frame numbers
of the sequence's range; when the pickle has exactly one frame per number of that range, every pickled
frame is known (:func:`convert_sequence`), and the frames among them without a pose file are left out.
Otherwise some silhouette is missing and nothing says which, so the sequence is reported by reason and not
written. What this does not catch: a silhouette frame outside the pose files' number range (pose missing
at an end) together with a silhouette missing inside. Measured on OpenGait's real output of 100 SynthGait
sequences (``tools/bench_pretreat.py``): 27 written, one of them shifted by a frame. About 70 of the 100
lose a silhouette somewhere (2 % missing and 1 % broken frames, 20-100 frames per sequence), which caps
what a count-based pairing can write; OpenGait's log names its broken frames (``has no data``) but not the
missing ones, and with it 41 would qualify.
Aligning by content was tried and is not used: on SynthGait (100 sequences, 3844 frames with poses on
both sides) the pose of a neighbouring frame fits a pickled silhouette about as well as its own.
Measured as "own pose fits better than the previous / next frame's" (pairwise; chance 50 %):

* stick figure (limbs drawn 3 px wide) vs ink, mean distance of the limbs to the ink: 87 % with the
  true crop, but 63 % with the crop estimated as above (66 % with the true scale and vertical offset
  and only ``tx`` estimated; 64 % with ``tx, ty`` searched per candidate);
* crop-free cues: foot-band ink extent vs the ankles' spread, 52-64 %; a per-sequence ridge regression
  from stature-normalised joints to 24 band-extent features, 55 % out of sample (98 % in sample: it
  memorises the pairing it is fitted on, so it cannot confirm one).
* the pose's noise averaged away: with the true scale, the translation searched per candidate and each
  pose replaced by a local quadratic fit over +-3 frames (centred poses), limb samples vs the ink's
  distance transform: 72.7 % (66.5 % with the raw poses). Writing most of a sequence around a lost
  frame with no mispaired row needs roughly 93 % per comparison (evidence adds up over the rows between
  two candidate places of the loss; at 93 % about 7 rows each side stay ambiguous at a 4-sigma margin,
  at 73 % about 44, most of a SynthGait sequence).
* the silhouettes' own motion, to find where a frame is missing: a quadratic in time fitted over 6
  consecutive pickled frames (row-sum profiles, or all pixels) fits better with the true timing at 89-96 %
  of the lost frames, but also "finds" a lost frame at 68-79 % of the intact neighbours: the normalised
  silhouette jumps from frame to frame (the lowest foot sets the scale, rasterisation steps), so a
  skipped frame does not stand out.

The cause is in the data: the median joint moves 0.95 px per frame (64-px scale) while the pose
estimate's noise is about 1.1 px per coordinate (from the 1- and 2-frame pose differences, 2.34 and
2.86 px), so a frame's joints and its neighbour's are statistically alike for most joints. Placing a
dropped frame by content needs either less pose noise or the raw silhouettes.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats import NUM_JOINTS, SIL_SIZE
from .io import (
    FRAME_RE,
    DataFormatError,
    frame_number,
    load_array_pickle,
    read_pose_files,
    remove_sequence,
    remove_stale_temporaries,
    sequence_complete,
    write_sequence,
)
from .pretreat import (
    DROP_MALFORMED_POSE,
    DROP_NO_POSE,
    PretreatSummary,
    SequenceReport,
    list_files,
    output_settings,
    run_into,
)

#: depth below the top of the head as a fraction of stature (nose, left/right eye, left/right ear)
HEAD_DEPTH = {0: 0.090, 1: 0.064, 2: 0.064, 3: 0.072, 4: 0.072}
#: ankle (malleolus) height above the sole as a fraction of stature
ANKLE_HEIGHT = 0.039
SHOULDERS, HIPS, ANKLES = (5, 6), (11, 12), (15, 16)
#: why a sequence is not converted (its pickled frames are counted under the reason)
DROP_COUNT_MISMATCH = "count_mismatch"  # not one pickled frame per frame number of the pose files' range
DROP_POSE_GAP = "pose_gap"  # a pose file missing, and the file names do not fix where its frame sorts
DROP_NO_ANCHOR = "no_anchor_joints"  # no frame of the sequence has the joints the crop estimate needs


@dataclass(frozen=True)
class FrameFit:
    """``joints64 = s * joints_raw + (tx, ty)`` for one frame (NaN where not estimable)."""

    s: float
    tx: float
    ty: float


def _vertical_fit(joints: np.ndarray, min_conf: float, size: int) -> tuple[float, float]:
    """Least-squares ``(s, ty)`` from the head joints and the lower ankle; NaN when under-determined."""
    conf = joints[:, 2] > min_conf
    ys, targets = [], []
    head = [j for j in HEAD_DEPTH if conf[j]]
    for j in head:
        ys.append(joints[j, 1])
        targets.append(size * HEAD_DEPTH[j])
    ankles = [j for j in ANKLES if conf[j]]
    if not head or not ankles:
        return float("nan"), float("nan")
    lowest = max(ankles, key=lambda j: joints[j, 1])
    # weight the single ankle like the whole head group, so both ends pull equally
    weights = [1.0 / len(head)] * len(head) + [1.0]
    ys.append(joints[lowest, 1])
    targets.append(size * (1.0 - ANKLE_HEIGHT))
    w = np.sqrt(np.asarray(weights))
    a = np.stack([np.asarray(ys), np.ones(len(ys))], axis=1) * w[:, None]
    (s, ty), *_ = np.linalg.lstsq(a, np.asarray(targets) * w, rcond=None)
    if not np.isfinite(s) or s <= 0:
        return float("nan"), float("nan")
    return float(s), float(ty)


def _vertical_offset(joints: np.ndarray, s: float, min_conf: float, size: int) -> float:
    """``ty`` for a fixed ``s``: mean of the head-group and the ankle estimates (NaN if neither)."""
    conf = joints[:, 2] > min_conf
    estimates = []
    head = [size * HEAD_DEPTH[j] - s * joints[j, 1] for j in HEAD_DEPTH if conf[j]]
    if head:
        estimates.append(float(np.mean(head)))
    ankles = [j for j in ANKLES if conf[j]]
    if ankles:
        lowest = max(ankles, key=lambda j: joints[j, 1])
        estimates.append(size * (1.0 - ANKLE_HEIGHT) - s * float(joints[lowest, 1]))
    return float(np.mean(estimates)) if estimates else float("nan")


def _horizontal_offset(sil: np.ndarray, joints: np.ndarray, s: float, ty: float, min_conf: float) -> float:
    """``tx`` from the torso line (mean x of confident shoulders/hips) vs the silhouette's torso rows."""
    conf = joints[:, 2] > min_conf
    torso = [j for j in SHOULDERS + HIPS if conf[j]]
    if not torso:
        return float("nan")
    x_raw = float(joints[torso, 0].mean())
    top_joints = [j for j in SHOULDERS if conf[j]] or torso
    bottom_joints = [j for j in HIPS if conf[j]] or torso
    r0 = int(np.clip(np.floor(s * joints[top_joints, 1].mean() + ty), 0, sil.shape[0] - 1))
    r1 = int(np.clip(np.ceil(s * joints[bottom_joints, 1].mean() + ty), r0 + 1, sil.shape[0]))
    columns = sil[r0:r1].astype(np.float64).sum(axis=0)
    if columns.sum() <= 0:
        columns = sil.astype(np.float64).sum(axis=0)
        if columns.sum() <= 0:
            return float("nan")
    cdf = np.cumsum(columns) / columns.sum()
    # continuous median position: column i holds the mass between x = i and x = i + 1
    x64 = float(np.interp(0.5, np.concatenate([[0.0], cdf]), np.arange(sil.shape[1] + 1)))
    return x64 - s * x_raw


def _fill_nan(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaNs (constant at the ends); all-NaN stays NaN."""
    good = np.isfinite(values)
    if not good.any() or good.all():
        return values
    idx = np.arange(len(values))
    return np.interp(idx, idx[good], values[good])


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    return np.array([np.median(padded[i : i + window]) for i in range(len(values))])


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """``(n, n)`` matrix of a 1-D Gaussian blur with zero padding (``blur(img) = G @ img @ G.T``)."""
    idx = np.arange(n)
    g = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
    return g / g.sum(axis=1, keepdims=True).max()


def _bilinear(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample ``img`` at continuous-pixel points ``xy`` ``(..., 2)`` (clamped to the frame)."""
    h, w = img.shape
    x = np.clip(xy[..., 0] - 0.5, 0, w - 1.001)
    y = np.clip(xy[..., 1] - 0.5, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    return (
        img[y0, x0] * (1 - fx) * (1 - fy)
        + img[y0, x0 + 1] * fx * (1 - fy)
        + img[y0 + 1, x0] * (1 - fx) * fy
        + img[y0 + 1, x0 + 1] * fx * fy
    )


REFINE_RANGE, REFINE_STEP, REFINE_SIGMA = 2.0, 0.25, 1.5


def _refine_offset(sil: np.ndarray, points: np.ndarray, weights: np.ndarray, blur: np.ndarray) -> tuple[float, float]:
    """The shift within +-REFINE_RANGE px that puts ``points`` ``(J, 2)`` deepest inside ``sil``."""
    if len(points) == 0:
        return 0.0, 0.0
    depth = blur @ (sil.astype(np.float64) / 255.0) @ blur.T
    steps = np.arange(-REFINE_RANGE, REFINE_RANGE + 1e-9, REFINE_STEP)
    shifts = np.stack(np.meshgrid(steps, steps, indexing="ij"), axis=-1).reshape(-1, 2)  # (S, 2)
    scores = (_bilinear(depth, points[None] + shifts[:, None]) * weights).sum(axis=1)
    # ties (e.g. all points deep inside) resolve to the smallest shift
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    pick = best[np.argmin(np.abs(shifts[best]).sum(axis=1))]
    return float(shifts[pick, 0]), float(shifts[pick, 1])


def estimate_crops(
    sils: np.ndarray, raw_joints: np.ndarray, min_conf: float = 0.3, smooth: int = 7
) -> list[FrameFit] | None:
    """Estimate each frame's crop from its 64x64 silhouette and its raw pose.

    Args:
        sils: ``(T, 64, 64)`` uint8 OpenGait silhouettes.
        raw_joints: ``(T, 17, 3)`` poses in raw crop pixels, pixel-centre convention.
        min_conf: joints at or below this confidence are not used.
        smooth: window of the running median on the scale.

    Returns:
        one :class:`FrameFit` per frame, or ``None`` when no frame of the sequence has anchors.
    """
    size = sils.shape[-1]
    scale = np.array([_vertical_fit(j, min_conf, size)[0] for j in raw_joints])
    if not np.isfinite(scale).any():
        return None
    scale = _running_median(_fill_nan(scale), min(smooth, len(scale)) | 1)
    ty = _fill_nan(np.array([_vertical_offset(j, s, min_conf, size) for j, s in zip(raw_joints, scale)]))
    tx = _fill_nan(
        np.array([_horizontal_offset(sil, j, s, t, min_conf) for sil, j, s, t in zip(sils, raw_joints, scale, ty)])
    )
    if not (np.isfinite(ty).all() and np.isfinite(tx).all()):
        return None
    blur = _gaussian_matrix(size, REFINE_SIGMA)
    fits = []
    for sil, joints, s, x, y in zip(sils, raw_joints, scale, tx, ty):
        good = joints[:, 2] > min_conf
        points = s * joints[good, :2] + np.array([x, y])
        dx, dy = _refine_offset(sil, points, joints[good, 2], blur)
        fits.append(FrameFit(float(s), float(x + dx), float(y + dy)))
    return fits


def apply_fits(raw_joints: np.ndarray, fits: list[FrameFit]) -> np.ndarray:
    """``(T, 17, 3)`` raw joints (pixel-centre convention) -> the 64x64 frame; confidence-0 joints at 0."""
    out = np.zeros(raw_joints.shape, dtype=np.float32)
    for t, fit in enumerate(fits):
        out[t, :, 0] = fit.s * raw_joints[t, :, 0] + fit.tx
        out[t, :, 1] = fit.s * raw_joints[t, :, 1] + fit.ty
    out[..., 2] = raw_joints[..., 2]
    out[raw_joints[..., 2] <= 0, :2] = 0.0
    return out


def load_opengait_sils(folder: Path) -> np.ndarray:
    """The single silhouette pickle of an OpenGait sequence folder, ``(T, 64, 64)`` uint8.

    Raises:
        DataFormatError: no pickle, several, or the wrong shape/dtype.
    """
    pkls = sorted(folder.glob("*.pkl"))
    if len(pkls) != 1:
        raise DataFormatError(f"{folder}: expected one silhouette .pkl (OpenGait's '<seq>.pkl'), found {len(pkls)}")
    sils = load_array_pickle(pkls[0])
    if sils.ndim != 3 or sils.shape[1:] != (SIL_SIZE, SIL_SIZE):
        raise DataFormatError(f"{pkls[0]}: expected (T, {SIL_SIZE}, {SIL_SIZE}) silhouettes, got {sils.shape}")
    return sils.astype(np.uint8)


@dataclass
class ConvertedSequence:
    """One sequence of :func:`convert_sequence`: the frames whose pairing is established, in numeric frame
    order (``sils`` ``(T, 64, 64)`` uint8, ``joints`` ``(T, 17, 3)`` float32, ``frames`` their pose files'
    frame numbers), what was left out by reason, and the pose files that could not be read."""

    sils: np.ndarray
    joints: np.ndarray
    frames: list[int]
    dropped: Counter
    bad_files: list[tuple[str, str, str]]


def frame_slots(pose_files: list) -> list[int] | None:
    """The frame numbers from the lowest to the highest pose file's, in the string order of their file
    names (OpenGait's order for the silhouettes), or ``None`` when that order is not fixed by the files.

    A frame without a pose file has no name to sort, so its place is inferred; that is certain when every
    pose file name has the same prefix and the same digit count (``f09999`` and ``f10000``, or ``f100`` and
    ``f150``): then every name in between sorts numerically. Without gaps the pose files' own string order
    is returned, whatever their names.

    Args:
        pose_files: the sequence's pose files, sorted by file name.
    """
    numbers = [frame_number(p) for p in pose_files]
    if not numbers:
        return []
    lo, hi = min(numbers), max(numbers)
    if hi - lo + 1 == len(numbers):
        return numbers
    matches = [FRAME_RE.search(os.path.basename(p)) for p in pose_files]
    prefixes = {os.path.basename(p)[: m.start(1)] for p, m in zip(pose_files, matches)}
    widths = {len(m.group(1)) for m in matches}
    if len(prefixes) != 1 or len(widths) != 1:
        return None
    return list(range(lo, hi + 1))


def convert_sequence(
    sils: np.ndarray, pose_files: list, pose_offset: float = 0.5, min_conf: float = 0.3, strict: bool = False
) -> ConvertedSequence:
    """One sequence: pair the pickled frames with the pose files where the pairing is certain, estimate
    their crops and map the joints.

    The pairing is taken only when the pickle has exactly one frame per frame number from the lowest to
    the highest pose file's (:func:`frame_slots`): then the ``i``-th pickled frame is the ``i``-th of that
    range in string order. Frames of the range without a pose file (``no_pose``) or with a malformed one
    (``malformed_pose``) are left out and counted; the rest of the sequence is written. Otherwise the
    whole sequence is reported and not written: ``count_mismatch`` (a silhouette missing somewhere in the
    range; which one is not known, so no frame of it is certain) or ``pose_gap`` (a pose file missing and
    the file names do not fix where its frame sorts). Not caught: a silhouette outside the range (its pose
    file missing at a sequence end) together with one missing inside it.

    Args:
        sils: ``(m, 64, 64)`` OpenGait's pickled frames (string order of their file names).
        pose_files: the sequence's pose files (any order).
        strict: raise on a malformed pose file instead of leaving its frame out.
    """
    pose_files = sorted(pose_files, key=os.path.basename)  # OpenGait's sorted(paths): string order
    poses, errors = read_pose_files(pose_files)
    if errors and strict:
        raise DataFormatError(next(iter(errors.values())))
    bad = [(str(pose_files[k]), DROP_MALFORMED_POSE, message) for k, message in sorted(errors.items())]
    empty = (np.zeros((0, SIL_SIZE, SIL_SIZE), np.uint8), np.zeros((0, NUM_JOINTS, 3), np.float32))
    slots = frame_slots(pose_files)
    if slots is None:
        return ConvertedSequence(*empty, [], Counter({DROP_POSE_GAP: len(sils)}), bad)
    if len(slots) != len(sils):
        return ConvertedSequence(*empty, [], Counter({DROP_COUNT_MISMATCH: len(sils)}), bad)
    pose_index = {frame_number(p): k for k, p in enumerate(pose_files)}
    dropped: Counter = Counter()
    rows, picks = [], []
    for row, number in enumerate(slots):
        k = pose_index.get(number)
        if k is None:
            dropped[DROP_NO_POSE] += 1
        elif k in errors:
            dropped[DROP_MALFORMED_POSE] += 1
        else:
            rows.append(row)
            picks.append(k)
    if not rows:
        return ConvertedSequence(*empty, [], dropped, bad)
    raw = poses[picks].astype(np.float64)
    raw[..., :2] += pose_offset
    kept = sils[rows]
    fits = estimate_crops(kept, raw, min_conf)
    if fits is None:
        dropped[DROP_NO_ANCHOR] += len(rows)
        return ConvertedSequence(*empty, [], dropped, bad)
    joints = apply_fits(raw, fits)
    numbers = [slots[r] for r in rows]
    order = np.argsort(numbers, kind="stable")
    return ConvertedSequence(
        np.ascontiguousarray(kept[order]),
        np.ascontiguousarray(joints[order]),
        [numbers[k] for k in order],
        dropped,
        bad,
    )


@dataclass(frozen=True)
class _Task:
    key: tuple[str, str, str]
    sil_dir: Path
    pose_dir: Path
    out_dir: Path
    pose_offset: float
    overwrite: bool
    strict: bool = False


def _run_task(task: _Task) -> SequenceReport:
    if not task.overwrite and sequence_complete(task.out_dir):
        remove_stale_temporaries(task.out_dir)
        return SequenceReport(task.key, "skipped")
    sils = load_opengait_sils(task.sil_dir)
    seq = convert_sequence(sils, list_files(task.pose_dir, ".txt"), task.pose_offset, strict=task.strict)
    if len(seq.sils) == 0:
        remove_sequence(task.out_dir)  # an earlier run's pickles of it would be stale
        return SequenceReport(task.key, "empty", 0, seq.dropped, bad_files=seq.bad_files)
    write_sequence(task.out_dir, seq.sils, seq.joints)
    return SequenceReport(task.key, "written", len(seq.sils), seq.dropped, bad_files=seq.bad_files)


def convert_opengait_pickles(
    sil_pkl_root: str | os.PathLike,
    pose_root: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    workers: int = 1,
    pose_offset: float = 0.5,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = True,
) -> PretreatSummary:
    """Convert ``sil_pkl_root/<id>/<type>/<view>/<view>.pkl`` + ``pose_root`` into the two-pickle layout.

    Sequences that cannot be paired are reported (``frames_dropped[count_mismatch]`` counts their
    silhouette frames) and not written.
    """
    sil_pkl_root, pose_root, out_root = Path(sil_pkl_root), Path(pose_root), Path(out_root)
    for root, what in ((sil_pkl_root, "silhouette pickle"), (pose_root, "pose")):
        if not root.is_dir():
            raise DataFormatError(f"{root}: {what} root is not a folder")
    seq_dirs = sorted({p.parent for p in sil_pkl_root.glob("*/*/*/*.pkl")})
    if not seq_dirs:
        raise DataFormatError(f"{sil_pkl_root}: no OpenGait pickles at <id>/<type>/<view>/*.pkl")
    tasks = []
    for seq_dir in seq_dirs:
        key = (seq_dir.parent.parent.name, seq_dir.parent.name, seq_dir.name)
        tasks.append(
            _Task(key, seq_dir, pose_root.joinpath(*key), out_root.joinpath(*key), pose_offset, overwrite, strict)
        )
    settings = output_settings("opengait_pickles", SIL_SIZE, pose_offset)
    return run_into(out_root, tasks, _run_task, workers, "convert pickles", progress, settings, overwrite)


def joint_errors(estimated: np.ndarray, truth: np.ndarray, min_conf: float = 0.0) -> np.ndarray:
    """Euclidean pixel errors of the joints confident in both ``(T, 17, 3)`` arrays, flattened."""
    if estimated.shape != truth.shape or estimated.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"shapes differ or are not (T, 17, 3): {estimated.shape} vs {truth.shape}")
    good = (estimated[..., 2] > min_conf) & (truth[..., 2] > min_conf)
    return np.linalg.norm(estimated[..., :2] - truth[..., :2], axis=-1)[good]
