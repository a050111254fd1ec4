"""Submission files of gait benchmarks, written atomically, and their readers.

* GREW (:func:`write_grew_csv`): ``videoId,rank1,...,rank20``, one row per probe video with the
  labels of its 20 nearest gallery *sequences* (an identity may repeat), as OpenGait's
  ``GREW_submission`` writes it: labels as integers (``"00012"`` -> ``12``), ``\n`` line ends
  (``form="opengait"``). ``form="template"`` writes the shape of GREW-Benchmark's own
  ``submission.zip`` template instead: a 22nd column ``rank1_distractor`` (here the rank-1 label
  again; GREW-Benchmark's ``build_submission.py`` never fills it) and ``\r\n`` line ends. A ``.zip``
  path writes a zip archive holding ``submission.csv``, the form GREW's CodaLab server takes.
* HID / MGR'24 challenge (:func:`write_challenge_csv`): ``videoID,label``, one row per probe with the
  predicted identity (the nearest gallery sequence's label, :func:`nearest_labels`), as OpenGait's
  ``HID_submission`` writes it; a ``.zip`` path writes a zip archive holding ``submission.csv``, the
  form the challenge servers take.
* the full distance matrix (:func:`write_distance_npz`): a compressed ``.npz`` with the keys and labels
  of both sides and the metric, readable without pickle (:func:`read_distance_npz`).

Ranking ties keep gallery order (stable sort; OpenGait's ``topk`` leaves their order unspecified).
Fields are written unquoted, so ids and labels may not contain commas, quotes or line breaks.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from kprpe.io import atomic_path

__all__ = [
    "CHALLENGE_HEADER",
    "CHALLENGE_MEMBER",
    "GREW_DISTRACTOR_COLUMN",
    "GREW_FORMS",
    "GREW_TOP_K",
    "atomic_target",
    "grew_header",
    "nearest_labels",
    "read_challenge_csv",
    "read_distance_npz",
    "read_grew_csv",
    "top_k_labels",
    "write_challenge_csv",
    "write_distance_npz",
    "write_grew_csv",
]

GREW_TOP_K = 20
#: ``opengait``: OpenGait's ``GREW_submission`` file; ``template``: GREW-Benchmark's template shape
GREW_FORMS = ("opengait", "template")
#: the 22nd column of GREW-Benchmark's template
GREW_DISTRACTOR_COLUMN = "rank1_distractor"
CHALLENGE_HEADER = ("videoID", "label")
#: the file name a challenge zip archive must hold
CHALLENGE_MEMBER = "submission.csv"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member time: the same predictions give the same bytes
_FORBIDDEN = (",", '"', "\n", "\r")


#: yield a temporary path beside ``path`` that replaces it on success (:func:`kprpe.io.atomic_path`)
atomic_target = atomic_path


def _as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)


def _flat(values: Any) -> list[Any]:
    """A flat Python list of the items of a list, array or tensor."""
    return _as_numpy(values).reshape(-1).tolist()


def _check_dist(dist: Any, num_probes: int | None = None, num_gallery: int | None = None) -> np.ndarray:
    """``dist`` as a finite numeric ``(P, G)`` numpy array, ``P`` / ``G`` checked when given."""
    d = _as_numpy(dist)
    if d.ndim != 2 or not np.issubdtype(d.dtype, np.number):
        raise ValueError(f"dist must be a numeric (probes, gallery) matrix, got shape {d.shape}, dtype {d.dtype}")
    if (num_probes is not None and d.shape[0] != num_probes) or (num_gallery is not None and d.shape[1] != num_gallery):
        want = tuple(side if n is None else n for n, side in zip((num_probes, num_gallery), "PG"))
        raise ValueError(f"dist has shape {d.shape}, expected {want} from the probe / gallery lists")
    if not np.isfinite(d).all():
        raise ValueError("dist holds NaN or inf values")
    return d


def _field(value: Any, what: str) -> str:
    text = str(value)
    if not text or any(c in text for c in _FORBIDDEN):
        raise ValueError(f'{what} {text!r} cannot be written to a CSV submission (empty, or holds , " or a line break)')
    return text


def top_k_labels(dist: Any, gallery_labels: Sequence[Any], k: int) -> np.ndarray:
    """``(P, k)`` labels of the ``k`` nearest gallery sequences of every probe, nearest first.

    Args:
        dist: ``(P, G)`` distances, smaller = more similar.
        gallery_labels: ``G`` labels.
        k: ``1 <= k <= G``.
    """
    labels = np.asarray(gallery_labels)
    d = _check_dist(dist, num_gallery=len(labels))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d.shape[1]:
        raise ValueError(f"k must be an integer in [1, {d.shape[1]}] (the gallery size), got {k!r}")
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return labels[order]


def nearest_labels(dist: Any, gallery_labels: Sequence[Any]) -> np.ndarray:
    """``(P,)`` label of every probe's nearest gallery sequence (the challenge prediction)."""
    return top_k_labels(dist, gallery_labels, 1)[:, 0]


