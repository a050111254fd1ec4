"""Gait3D raw frames + 2D poses -> OpenGait pickles with the joints in the silhouette frame.

For every sequence ``<id>/<cam_video>/<seq>`` of ``2D_Silhouettes`` and ``2D_Poses``:

* frames pair by the number in ``human_crop_f<number>``; only frames present in both are kept, in
  numeric order (``f9999`` before ``f10000``, which a string sort gets wrong);
* each silhouette goes through OpenGait's crop (:func:`kprpe_gait.data.crop.crop_silhouette`) and the
  recorded crop is replayed on that frame's joints, so joint ``(x, y)`` lands on the pixel of the 64x64
  silhouette it belongs to; frames the crop drops are dropped from both;
* the output folder gets ``00-sils.pkl`` ``(T, 64, 64)`` uint8 and ``01-joints.pkl`` ``(T, 17, 3)``
  float32 (:mod:`kprpe_gait.data.formats`); a sequence with no frame left is reported, not written.

Assumption (Gait3D does not document it): a pose file's ``x, y`` are pixels of the same person crop as
the silhouette PNG of that frame, in the pixel-index convention of HRNet (integer = pixel centre). The
pretreatment adds ``pose_offset = 0.5`` to reach the pixel-centre convention of ``formats``; pass
``pose_offset=0`` for poses already in that convention. The summary reports how many confident joints
fall off their raw silhouette's bounding box (:func:`count_joints_outside`), a cheap check of that
assumption on real data, and warns when it exceeds 10 %.

Runs are resumable: a sequence whose output folder already holds both pickles is skipped, each pickle
is written atomically and the joints pickle last (:func:`kprpe_gait.data.io.write_sequence`), staged
outside the sequence folders. The output root records the settings it was made with
(:data:`SETTINGS_NAME`: format version, input kind, size, pose offset); a rerun with other settings is
refused unless ``overwrite`` (:func:`claim_output`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .crop import crop_silhouette
from .formats import SIL_SIZE
from .io import (
    DataFormatError,
    atomic_write_bytes,
    clean_staging,
    frames_by_number,
    list_sequence_folders,
    read_pose_files,
    read_silhouette_png,
    remove_sequence,
    remove_stale_temporaries,
    sequence_complete,
    write_sequence,
)

SIL_DIR_NAME = "2D_Silhouettes"
POSE_DIR_NAME = "2D_Poses"

DROP_NO_POSE = "no_pose"  # a silhouette frame without a pose file
DROP_NO_SILHOUETTE = "no_silhouette"  # a pose file without a silhouette frame
DROP_UNREADABLE_SILHOUETTE = "unreadable_silhouette"  # a PNG that does not decode (corrupt, truncated)
DROP_MALFORMED_POSE = "malformed_pose"  # a pose file that is not 53 finite numbers with confidences >= 0

SeqKey = tuple[str, str, str]


@dataclass
class SequenceReport:
    """What happened to one sequence: ``status`` is ``written``, ``skipped`` (already complete) or ``empty``."""

    key: SeqKey
    status: str
    frames_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    joints_checked: int = 0  # confident joints compared with their raw silhouette's bounding box
    joints_outside: int = 0  # ... of which fell outside it
    bad_files: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, message) skipped


#: above this fraction of confident joints off their silhouette, the summary warns about the frames
OUTSIDE_WARNING = 0.1


@dataclass
class PretreatSummary:
    """Totals of a pretreatment run (frames of skipped sequences are not counted)."""

    sequences: int = 0
    written: int = 0
    skipped: int = 0
    empty: list[SeqKey] = field(default_factory=list)
    short: list[SeqKey] = field(default_factory=list)  # written with fewer than 5 frames
    frames_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    joints_checked: int = 0
    joints_outside: int = 0
    bad_files: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, message)

    @property
    def outside_fraction(self) -> float:
        """Fraction of confident joints outside their raw silhouette's (grown) bounding box."""
        return self.joints_outside / self.joints_checked if self.joints_checked else 0.0

    def add(self, report: SequenceReport) -> None:
        self.sequences += 1
        if report.status == "skipped":
            self.skipped += 1
            return
        self.dropped.update(report.dropped)
        self.bad_files += report.bad_files
        self.joints_checked += report.joints_checked
        self.joints_outside += report.joints_outside
        if report.status == "empty":
            self.empty.append(report.key)
            return
        self.written += 1
        self.frames_kept += report.frames_kept
        if report.frames_kept < 5:
            self.short.append(report.key)

    def to_dict(self) -> dict:
        return {
            "sequences": self.sequences,
            "written": self.written,
            "skipped_complete": self.skipped,
            "empty": ["/".join(k) for k in sorted(self.empty)],
            "short": ["/".join(k) for k in sorted(self.short)],
            "frames_kept": self.frames_kept,
            "frames_dropped": dict(sorted(self.dropped.items())),
            "joints_outside_silhouette": round(self.outside_fraction, 6),
            "bad_files": len(self.bad_files),
        }

    def bad_files_log(self) -> str:
        """One line per skipped file: ``reason<TAB>path<TAB>message``, sorted by path."""
        return "".join(f"{reason}\t{path}\t{message}\n" for path, reason, message in sorted(self.bad_files))

    def format(self, max_listed: int = 10) -> str:
        """A human-readable multi-line summary."""
        lines = [
            (
                f"sequences: {self.sequences} ({self.written} written, {self.skipped} already complete, "
                f"{len(self.empty)} empty and not written)"
            ),
            f"frames kept: {self.frames_kept}; dropped: {sum(self.dropped.values())}"
            + "".join(f"\n  {reason}: {n}" for reason, n in sorted(self.dropped.items())),
        ]
        if self.bad_files:
            lines.append(
                f"files skipped as unreadable or malformed: {len(self.bad_files)} (listed in the skipped-files log)"
            )
        for title, keys in (("empty sequences", self.empty), ("sequences with < 5 frames", self.short)):
            if keys:
                shown = ", ".join("/".join(k) for k in sorted(keys)[:max_listed])
                more = f" ... (+{len(keys) - max_listed})" if len(keys) > max_listed else ""
                lines.append(f"{title}: {shown}{more}")
        if self.joints_checked:
            lines.append(f"confident joints outside their silhouette's box: {100 * self.outside_fraction:.2f} %")
            if self.outside_fraction > OUTSIDE_WARNING:
                lines.append(
                    "WARNING: many joints fall off their silhouettes; are the poses in the silhouette crops' "
                    "pixel frame (see kprpe_gait.data.pretreat)?"
                )
        return "\n".join(lines)


