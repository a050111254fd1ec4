"""IJB-B / IJB-C 1:1 verification data in insightface's ``IJB_release`` layout.

::

    IJBC/
      loose_crop/1.jpg ...                       the face images (loose crops of the original media)
      meta/ijbc_name_5pts_score.txt              "1.jpg x0 y0 x1 y1 ... x4 y4 score": 5 landmarks (pixel
                                                 indices on the loose crop, insightface order) and the
                                                 detector's faceness score
      meta/ijbc_face_tid_mid.txt                 "1.jpg template_id media_id"
      meta/ijbc_template_pair_label.txt          "template_id template_id label" (1 = same person)

For 1:N identification (:func:`read_ijb_search`) three more meta files, CSVs with a header row whose first
two columns are ``TEMPLATE_ID,SUBJECT_ID`` (one row per image; further columns ignored):
``ijbc_1N_gallery_G1.csv``, ``ijbc_1N_gallery_G2.csv``, ``ijbc_1N_probe_mixed.csv`` (IJB-B: ``ijbb_1N_gallery_S1``
/ ``S2``).

(``ijbb_*`` for IJB-B.) Images are joined to their template and media **by file name**, not by line
order. The pair list has about 15.7 million rows for IJB-C (8 million for IJB-B); it is read in chunks
of text and kept as compact integer arrays (two int32 template indices and a bool per pair, about 140 MB
for IJB-C), never as one string or one Python list.

Every problem names the file and the line: a missing folder or meta file, a line with the wrong number
of fields or a non-number, an image listed twice or without landmarks, a pair naming an unknown template,
a label that is not 0 or 1.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "IJB_GALLERIES",
    "IJB_NAMES",
    "IJBPairs",
    "IJBSearch",
    "IJBSet",
    "iter_pair_chunks",
    "read_ijb",
    "read_ijb_pairs",
    "read_ijb_search",
]

#: data set names and the prefix of their meta files
IJB_NAMES = {"IJBB": "ijbb", "IJBC": "ijbc"}
#: the two 1:N gallery lists of each set (``<prefix>_1N_gallery_<name>.csv``), as ``ijb_1n.py`` names them
IJB_GALLERIES = {"IJBB": ("S1", "S2"), "IJBC": ("G1", "G2")}
_PAIR_CHUNK_BYTES = 16 << 20  # of text; its parse holds about 12x that in Python strings


@dataclass
class IJBSet:
    """The images of an IJB set with their landmarks, detector scores, templates and media.

    Attributes:
        root: the ``IJBB`` / ``IJBC`` folder.
        name: ``"IJBB"`` or ``"IJBC"``.
        images: ``N`` file names under ``root/loose_crop``, in the landmark file's order.
        landmarks: ``(N, 5, 2)`` float32 pixel indices on the loose crops.
        faceness: ``(N,)`` float32 detector scores.
        templates: ``(N,)`` int64 template id of each image.
        medias: ``(N,)`` int64 media id of each image (frames of one video share it).
        pair_file: the template pair list (read with :func:`read_ijb_pairs`).
    """

    root: Path
    name: str
    images: list[str]
    landmarks: np.ndarray
    faceness: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    pair_file: Path

    def __len__(self) -> int:
        return len(self.images)

    def image_path(self, index: int) -> Path:
        return self.root / "loose_crop" / self.images[index]


@dataclass
class IJBPairs:
    """A template pair list: ``template_ids`` (sorted, unique, int64) and per pair the two templates'
    positions in it (``first``, ``second``: int32) and whether they are the same person (``same``: bool)."""

    template_ids: np.ndarray
    first: np.ndarray
    second: np.ndarray
    same: np.ndarray

    def __len__(self) -> int:
        return len(self.same)


def _meta_path(root: Path, prefix: str, stem: str, suffix: str = ".txt") -> Path:
    path = root / "meta" / f"{prefix}_{stem}{suffix}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (insightface's IJB_release layout: <root>/meta/{path.name})")
    return path


def _text_lines(path: Path) -> list[str]:
    """The lines of a (small) meta file; a file that is not UTF-8 is a ``ValueError`` naming it."""
    try:
        return list(io.StringIO(path.read_bytes().decode("utf-8"), newline=None))  # newlines as open() reads them
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e})") from None


def _read_rows(path: Path, fields: int) -> list[list[str]]:
    """Whitespace-separated rows of ``path`` with exactly ``fields`` fields (blank lines skipped)."""
    rows = []
    for number, line in enumerate(_text_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != fields:
            raise ValueError(f"{path}:{number}: expected {fields} fields, got {len(parts)}: {line.strip()!r}")
        rows.append(parts)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _numbers(path: Path, rows: list[list[str]], columns: slice, dtype: type) -> np.ndarray:
    try:
        return np.array([row[columns] for row in rows], dtype=dtype)
    except (ValueError, OverflowError):
        for number, row in enumerate(rows, 1):
            try:
                np.array(row[columns], dtype=dtype)
            except (ValueError, OverflowError):
                raise ValueError(f"{path}: row {number}: not a number in {row[columns]} (or out of range)") from None
        raise


def read_ijb(root: str | os.PathLike[str], name: str | None = None) -> IJBSet:
    """Read an IJB-B / IJB-C folder's image list, landmarks, detector scores, templates and media.

    Args:
        root: the ``IJBB`` or ``IJBC`` folder of insightface's ``IJB_release``.
        name: ``"IJBB"`` or ``"IJBC"``; by default the folder's name.

    Raises:
        FileNotFoundError: the folder, ``loose_crop/`` or a meta file is missing.
        ValueError: an unknown name or a malformed meta file (file and line named).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"IJB folder {root} not found")
    name = (name or root.name).upper()
    if name not in IJB_NAMES:
        raise ValueError(f"{root}: unknown IJB set {name!r}; name it with one of {sorted(IJB_NAMES)}")
    prefix = IJB_NAMES[name]
    if not (root / "loose_crop").is_dir():
        raise FileNotFoundError(f"{root / 'loose_crop'} not found (the face images of {name})")
    landmark_file = _meta_path(root, prefix, "name_5pts_score")
    rows = _read_rows(landmark_file, 12)
    images = [row[0] for row in rows]
    seen: dict[str, int] = {}
    for number, image in enumerate(images, 1):
        if image in seen:
            raise ValueError(f"{landmark_file}: {image} listed twice (rows {seen[image]} and {number})")
        seen[image] = number
    values = _numbers(landmark_file, rows, slice(1, 12), np.float64)
    landmarks = values[:, :10].reshape(-1, 5, 2).astype(np.float32)
    faceness = values[:, 10].astype(np.float32)

    tid_file = _meta_path(root, prefix, "face_tid_mid")
    tid_rows = _read_rows(tid_file, 3)
    ids = _numbers(tid_file, tid_rows, slice(1, 3), np.int64)
    by_name: dict[str, int] = {}
    for k, row in enumerate(tid_rows):
        if row[0] in by_name:
            raise ValueError(f"{tid_file}: {row[0]} listed twice (rows {by_name[row[0]] + 1} and {k + 1})")
        by_name[row[0]] = k
    missing = [image for image in images if image not in by_name]
    if missing:
        raise ValueError(f"{tid_file}: no template for {len(missing)} image(s) of {landmark_file.name}: {missing[:5]}")
    extra = len(tid_rows) - len(images)
    if extra:
        unlisted = [row[0] for row in tid_rows if row[0] not in seen]
        raise ValueError(f"{landmark_file}: no landmarks for {extra} image(s) of {tid_file.name}: {unlisted[:5]}")
    order = np.array([by_name[image] for image in images])
    return IJBSet(
        root=root,
        name=name,
        images=images,
        landmarks=landmarks,
        faceness=faceness,
        templates=ids[order, 0],
        medias=ids[order, 1],
        pair_file=_meta_path(root, prefix, "template_pair_label"),
    )