def grew_header(top_k: int = GREW_TOP_K, form: str = "opengait") -> list[str]:
    """``["videoId", "rank1", ..., "rank<top_k>"]`` (``form="template"``: then ``"rank1_distractor"``)."""
    _check_grew_form(form)
    extra = [GREW_DISTRACTOR_COLUMN] if form == "template" else []
    return ["videoId", *(f"rank{i}" for i in range(1, top_k + 1)), *extra]


def _check_grew_form(form: str) -> None:
    if form not in GREW_FORMS:
        raise ValueError(f"GREW form must be one of {GREW_FORMS}, got {form!r}")


def _grew_label(label: Any, label_format: str) -> str:
    if label_format == "raw":
        return _field(label, "gallery label")
    try:
        return str(int(str(label)))
    except ValueError:
        raise ValueError(f"gallery label {label!r} is not an integer; GREW submissions hold integer "
                         "identities (pass label_format='raw' to write labels unchanged)") from None  # fmt: skip


def write_grew_csv(
    path: str | os.PathLike[str],
    probe_video_ids: Sequence[Any],
    gallery_labels: Sequence[Any],
    dist: Any,
    top_k: int = GREW_TOP_K,
    label_format: Literal["int", "raw"] = "int",
    form: Literal["opengait", "template"] = "opengait",
) -> Path:
    """Write a GREW submission: ``videoId,rank1,...,rank<top_k>`` and one row per probe.

    Args:
        path: ``*.csv``: the CSV itself; ``*.zip``: a zip archive holding it as ``submission.csv``
            (what GREW's server takes). Replaced atomically.
        probe_video_ids: ``P`` probe video ids (GREW: the probe's video name).
        gallery_labels: ``G`` gallery identities.
        dist: ``(P, G)`` distances.
        top_k: ranked labels per probe (GREW: 20); at most ``G``.
        label_format: ``"int"`` (OpenGait's GREW writer: ``int(label)``) or ``"raw"``.
        form: ``"opengait"`` (OpenGait's ``GREW_submission``) or ``"template"`` (GREW-Benchmark's
            template: ``rank1_distractor`` = the rank-1 label, ``\r\n`` line ends); module docstring.

    Returns:
        ``path``.
    """
    if label_format not in ("int", "raw"):
        raise ValueError(f"label_format must be 'int' or 'raw', got {label_format!r}")
    _check_grew_form(form)
    ids = [_field(v, "probe video id") for v in _flat(probe_video_ids)]
    _check_dist(dist, len(ids), len(gallery_labels))
    ranked = top_k_labels(dist, gallery_labels, top_k)  # (P, top_k)
    lines = [",".join(grew_header(top_k, form))]
    for video, row in zip(ids, ranked):
        labels = [_grew_label(label, label_format) for label in row]
        lines.append(",".join([video, *labels, *(labels[:1] if form == "template" else [])]))
    end = "\r\n" if form == "template" else "\n"
    return _write_submission(Path(path), end.join(lines) + end)


def _write_submission(path: Path, text: str) -> Path:
    """``text`` to ``path`` atomically: a ``.csv`` as is, a ``.zip`` as its only member ``submission.csv``."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".zip"):
        raise ValueError(f"submissions are .csv or .zip files, got {path}")
    with atomic_target(path) as tmp:
        if suffix == ".csv":
            tmp.write_bytes(text.encode("utf-8"))  # bytes: no newline translation
        else:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                info = zipfile.ZipInfo(CHALLENGE_MEMBER, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, text)
    return path


def _submission_text(path: str | os.PathLike[str]) -> str:
    """The CSV text of a submission ``.csv``, or of the ``submission.csv`` inside a ``.zip``."""
    path = Path(path)
    if path.suffix.lower() != ".zip":
        return path.read_bytes().decode("utf-8")
    with zipfile.ZipFile(path) as archive:
        if archive.namelist() != [CHALLENGE_MEMBER]:
            raise ValueError(f"{path} must hold exactly {CHALLENGE_MEMBER}, holds {archive.namelist()}")
        return archive.read(CHALLENGE_MEMBER).decode("utf-8")


def read_grew_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str]]]:
    """``(probe video ids, ranked labels per probe)`` of a GREW submission (``.csv`` or ``.zip``, either
    form; the template's ``rank1_distractor`` column is left out); checks its header."""
    rows = list(csv.reader(io.StringIO(_submission_text(path))))
    header = rows[0] if rows else None
    template = bool(header) and header[-1] == GREW_DISTRACTOR_COLUMN
    ranks = len(header) - 1 - template if header else 0
    if not header or header != grew_header(ranks, "template" if template else "opengait"):
        raise ValueError(f"{path} is not a GREW submission: header {header}")
    width = len(header)
    bad = [i + 2 for i, row in enumerate(rows[1:]) if len(row) != width]
    if bad:
        raise ValueError(f"{path}: lines {bad[:5]} do not have {width} fields")
    return [r[0] for r in rows[1:]], [r[1 : 1 + ranks] for r in rows[1:]]


def _challenge_text(probe_video_ids: Sequence[Any], predicted_labels: Sequence[Any]) -> str:
    ids = [_field(v, "probe video id") for v in _flat(probe_video_ids)]
    labels = [_field(v, "label") for v in _flat(predicted_labels)]
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} probe video ids but {len(labels)} predicted labels")
    return "\n".join([",".join(CHALLENGE_HEADER), *(f"{v},{lbl}" for v, lbl in zip(ids, labels))]) + "\n"


