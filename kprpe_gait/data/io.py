"""Reading and writing the files of Gait3D's raw layout and of OpenGait's pickle layout.

Raw layout (per sequence ``<id>/<cam_video>/<seq>/``)::

    2D_Silhouettes/.../human_crop_f<frame>.png   grayscale person-crop silhouette, any size
    2D_Poses/.../human_crop_f<frame>.txt         "a,b,x0,y0,c0,...,x16,y16,c16" (53 numbers)

The two leading numbers of a pose file are not documented by Gait3D; nothing here uses them (SynthGait
writes the crop's top-left corner in its virtual video frame there). Pose ``x, y`` are pixels of the
same person crop as the silhouette, in the pixel-*index* convention of top-down estimators such as
HRNet (``(0, 0)`` is the centre of the top-left pixel); :func:`read_pose_file` returns them unchanged
and the pretreatment adds the ``0.5`` that moves them into the pixel-centre convention of
:mod:`kprpe_gait.data.formats`.

Every write is atomic: the bytes go to a temporary file, then :func:`os.replace` moves it in place.
Sequence pickles are staged outside the sequence folders (:func:`write_sequence`): OpenGait's loader
lists every file of a sequence folder, hidden ones included.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kprpe.io import atomic_write_bytes as _atomic_write_bytes
from kprpe.io import safe_pickle_load

from .formats import JOINT_PKL_NAME, NUM_JOINTS, SIL_PKL_NAME, SIL_SIZE

#: frame number of a Gait3D file name: ``human_crop_f17279.png`` -> 17279
FRAME_RE = re.compile(r"f(\d+)\.(png|txt)$")
#: numbers per pose line: two leading values, then (x, y, confidence) per joint
POSE_VALUES = 2 + 3 * NUM_JOINTS
TMP_SUFFIX = ".tmp"
#: where a data set root stages the temporary files of its sequence pickles (see :func:`write_sequence`)
STAGING_DIR_NAME = ".kprpe-staging"
_STAGED = itertools.count()


class DataFormatError(ValueError):
    """A file or folder does not have the layout or content the Gait3D tools expect."""


def frame_number(path: str | os.PathLike) -> int:
    """The frame number of a Gait3D file name (``.../human_crop_f09999.png`` -> ``9999``).

    Raises:
        DataFormatError: the name does not end in ``f<digits>.png`` / ``f<digits>.txt``.
    """
    match = FRAME_RE.search(os.path.basename(path))
    if match is None:
        raise DataFormatError(f"{path}: file name does not end in 'f<frame number>.png' or '.txt'")
    return int(match.group(1))


def frames_by_number(paths: list[Path]) -> dict[int, Path]:
    """Map frame number -> file; raises on two files with the same number (``f0100`` and ``f100``)."""
    out: dict[int, Path] = {}
    for path in paths:
        number = frame_number(path)
        if number in out:
            raise DataFormatError(f"{path} and {out[number]} both hold frame {number}")
        out[number] = path
    return out


def _read_pose_fields(path: str | os.PathLike) -> list[str]:
    """The numbers of one pose file as strings, checked for their count."""
    try:
        fd = os.open(path, os.O_RDONLY)  # os-level I/O: Python's buffered file objects cost more than the parse
        try:
            data = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        text = data.decode()
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: cannot read pose file ({err})") from err
    fields = text.replace(",", " ").split()
    if len(fields) != POSE_VALUES:
        raise DataFormatError(
            f"{path}: malformed pose file, expected {POSE_VALUES} numbers "
            f"(2 leading values + {NUM_JOINTS} x (x, y, conf)), found {len(fields)}"
        )
    return fields


def _pose_value_errors(path: str | os.PathLike, values: np.ndarray) -> str | None:
    """Why the ``(POSE_VALUES,)`` numbers of a pose file are not a pose, or ``None``."""
    if not np.isfinite(values).all():
        return f"{path}: malformed pose file, NaN or infinite value"
    if (values[4::3] < 0).any():
        return f"{path}: malformed pose file, negative confidence"
    return None


def read_pose_file(path: str | os.PathLike) -> np.ndarray:
    """Read one Gait3D pose file.

    Returns:
        ``(17, 3)`` float32: ``x, y`` in the crop's pixel-index convention, confidence ``>= 0``.

    Raises:
        DataFormatError: unreadable file, wrong number of values, non-numeric, NaN/inf or negative
            confidence; the message names the file.
    """
    fields = _read_pose_fields(path)
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError as err:
        raise DataFormatError(f"{path}: malformed pose file, non-numeric value ({err})") from err
    error = _pose_value_errors(path, values)
    if error is not None:
        raise DataFormatError(error)
    return values[2:].reshape(NUM_JOINTS, 3).astype(np.float32)


def read_pose_files(paths: list) -> tuple[np.ndarray, dict[int, str]]:
    """Read many pose files at once (one numeric parse for all: per-file overhead dominates otherwise).

    Returns:
        ``(poses, errors)``: ``poses`` ``(len(paths), 17, 3)`` float32 as :func:`read_pose_file` gives
        them, and ``{index: message}`` for the files that are not valid pose files (their rows are
        zero); the messages are :func:`read_pose_file`'s.
    """
    errors: dict[int, str] = {}
    fields: list[str] = []
    rows: list[int] = []
    for i, path in enumerate(paths):
        try:
            fields += _read_pose_fields(path)
            rows.append(i)
        except DataFormatError as err:
            errors[i] = str(err)
    poses = np.zeros((len(paths), NUM_JOINTS, 3), np.float32)
    try:
        values = np.array(fields, dtype=np.float64).reshape(len(rows), POSE_VALUES)
    except ValueError:  # a non-numeric value somewhere: find it file by file
        for i in rows:
            try:
                poses[i] = read_pose_file(paths[i])
            except DataFormatError as err:
                errors[i] = str(err)
        return poses, errors
    bad = ~np.isfinite(values).all(axis=1) | (values[:, 4::3] < 0).any(axis=1)
    for r in np.flatnonzero(bad):
        errors[rows[r]] = _pose_value_errors(paths[rows[r]], values[r])
    good = np.flatnonzero(~bad)
    poses[np.asarray(rows, dtype=np.int64)[good]] = values[good, 2:].reshape(-1, NUM_JOINTS, 3)
    return poses, errors


def format_pose_line(joints: np.ndarray, lead: tuple[float, float] = (0, 0)) -> str:
    """One pose-file line for ``joints`` ``(17, 3)`` (pixel-index convention) and two leading values."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be ({NUM_JOINTS}, 3), got {joints.shape}")
    parts = [f"{round(lead[0])}", f"{round(lead[1])}"]
    parts += [f"{v:.4f}" for v in joints.reshape(-1)]
    return ",".join(parts) + "\n"