def iter_pair_chunks(path: str | os.PathLike[str], chunk_bytes: int = _PAIR_CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The rows of a template pair list as ``(k, 3)`` int64 arrays of about ``chunk_bytes`` of text each.

    Raises:
        ValueError: a row without exactly three integers (the row number is named).
    """
    path = Path(path)
    first_row = 1
    with open(path, encoding="utf-8") as handle:
        while True:
            try:
                lines = handle.readlines(chunk_bytes)
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: not a UTF-8 text file after row {first_row - 1} ({e})") from None
            if not lines:
                return
            fields = " ".join(lines).split()
            try:
                chunk = np.array(fields, dtype=np.int64)
                if chunk.size % 3:
                    raise ValueError
                chunk = chunk.reshape(-1, 3)
                if len(chunk) != sum(1 for line in lines if line.strip()):
                    raise ValueError
            except (ValueError, OverflowError):
                for offset, line in enumerate(lines):
                    parts = line.split()
                    if parts and (len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts)):
                        raise ValueError(
                            f"{path}:{first_row + offset}: expected 'template template label', got {line.strip()!r}"
                        ) from None
                raise ValueError(f"{path}: rows {first_row}-{first_row + len(lines) - 1}: not all integers") from None
            yield chunk
            first_row += len(lines)


def read_ijb_pairs(
    path: str | os.PathLike[str], template_ids: np.ndarray, chunk_bytes: int = _PAIR_CHUNK_BYTES
) -> IJBPairs:
    """Read a template pair list against the known ``template_ids`` (any order, duplicates allowed).

    Raises:
        ValueError: a pair names a template that has no image, or a label is not 0 or 1.
    """
    ids = np.unique(np.asarray(template_ids, dtype=np.int64))
    firsts, seconds, sames = [], [], []
    rows = 0
    for chunk in iter_pair_chunks(path, chunk_bytes):
        labels = chunk[:, 2]
        bad = np.flatnonzero((labels != 0) & (labels != 1))
        if bad.size:
            raise ValueError(f"{path}: pair {rows + bad[0] + 1}: label must be 0 or 1, got {labels[bad[0]]}")
        positions = []
        for column in (0, 1):
            at = np.searchsorted(ids, chunk[:, column]).clip(max=len(ids) - 1)
            unknown = np.flatnonzero(ids[at] != chunk[:, column])
            if unknown.size:
                pair = rows + unknown[0] + 1
                raise ValueError(f"{path}: pair {pair}: template {chunk[unknown[0], column]} has no image in the set")
            positions.append(at.astype(np.int32))
        firsts.append(positions[0])
        seconds.append(positions[1])
        sames.append(labels == 1)
        rows += len(chunk)
    if not rows:
        raise ValueError(f"{path}: no pairs")
    return IJBPairs(ids, np.concatenate(firsts), np.concatenate(seconds), np.concatenate(sames))


@dataclass
class IJBSearch:
    """The 1:N lists of an IJB set: gallery templates (the galleries concatenated, as ``ijb_1n.py`` does) and
    probe templates, each with its subject; every array sorted by template id, one entry per template.

    Attributes:
        galleries: the gallery lists read (``("G1", "G2")`` for IJB-C).
        gallery_templates, gallery_subjects: ``(G,)`` int64.
        probe_templates, probe_subjects: ``(P,)`` int64.
        mates: ``(P,)`` int64: the row of each probe's subject in the gallery (exactly one, checked).
    """

    galleries: tuple[str, ...]
    gallery_templates: np.ndarray
    gallery_subjects: np.ndarray
    probe_templates: np.ndarray
    probe_subjects: np.ndarray
    mates: np.ndarray


def _read_subject_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(templates, subjects)`` of a 1:N CSV (header skipped), one entry per template, sorted by template.

    Raises:
        ValueError: a row with fewer than two fields or non-integer ids, or a template listed with two subjects.
    """
    templates, subjects = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if number == 1 or not line.strip():
                continue
            fields = line.strip().split(",")
            try:
                templates.append(int(fields[0]))
                subjects.append(int(fields[1]))
            except (ValueError, IndexError):
                raise ValueError(
                    f"{path}:{number}: expected 'TEMPLATE_ID,SUBJECT_ID,...', got {line.strip()!r}"
                ) from None
    if not templates:
        raise ValueError(f"{path}: no rows after the header")
    template_array, subject_array = np.array(templates, np.int64), np.array(subjects, np.int64)
    unique, first = np.unique(template_array, return_index=True)
    per_template = subject_array[first]
    conflict = np.flatnonzero(subject_array != per_template[np.searchsorted(unique, template_array)])
    if conflict.size:
        row = conflict[0]
        raise ValueError(
            f"{path}: template {template_array[row]} listed with subjects {per_template[np.searchsorted(unique, template_array[row])]} "
            f"and {subject_array[row]}"
        )
    return unique, per_template


def _check_known(path: Path, templates: np.ndarray, known: np.ndarray) -> None:
    unknown = np.setdiff1d(templates, known)
    if unknown.size:
        raise ValueError(f"{path}: {unknown.size} template(s) without images in the set: {unknown[:5].tolist()}")


def read_ijb_search(data: IJBSet) -> IJBSearch:
    """Read the 1:N gallery and probe lists of ``data`` (module docstring) and match each probe to its mate.

    Raises:
        FileNotFoundError: a list is missing.
        ValueError: a malformed list, a template without images, a template in both galleries, or a probe
            whose subject has no gallery template or several (``ijb_1n.py``'s ``gen_mask`` requires one).
    """
    prefix = IJB_NAMES[data.name]
    galleries = IJB_GALLERIES[data.name]
    known = np.unique(data.templates)
    gallery_parts = []
    for gallery in galleries:
        path = _meta_path(data.root, prefix, f"1N_gallery_{gallery}", ".csv")
        gallery_parts.append((path, *_read_subject_csv(path)))
    probe_path = _meta_path(data.root, prefix, "1N_probe_mixed", ".csv")
    probe_templates, probe_subjects = _read_subject_csv(probe_path)
    for path, templates, _ in [*gallery_parts, (probe_path, probe_templates, None)]:
        _check_known(path, templates, known)
    all_templates = np.concatenate([part[1] for part in gallery_parts])
    all_subjects = np.concatenate([part[2] for part in gallery_parts])
    gallery_templates, first = np.unique(all_templates, return_index=True)
    if len(gallery_templates) < len(all_templates):
        shared = np.intersect1d(gallery_parts[0][1], gallery_parts[1][1])
        raise ValueError(f"{data.root}: template(s) {shared[:5].tolist()} in both galleries {galleries}")
    gallery_subjects = all_subjects[first]
    return IJBSearch(
        galleries=galleries,
        gallery_templates=gallery_templates,
        gallery_subjects=gallery_subjects,
        probe_templates=probe_templates,
        probe_subjects=probe_subjects,
        mates=_mates(probe_path, probe_subjects, gallery_subjects),
    )


def _mates(path: Path, probe_subjects: np.ndarray, gallery_subjects: np.ndarray) -> np.ndarray:
    """``(P,)`` gallery row of each probe's subject; exactly one must exist."""
    subjects, counts = np.unique(gallery_subjects, return_counts=True)
    at = np.searchsorted(subjects, probe_subjects).clip(max=len(subjects) - 1)
    found = subjects[at] == probe_subjects
    if not found.all():
        lost = np.unique(probe_subjects[~found])
        raise ValueError(f"{path}: {lost.size} probe subject(s) without a gallery template: {lost[:5].tolist()}")
    if (counts[at] != 1).any():
        twice = np.unique(probe_subjects[counts[at] != 1])
        raise ValueError(f"{path}: probe subject(s) {twice[:5].tolist()} have several gallery templates")
    order = np.argsort(gallery_subjects, kind="stable")
    return order[np.searchsorted(gallery_subjects[order], probe_subjects)]