def write_challenge_csv(
    path: str | os.PathLike[str], probe_video_ids: Sequence[Any], predicted_labels: Sequence[Any]
) -> Path:
    """Write a HID / MGR'24 challenge submission: ``videoID,label`` and one row per probe.

    Args:
        path: ``*.csv``: the CSV itself; ``*.zip``: a zip archive holding it as ``submission.csv``
            (what the challenge servers take). Replaced atomically.
        probe_video_ids: ``P`` probe video ids.
        predicted_labels: ``P`` predicted identities (e.g. :func:`nearest_labels`).

    Returns:
        ``path``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".zip"):
        raise ValueError(f"challenge submissions are .csv or .zip files, got {path}")
    return _write_submission(path, _challenge_text(probe_video_ids, predicted_labels))


def read_challenge_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """``(probe video ids, labels)`` of a challenge submission (``.csv``, or ``.zip`` with ``submission.csv``)."""
    rows = list(csv.reader(io.StringIO(_submission_text(path))))
    if not rows or tuple(rows[0]) != CHALLENGE_HEADER:
        raise ValueError(f"{path} is not a challenge submission: header {rows[0] if rows else None}")
    bad = [i + 2 for i, row in enumerate(rows[1:]) if len(row) != 2]
    if bad:
        raise ValueError(f"{path}: lines {bad[:5]} do not have 2 fields")
    return [r[0] for r in rows[1:]], [r[1] for r in rows[1:]]


def _strings(values: Sequence[Any] | None, name: str, expected: int) -> np.ndarray:
    if values is None:
        raise ValueError(f"{name} is required")
    arr = np.asarray([str(v) for v in _flat(values)], dtype=str)
    if len(arr) != expected:
        raise ValueError(f"{name} has {len(arr)} entries, dist needs {expected}")
    return arr


def write_distance_npz(
    path: str | os.PathLike[str],
    dist: Any,
    probe_keys: Sequence[Any],
    gallery_keys: Sequence[Any],
    probe_labels: Sequence[Any] | None,
    gallery_labels: Sequence[Any],
    metric: str,
) -> Path:
    """Save the full ``(P, G)`` distance matrix with both sides' keys and labels (compressed ``.npz``).

    Arrays in the file: ``dist`` (P, G) as given (float32 / float64), ``probe_keys`` (P,),
    ``gallery_keys`` (G,), ``gallery_labels`` (G,), ``probe_labels`` (P,) (absent when ``None``:
    unlabelled challenge probes), all unicode strings, and ``metric`` (0-d string). Loads with
    ``np.load(path)`` (no pickle needed) or :func:`read_distance_npz`.

    Returns:
        ``path``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the distance file must end in .npz (numpy would append it), got {path}")
    d = _check_dist(dist)
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float32)
    arrays = {
        "dist": d,
        "probe_keys": _strings(probe_keys, "probe_keys", d.shape[0]),
        "gallery_keys": _strings(gallery_keys, "gallery_keys", d.shape[1]),
        "gallery_labels": _strings(gallery_labels, "gallery_labels", d.shape[1]),
        "metric": np.asarray(str(metric)),
    }
    if probe_labels is not None:
        arrays["probe_labels"] = _strings(probe_labels, "probe_labels", d.shape[0])
    # a file object: given a name, numpy would append .npz to the temporary one
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def read_distance_npz(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The content of a :func:`write_distance_npz` file: ``dist`` (array), key and label lists
    (``probe_labels`` is ``None`` when not saved) and ``metric`` (str)."""
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in ("dist", "probe_keys", "gallery_keys", "gallery_labels", "metric") if k not in npz]
        if missing:
            raise ValueError(f"{path} is not a distance file of write_distance_npz: lacks {missing}")
        return {
            "dist": npz["dist"],
            "probe_keys": npz["probe_keys"].tolist(),
            "gallery_keys": npz["gallery_keys"].tolist(),
            "probe_labels": npz["probe_labels"].tolist() if "probe_labels" in npz else None,
            "gallery_labels": npz["gallery_labels"].tolist(),
            "metric": str(npz["metric"]),
        }