def pair_frames(sil_files: Iterable[Path], pose_files: Iterable[Path]) -> tuple[list[tuple[int, Path, Path]], Counter]:
    """Pair silhouette and pose files by frame number.

    Returns:
        ``[(frame, sil_path, pose_path), ...]`` in numeric frame order, and the counts of unpaired
        frames by reason (:data:`DROP_NO_POSE`, :data:`DROP_NO_SILHOUETTE`).
    """
    sils, poses = frames_by_number(list(sil_files)), frames_by_number(list(pose_files))
    dropped = Counter()
    if len(sils.keys() - poses.keys()):
        dropped[DROP_NO_POSE] = len(sils.keys() - poses.keys())
    if len(poses.keys() - sils.keys()):
        dropped[DROP_NO_SILHOUETTE] = len(poses.keys() - sils.keys())
    pairs = [(n, sils[n], poses[n]) for n in sorted(sils.keys() & poses.keys())]
    return pairs, dropped


def replay_on_joints(joints: np.ndarray, geometry, pose_offset: float = 0.5) -> np.ndarray:
    """Replay a frame's crop on its joints.

    Args:
        joints: ``(17, 3)`` raw pose (crop pixels, pixel-index convention, confidence).
        geometry: the frame's :class:`~kprpe_gait.data.crop.CropGeometry`.
        pose_offset: added to ``x, y`` before the crop (0.5: pixel-index -> pixel-centre convention).

    Returns:
        ``(17, 3)`` float32 in the 64x64 frame; joints with confidence 0 get ``x = y = 0``.
    """
    return replay_on_sequence(joints[None], [geometry], pose_offset)[0]


def replay_on_sequence(joints: np.ndarray, geometries: list, pose_offset: float = 0.5) -> np.ndarray:
    """:func:`replay_on_joints` for a whole sequence at once: ``joints`` ``(T, 17, 3)``, one
    :class:`~kprpe_gait.data.crop.CropGeometry` per frame; returns ``(T, 17, 3)`` float32."""
    geo = np.array([(g.scale_x, g.left, g.y_top, g.scale_y) for g in geometries], dtype=np.float64).reshape(-1, 4)
    scale_x, left, y_top, scale_y = (geo[:, k, None] for k in range(4))
    xy = joints[..., :2].astype(np.float64) + pose_offset
    out = np.zeros(joints.shape, dtype=np.float32)
    out[..., 0] = xy[..., 0] * scale_x - left  # CropGeometry.map_points, frame by frame
    out[..., 1] = (xy[..., 1] - y_top) * scale_y
    out[..., 2] = joints[..., 2]
    out[joints[..., 2] <= 0, :2] = 0.0
    return out