def read_silhouette_png(path: str | os.PathLike) -> np.ndarray:
    """Read a silhouette image as ``(H, W)`` uint8 grayscale with OpenCV's ``IMREAD_GRAYSCALE``, the
    decoder OpenGait's pretreatment uses (so colour or 16-bit PNGs convert exactly as there).

    Raises:
        DataFormatError: missing, truncated or non-image file; the message names the file.
    """
    img = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        reason = "no such file" if not os.path.isfile(path) else "not a decodable image (corrupt or truncated?)"
        raise DataFormatError(f"{path}: unreadable image ({reason})")
    return img


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
    _atomic_write_bytes(path, data, suffix=TMP_SUFFIX)


def atomic_pickle(path: str | os.PathLike, obj: object) -> None:
    """Pickle ``obj`` to ``path`` atomically."""
    atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def atomic_save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save a ``(H, W)`` grayscale or ``(H, W, 3)`` RGB uint8 array as a PNG atomically."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"PNG images must be (H, W) or (H, W, 3) uint8, got {image.shape} {image.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def check_sequence_arrays(sils: np.ndarray, joints: np.ndarray, where: str = "sequence") -> None:
    """Validate a sequence against the pickle contract of :mod:`kprpe_gait.data.formats`.

    Raises:
        ValueError: wrong dtype/shape, different frame counts or NaN joints; the message names ``where``.
    """
    if sils.dtype != np.uint8 or sils.ndim != 3 or sils.shape[1:] != (SIL_SIZE, SIL_SIZE):
        raise ValueError(
            f"{where}: silhouettes must be (T, {SIL_SIZE}, {SIL_SIZE}) uint8, got {sils.shape} {sils.dtype}"
        )
    if joints.dtype != np.float32 or joints.shape[1:] != (NUM_JOINTS, 3) or joints.ndim != 3:
        raise ValueError(f"{where}: joints must be (T, {NUM_JOINTS}, 3) float32, got {joints.shape} {joints.dtype}")
    if len(sils) != len(joints):
        raise ValueError(f"{where}: {len(sils)} silhouette frames but {len(joints)} joint frames")
    if len(sils) == 0:
        raise ValueError(f"{where}: empty sequence")
    if not np.isfinite(joints).all():
        raise ValueError(f"{where}: joints contain NaN or infinite values")


def write_sequence(
    folder: str | os.PathLike, sils: np.ndarray, joints: np.ndarray, staging: str | os.PathLike | None = None
) -> None:
    """Write one OpenGait sequence folder: ``00-sils.pkl`` then ``01-joints.pkl``, each atomically.

    Each pickle is written under a unique name in ``staging`` and renamed into ``folder`` when complete,
    so no temporary file ever sits in a sequence folder (OpenGait's loader lists every file there,
    hidden ones included, and fails on anything that is not a ``.pkl``). ``staging`` defaults to
    :func:`staging_dir` of the data set root (``folder``'s third parent: ``root/<id>/<type>/<view>``),
    on the same file system, where OpenGait sees it only as an unknown identity and ignores it. The
    joints pickle is written last, so a folder holding both pickles is complete (:func:`sequence_complete`).
    """
    folder = Path(folder)
    check_sequence_arrays(sils, joints, str(folder))
    staging = Path(staging) if staging is not None else staging_dir(folder.parents[2])
    if folder.is_dir():
        remove_stale_temporaries(folder)
    else:
        os.makedirs(folder, exist_ok=True)
    for name, array in ((SIL_PKL_NAME, sils), (JOINT_PKL_NAME, joints)):
        tmp = staging / f"{os.getpid()}-{next(_STAGED)}-{folder.name}-{name}{TMP_SUFFIX}"
        if not staging.is_dir():  # first write into this root
            os.makedirs(staging, exist_ok=True)
        try:
            with open(tmp, "wb") as handle:
                pickle.dump(np.ascontiguousarray(array), handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / name)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)