@dataclass
class PretreatedSequence:
    """One sequence after pairing and cropping: ``sils`` ``(T, size, size)`` uint8, ``joints``
    ``(T, 17, 3)`` float32, the raw ``frames`` numbers they came from (``T`` may be 0) and the dropped
    frames by reason."""

    sils: np.ndarray
    joints: np.ndarray
    frames: list[int]
    dropped: Counter
    joints_checked: int = 0
    joints_outside: int = 0
    bad_files: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, message)


def pretreat_frames(
    sil_files: Iterable[Path],
    pose_files: Iterable[Path],
    size: int = SIL_SIZE,
    pose_offset: float = 0.5,
    strict: bool = False,
) -> PretreatedSequence:
    """Pair, crop and replay one sequence's frames (pose files are read only for the silhouettes kept).

    A frame whose PNG does not decode or whose pose file is malformed is dropped and listed in
    ``bad_files`` (reasons :data:`DROP_UNREADABLE_SILHOUETTE`, :data:`DROP_MALFORMED_POSE`); with
    ``strict`` it raises :class:`~kprpe_gait.data.io.DataFormatError` instead.
    """
    pairs, dropped = pair_frames(sil_files, pose_files)
    sils, pose_paths, geometries, boxes, frames, bad = [], [], [], [], [], []
    for number, sil_path, pose_path in pairs:
        try:
            raw = read_silhouette_png(sil_path)
        except DataFormatError as err:
            if strict:
                raise
            dropped[DROP_UNREADABLE_SILHOUETTE] += 1
            bad.append((str(sil_path), DROP_UNREADABLE_SILHOUETTE, str(err)))
            continue
        result = crop_silhouette(raw, size=size)
        if result.dropped is not None:
            dropped[result.dropped] += 1
            continue
        sils.append(result.image)
        pose_paths.append(pose_path)
        geometries.append(result.geometry)
        boxes.append(result.box)
        frames.append(number)
    poses, errors = read_pose_files(pose_paths)
    if errors:
        if strict:
            raise DataFormatError(next(iter(errors.values())))
        dropped[DROP_MALFORMED_POSE] += len(errors)
        bad += [(str(pose_paths[i]), DROP_MALFORMED_POSE, message) for i, message in sorted(errors.items())]
        keep = [i for i in range(len(sils)) if i not in errors]
        sils, poses, frames = [sils[i] for i in keep], poses[keep], [frames[i] for i in keep]
        geometries, boxes = [geometries[i] for i in keep], [boxes[i] for i in keep]
    if not sils:
        empty = (np.zeros((0, size, size), np.uint8), np.zeros((0, 17, 3), np.float32))
        return PretreatedSequence(*empty, [], dropped, bad_files=bad)
    outside, checked = count_joints_outside(np.array(boxes), poses, pose_offset)
    joints = replay_on_sequence(poses, geometries, pose_offset)
    return PretreatedSequence(np.stack(sils), joints, frames, dropped, checked, outside, bad)


def silhouette_box(raw_sil: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)``: the raw silhouette's foreground bounding box in pixel edges (``x1``, ``y1``
    exclusive); ``None`` when empty (:func:`crop_silhouette` returns it too, as ``box``)."""
    x0, y0, w, h = cv2.boundingRect(raw_sil)
    return (x0, y0, x0 + w, y0 + h) if h else None


def count_joints_outside(
    box: tuple[int, int, int, int] | np.ndarray | None,
    pose: np.ndarray,
    pose_offset: float = 0.5,
    margin: float = 0.05,
    min_conf: float = 0.3,
) -> tuple[int, int]:
    """``(outside, checked)``: confident joints outside their silhouette's bounding box grown by ``margin``
    of its height. Near zero when poses and silhouettes share the crop's pixel frame, large when not.

    Args:
        box: ``(x0, y0, x1, y1)`` of :func:`silhouette_box` with ``pose`` ``(17, 3)``, or ``(T, 4)``
            boxes with ``pose`` ``(T, 17, 3)`` (one per frame); ``None``: nothing to check.
    """
    if box is None:
        return 0, 0
    boxes = np.asarray(box, dtype=np.float64).reshape(-1, 4)[:, None, :]  # (T, 1, 4)
    pose = np.asarray(pose).reshape(-1, pose.shape[-2], 3)
    good = pose[..., 2] > min_conf
    pad = margin * (boxes[..., 3] - boxes[..., 1])
    x, y = pose[..., 0] + pose_offset, pose[..., 1] + pose_offset
    inside = (x >= boxes[..., 0] - pad) & (x <= boxes[..., 2] + pad)
    inside &= (y >= boxes[..., 1] - pad) & (y <= boxes[..., 3] + pad)
    return int((good & ~inside).sum()), int(good.sum())


@dataclass(frozen=True)
class _Task:
    key: SeqKey
    sil_dir: Path
    pose_dir: Path
    out_dir: Path
    size: int
    pose_offset: float
    overwrite: bool
    strict: bool = False


def _run_task(task: _Task) -> SequenceReport:
    if not task.overwrite and sequence_complete(task.out_dir):
        remove_stale_temporaries(task.out_dir)
        return SequenceReport(task.key, "skipped")
    seq = pretreat_frames(
        list_files(task.sil_dir, ".png"), list_files(task.pose_dir, ".txt"), task.size, task.pose_offset, task.strict
    )
    if len(seq.sils) == 0:
        remove_sequence(task.out_dir)  # an earlier run's pickles of it would be stale
        return SequenceReport(task.key, "empty", 0, seq.dropped, bad_files=seq.bad_files)
    write_sequence(task.out_dir, seq.sils, seq.joints)
    return SequenceReport(
        task.key, "written", len(seq.sils), seq.dropped, seq.joints_checked, seq.joints_outside, seq.bad_files
    )


def list_files(folder: Path, suffix: str) -> list[str]:
    """Paths (strings, sorted) of the files of ``folder`` ending in ``suffix``; ``[]`` if it is absent."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.path for e in entries if e.name.endswith(suffix) and e.is_file())
    except FileNotFoundError:
        return []