def staging_dir(root: str | os.PathLike) -> Path:
    """The folder of a data set root where :func:`write_sequence` stages its temporary files."""
    return Path(root) / STAGING_DIR_NAME


def clean_staging(root: str | os.PathLike, remove: bool = False) -> int:
    """Delete the staged temporary files an interrupted run left under ``root`` (and the staging folder
    itself with ``remove``); returns how many files were deleted. Only while no run writes into ``root``."""
    staging = staging_dir(root)
    if not staging.is_dir():
        return 0
    stale = [entry.path for entry in os.scandir(staging) if entry.is_file()]
    for path in stale:
        os.unlink(path)
    if remove:
        try:
            staging.rmdir()
        except OSError:
            pass  # something else lives there: leave it
    return len(stale)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete hidden ``.*.tmp`` files from a sequence folder (left there by versions that wrote their
    temporary files beside the pickles); returns how many."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    stale = [e.path for e in entries if e.name.startswith(".") and e.name.endswith(TMP_SUFFIX) and e.is_file()]
    for path in stale:
        os.unlink(path)
    return len(stale)


def remove_sequence(folder: str | os.PathLike) -> None:
    """Delete a sequence folder's pickles (and the folder when nothing else is in it): a rerun that finds no
    frame left for a sequence must not leave an earlier run's pickles behind."""
    folder = Path(folder)
    for name in (JOINT_PKL_NAME, SIL_PKL_NAME):
        (folder / name).unlink(missing_ok=True)
    remove_stale_temporaries(folder)
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or holds something else


def sequence_complete(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds both pickles of a sequence (written by :func:`write_sequence`)."""
    folder = Path(folder)
    return (folder / SIL_PKL_NAME).is_file() and (folder / JOINT_PKL_NAME).is_file()


def load_sequence(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(sils (T, 64, 64) uint8, joints (T, 17, 3) float32)`` of one sequence folder, validated."""
    folder = Path(folder)
    arrays = []
    for name in (SIL_PKL_NAME, JOINT_PKL_NAME):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (a sequence folder holds {SIL_PKL_NAME} and {JOINT_PKL_NAME})")
        arrays.append(load_array_pickle(path))
    sils, joints = arrays
    check_sequence_arrays(sils, joints, str(folder))
    return sils, joints


def load_array_pickle(path: str | os.PathLike) -> np.ndarray:
    """One numeric array pickled by OpenGait or :func:`write_sequence`, read with :func:`safe_pickle_load`.

    Raises:
        DataFormatError: naming the file when it is not a pickled numeric array (a pickle that names
            anything but containers, numbers and numpy arrays is refused before anything of it runs).
    """
    try:
        content = safe_pickle_load(path)
    except ValueError as err:  # already names the file
        raise DataFormatError(str(err)) from None
    try:
        array = np.asarray(content)
    except ValueError as err:  # ragged nested lists
        raise DataFormatError(f"{path}: not an array ({err})") from None
    if array.dtype.kind not in "biuf":
        raise DataFormatError(f"{path}: expected a numeric array, got dtype {array.dtype}")
    return array


def list_sequence_folders(root: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Sorted ``(id, type, view)`` of every ``root/<id>/<type>/<view>/`` folder (three levels deep; hidden
    top-level folders such as the staging folder of :func:`write_sequence` are not identities)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    keys = []
    for id_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for type_dir in sorted(p for p in id_dir.iterdir() if p.is_dir()):
            for view_dir in sorted(p for p in type_dir.iterdir() if p.is_dir()):
                keys.append((id_dir.name, type_dir.name, view_dir.name))
    return keys