def _subdirs(folder: str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return [e for e in entries if e.is_dir()]


def _sequence_dirs(root: Path) -> dict[SeqKey, Path]:
    """Every ``root/<id>/<type>/<view>/`` folder (folders only are listed: the files are listed once,
    by the task that reads them)."""
    found = {}
    for id_dir in _subdirs(root):
        for type_dir in _subdirs(id_dir.path):
            for view_dir in _subdirs(type_dir.path):
                found[(id_dir.name, type_dir.name, view_dir.name)] = Path(view_dir.path)
    return found


def find_raw_sequences(sil_root: Path, pose_root: Path) -> dict[SeqKey, tuple[Path, Path]]:
    """Every sequence of either root, as ``key -> (silhouette folder, pose folder)`` (either may be absent).

    Raises:
        DataFormatError: a root is missing or holds no ``<id>/<cam_video>/<seq>/`` files.
    """
    for root, what, pattern in ((sil_root, "silhouette", "*.png"), (pose_root, "pose", "*.txt")):
        if not root.is_dir():
            raise DataFormatError(f"{root}: {what} root is not a folder")
        if next(root.glob(f"*/*/*/{pattern}"), None) is None:
            raise DataFormatError(
                f"{root}: no {what} files found at <id>/<cam_video>/<seq>/{pattern} "
                f"(expected Gait3D's {SIL_DIR_NAME if what == 'silhouette' else POSE_DIR_NAME} folder)"
            )
    sils, poses = _sequence_dirs(sil_root), _sequence_dirs(pose_root)
    return {
        key: (sils.get(key, sil_root.joinpath(*key)), poses.get(key, pose_root.joinpath(*key)))
        for key in sorted(sils.keys() | poses.keys())
    }


def resolve_gait3d_root(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(root/2D_Silhouettes, root/2D_Poses)`` of a Gait3D root, with a clear error when absent."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: Gait3D root is not a folder")
    sil_root, pose_root = root / SIL_DIR_NAME, root / POSE_DIR_NAME
    missing = [p.name for p in (sil_root, pose_root) if not p.is_dir()]
    if missing:
        raise DataFormatError(
            f"{root}: not a Gait3D root, missing {', '.join(missing)} "
            f"(expected {SIL_DIR_NAME}/ and {POSE_DIR_NAME}/ side by side)"
        )
    return sil_root, pose_root


def run_tasks(tasks: list, fn, workers: int, desc: str, progress: bool = True) -> Iterable:
    """Map ``fn`` over ``tasks`` in ``workers`` processes (in-process for ``workers <= 1``) with a tqdm bar.

    Yields results as they finish (unordered when parallel).
    """
    bar = tqdm(total=len(tasks), desc=desc, unit="seq", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                yield fn(task)
                bar.update(1)
            return
        chunk = max(1, min(16, len(tasks) // (workers * 8)))
        with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(workers) as pool:
            for result in pool.imap_unordered(fn, tasks, chunksize=chunk):
                yield result
                bar.update(1)
    finally:
        bar.close()


#: the settings record at the output root (OpenGait reads only the identity folders its partition names)
SETTINGS_NAME = "pretreat-gait3d.json"
#: what the pickles are: 2 = OpenCV decoder and resize, byte-identical to OpenGait's (1 was Pillow's resize)
FORMAT_VERSION = 2


class OutputSettingsError(DataFormatError):
    """The output root was made with other settings (or by a version that did not record them)."""


def output_settings(mode: str, size: int, pose_offset: float) -> dict:
    """The settings a run records and a rerun must match: input kind, frame size, pose offset, format."""
    return {"format_version": FORMAT_VERSION, "mode": mode, "size": size, "pose_offset": pose_offset}


def claim_output(out_root: Path, settings: dict, overwrite: bool) -> None:
    """Record ``settings`` at ``out_root`` before writing into it, or refuse a root made otherwise.

    A root whose record holds the same settings is resumed. A root with other settings, or with sequence
    folders but no record (an older version, or another tool), is refused unless ``overwrite`` (which
    redoes every sequence).

    Raises:
        OutputSettingsError: naming the settings that differ and how to proceed.
    """
    path = out_root / SETTINGS_NAME
    if path.is_file():
        try:
            stored = json.loads(path.read_text()).get("settings")
        except (OSError, ValueError, AttributeError):
            stored = None
        if stored == settings:
            return
        if isinstance(stored, dict):
            diff = ", ".join(
                f"{k} {stored.get(k)!r} -> {settings.get(k)!r}"
                for k in sorted(settings.keys() | stored.keys())
                if stored.get(k) != settings.get(k)
            )
            problem = f"was made with other settings ({diff})"
        else:
            problem = f"has an unreadable {SETTINGS_NAME}"
    elif out_root.is_dir() and list_sequence_folders(out_root):
        problem = f"holds sequences but no {SETTINGS_NAME} (made by an older version or another tool?)"
    else:
        problem = None
    if problem is not None and not overwrite:
        raise OutputSettingsError(
            f"{out_root}: {problem}; rerun with --overwrite to redo every sequence with these settings, "
            "or choose another --out"
        )
    out_root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps({"settings": settings}, indent=2) + "\n").encode())


def run_into(
    out_root: Path, tasks: list, fn, workers: int, desc: str, progress: bool, settings: dict, overwrite: bool
) -> PretreatSummary:
    """Run sequence tasks that write into ``out_root`` and total their reports.

    The root is claimed first (:func:`claim_output`: its settings are recorded, or it is refused).
    Temporary files an interrupted earlier run left in ``out_root``'s staging folder are deleted, and the
    (then empty) staging folder is removed at the end, so a finished run leaves only sequence folders and
    the settings record behind.
    """
    claim_output(out_root, settings, overwrite)
    clean_staging(out_root)
    summary = PretreatSummary()
    try:
        for report in run_tasks(tasks, fn, workers, desc, progress):
            summary.add(report)
    finally:
        clean_staging(out_root, remove=True)
    return summary


def pretreat_gait3d(
    sil_root: str | os.PathLike,
    pose_root: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    workers: int = 1,
    size: int = SIL_SIZE,
    pose_offset: float = 0.5,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = True,
) -> PretreatSummary:
    """Pretreat a whole Gait3D raw layout into ``out_root/<id>/<cam_video>/<seq>/{00-sils,01-joints}.pkl``.

    Args:
        sil_root: Gait3D's ``2D_Silhouettes`` folder.
        pose_root: Gait3D's ``2D_Poses`` folder.
        out_root: output root (only sequence folders are written into it, so it is a valid
            OpenGait ``dataset_root``).
        workers: processes (results do not depend on it).
        size: output frame size (64).
        pose_offset: see the module docstring.
        overwrite: redo sequences that are already complete.
        strict: abort on the first unreadable PNG or malformed pose file; by default such frames are
            dropped, counted by reason and listed in ``summary.bad_files``.
        progress: show a tqdm bar.

    Raises:
        DataFormatError: wrong roots; with ``strict``, a malformed pose file or an unreadable image
            (naming the file).
    """
    sil_root, pose_root, out_root = Path(sil_root), Path(pose_root), Path(out_root)
    sequences = find_raw_sequences(sil_root, pose_root)
    tasks = [
        _Task(key, sil_dir, pose_dir, out_root.joinpath(*key), size, pose_offset, overwrite, strict)
        for key, (sil_dir, pose_dir) in sequences.items()
    ]
    settings = output_settings("raw", size, pose_offset)
    return run_into(out_root, tasks, _run_task, workers, "pretreat-gait3d", progress, settings, overwrite)
