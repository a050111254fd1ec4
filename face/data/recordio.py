"""insightface RecordIO (``train.rec`` + ``train.idx``) in pure Python: reader, writer and a face dataset.

The container is MXNet's (dmlc-core) RecordIO, read here without MXNet:

* ``.idx``: text lines ``key<TAB>byte offset`` into the ``.rec``.
* ``.rec``: records, each ``uint32 magic 0xced7230a``, ``uint32 lrecord`` (``cflag = lrecord >> 29``,
  ``length = lrecord & (2**29 - 1)``), ``length`` payload bytes, zero padding to a multiple of 4. A payload
  that contains the magic at a 4-byte aligned offset is split there into parts (``cflag`` 1 = first, 2 =
  middle, 3 = last; 0 = whole); the reader joins the parts with the magic in between.
* A payload starts with the image-record header ``IRHeader`` = ``struct "<IfQQ"`` ``(flag, label, id, id2)``;
  ``flag > 0`` means ``flag`` float32 labels follow (and ``label`` is unused); then the JPEG bytes.
* insightface face sets: record 0 has ``flag > 0`` and ``label[0]`` = one past the last image key, so the
  images are keys ``1 .. label[0] - 1``; keys from ``label[0]`` to ``label[1] - 1`` list each identity's
  image range ``[start, end)``. Without that header every key is an image. A label array takes ``[0]``.

A file handle is opened lazily, once per process: DataLoader workers (fork or spawn) each open their own,
as shared handles are not safe across processes.
"""

from __future__ import annotations

import numbers
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from face.data.images import decode_image, encode_image, missing_landmarks
from kprpe.io import atomic_path, load_npy

__all__ = [
    "MAGIC",
    "IRHeader",
    "RecordFaceDataset",
    "RecordIOReader",
    "RecordIOWriter",
    "pack_record",
    "unpack_record",
    "write_face_recordio",
]

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
_IR_FORMAT = "<IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)  # 24


@dataclass
class IRHeader:
    """The image-record header: ``label`` is a float, or a float32 array when ``flag > 0``."""

    flag: int
    label: float | np.ndarray
    id: int = 0
    id2: int = 0


def pack_record(label: float | Sequence[float] | np.ndarray, payload: bytes, id: int = 0, id2: int = 0) -> bytes:
    """``IRHeader`` + payload, as MXNet's ``recordio.pack`` writes it (a label array sets ``flag``)."""
    if isinstance(label, numbers.Number):
        return struct.pack(_IR_FORMAT, 0, float(label), id, id2) + payload
    array = np.asarray(label, dtype="<f4").ravel()
    return struct.pack(_IR_FORMAT, array.size, 0.0, id, id2) + array.tobytes() + payload


def unpack_record(data: bytes, where: str = "record") -> tuple[IRHeader, bytes]:
    """Split a record's payload into its :class:`IRHeader` and the rest (the image bytes)."""
    if len(data) < _IR_SIZE:
        raise ValueError(f"{where}: {len(data)} bytes, shorter than the {_IR_SIZE}-byte image-record header")
    flag, label, id_, id2 = struct.unpack(_IR_FORMAT, data[:_IR_SIZE])
    rest = data[_IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise ValueError(f"{where}: header announces {flag} labels but only {len(rest)} bytes follow")
        return IRHeader(flag, np.frombuffer(rest, "<f4", flag).copy(), id_, id2), rest[4 * flag :]
    return IRHeader(flag, label, id_, id2), rest


def _read_index(idx: Path) -> dict[int, int]:
    """``key -> byte offset`` of a ``.idx`` (an offset past the end of a truncated ``.rec`` fails when read)."""
    try:
        text = idx.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{idx}: not a UTF-8 RecordIO index ({e})") from None
    offsets: dict[int, int] = {}
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            key, offset = line.split("\t")
            offsets[int(key)] = int(offset)
        except ValueError:
            raise ValueError(f"{idx}:{line_no}: expected 'key<TAB>offset', got {line.rstrip()!r}") from None
        if offsets[int(key)] < 0:
            raise ValueError(f"{idx}:{line_no}: negative offset {offset.strip()}")
    return offsets


def _integer_label(label: float, where: str) -> int:
    """A record's float label as the integer it stands for; NaN or infinite is a corrupt record."""
    if not np.isfinite(label):
        raise ValueError(f"{where}: label {label} is not a number")
    return int(label)


class RecordIOReader:
    """Random access to the records of a ``.rec`` through its ``.idx``.

    Args:
        rec: the ``.rec`` file.
        idx: its index; ``rec`` with the suffix ``.idx`` by default.

    Raises:
        FileNotFoundError: naming the absent file.
        ValueError: naming the ``.idx`` line that is malformed.
    """

    def __init__(self, rec: str | os.PathLike[str], idx: str | os.PathLike[str] | None = None) -> None:
        self.rec = Path(rec)
        self.idx = self.rec.with_suffix(".idx") if idx is None else Path(idx)
        for path in (self.rec, self.idx):
            if not path.is_file():
                raise FileNotFoundError(f"RecordIO file {path} not found")
        self.offsets = _read_index(self.idx)
        self._size = self.rec.stat().st_size
        self._handle = None
        self._pid: int | None = None

    @property
    def keys(self) -> list[int]:
        return list(self.offsets)

    def _file(self):
        if self._handle is None or self._pid != os.getpid():  # first use in this process (worker)
            self._handle = open(self.rec, "rb")  # noqa: SIM115 - lives as long as the reader
            self._pid = os.getpid()
        return self._handle

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"], state["_pid"] = None, None
        return state

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle, self._pid = None, None

    def read(self, key: int) -> bytes:
        """The payload of record ``key`` (parts joined).

        Raises:
            KeyError: the key is not in the index.
            ValueError: naming the file, key and byte offset of a corrupt or truncated record.
        """
        if key not in self.offsets:
            raise KeyError(f"{self.rec}: no record with key {key} in {self.idx}")
        offset = self.offsets[key]
        handle = self._file()
        handle.seek(offset)
        parts: list[bytes] = []
        while True:
            head = handle.read(8)
            where = f"{self.rec}: record {key} (byte {offset})"
            if len(head) < 8:
                raise ValueError(f"{where}: truncated (file ends inside the record header)")
            magic, lrecord = struct.unpack("<II", head)
            if magic != MAGIC:
                raise ValueError(f"{where}: corrupt record (magic {magic:#010x}, expected {MAGIC:#010x})")
            cflag, length = lrecord >> 29, lrecord & _LENGTH_MASK
            data = handle.read(length)
            if len(data) < length:
                raise ValueError(f"{where}: truncated ({len(data)} of {length} payload bytes)")
            handle.read((-length) % 4)
            parts.append(data)
            if cflag in (0, 3):
                break
            if cflag not in (1, 2) or (cflag == 1) != (len(parts) == 1):
                raise ValueError(f"{where}: corrupt record (continuation flag {cflag} out of sequence)")
        return _MAGIC_BYTES.join(parts)

    def read_head(self, key: int, size: int) -> bytes:
        """The first ``size`` payload bytes of record ``key`` (at most the first part); cheap label scans."""
        if key not in self.offsets:
            raise KeyError(f"{self.rec}: no record with key {key} in {self.idx}")
        handle = self._file()
        handle.seek(self.offsets[key])
        head = handle.read(8)
        if len(head) < 8 or struct.unpack("<I", head[:4])[0] != MAGIC:
            raise ValueError(f"{self.rec}: record {key} (byte {self.offsets[key]}): corrupt or truncated header")
        length = struct.unpack("<I", head[4:])[0] & _LENGTH_MASK
        return handle.read(min(size, length))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecordIOWriter:
    """Write an indexed ``.rec`` + ``.idx`` atomically (both appear when the ``with`` block ends cleanly)."""

    def __init__(self, rec: str | os.PathLike[str], idx: str | os.PathLike[str] | None = None) -> None:
        self.rec = Path(rec)
        self.idx = self.rec.with_suffix(".idx") if idx is None else Path(idx)

    def __enter__(self):
        self._rec_ctx, self._idx_ctx = atomic_path(self.rec), atomic_path(self.idx)
        self._rec_tmp, self._idx_tmp = self._rec_ctx.__enter__(), self._idx_ctx.__enter__()
        self._rec_handle = open(self._rec_tmp, "wb")
        self._lines: list[str] = []
        return self

    def __exit__(self, *exc) -> None:
        self._rec_handle.close()
        if exc[0] is None:
            self._idx_tmp.write_text("".join(self._lines))
        self._idx_ctx.__exit__(*exc)
        self._rec_ctx.__exit__(*exc)

    def write(self, key: int, payload: bytes) -> None:
        """Append one record (split at aligned magic words, as dmlc-core does) and index it."""
        self._lines.append(f"{key}\t{self._rec_handle.tell()}\n")
        start = 0
        for i in range(0, len(payload) - len(payload) % 4, 4):
            if payload[i : i + 4] == _MAGIC_BYTES:
                self._part(1 if start == 0 else 2, payload[start:i])
                start = i + 4
        self._part(3 if start else 0, payload[start:])

    def _part(self, cflag: int, data: bytes) -> None:
        if len(data) > _LENGTH_MASK:
            raise ValueError(f"record part of {len(data)} bytes exceeds RecordIO's 2**29 - 1 limit")
        self._rec_handle.write(struct.pack("<II", MAGIC, (cflag << 29) | len(data)) + data + b"\0" * ((-len(data)) % 4))


def write_face_recordio(
    rec: str | os.PathLike[str],
    faces: Iterable[tuple[torch.Tensor | np.ndarray | bytes, int]],
    quality: int = 95,
) -> int:
    """Write faces in the insightface layout (header record 0, images ``1..N``, identity ranges after).

    Args:
        rec: the ``.rec`` path (its ``.idx`` goes beside it).
        faces: ``(image, label)`` with the image as a ``(3, H, W)`` uint8 tensor, an ``(H, W, 3)`` array or
            encoded JPEG bytes; labels must come grouped by identity (each label in one run).
        quality: JPEG quality of encoded images.

    Returns:
        The number of images written.
    """
    ranges: list[tuple[int, int, int]] = []  # (label, start, end)
    key = 0
    with RecordIOWriter(rec) as writer:
        for key, (image, label) in enumerate(faces, start=1):
            payload = image if isinstance(image, bytes) else encode_image(image, "jpeg", quality)
            writer.write(key, pack_record(float(label), payload, id=key))
            if ranges and ranges[-1][0] == label:
                ranges[-1] = (label, ranges[-1][1], key + 1)
            elif any(r[0] == label for r in ranges):
                raise ValueError(f"label {label} appears in two separate runs; write faces grouped by identity")
            else:
                ranges.append((label, key, key + 1))
        first_identity = key + 1
        for offset, (label, start, end) in enumerate(ranges):
            writer.write(first_identity + offset, pack_record([start, end], b"", id=label))
        writer.write(0, pack_record([first_identity, first_identity + len(ranges)], b""))
    return key


class RecordFaceDataset(Dataset):
    """The images of an insightface ``train.rec`` as ``(image, landmarks, label)`` items.

    Args:
        rec: the ``.rec`` (with its ``.idx`` beside it).
        landmarks: ``(N, 5, 3)`` pixel landmarks in item order, or a ``.npy`` path holding them; ``"auto"``
            loads ``<stem>.landmarks.npy`` beside ``rec`` when it exists; ``None`` or absent: missing
            landmarks (NaN, confidence 0) for every image.

    Raises:
        ValueError: naming the file and key of a record whose header or JPEG is corrupt (when read), or a
            landmark array of the wrong shape.
    """

    def __init__(self, rec: str | os.PathLike[str], landmarks: str | os.PathLike[str] | np.ndarray | None = "auto"):
        self.reader = RecordIOReader(rec)
        if 0 not in self.reader.offsets:
            self.keys = sorted(self.reader.offsets)
        else:
            header, _ = unpack_record(self.reader.read(0), f"{self.reader.rec}: record 0")
            if header.flag > 0:
                self.keys = self._image_keys(_integer_label(header.label[0], f"{self.reader.rec}: record 0"))
            else:
                self.keys = sorted(self.reader.offsets)
        self._labels: torch.Tensor | None = None
        if landmarks == "auto":
            sidecar = Path(rec).with_suffix(".landmarks.npy")
            landmarks = sidecar if sidecar.is_file() else None
        if landmarks is None:
            self.landmarks = missing_landmarks(len(self.keys))
        else:
            array = landmarks if isinstance(landmarks, np.ndarray) else load_npy(landmarks, "landmarks")
            if array.shape != (len(self.keys), 5, 3):
                raise ValueError(f"landmarks {landmarks if not isinstance(landmarks, np.ndarray) else ''} must be "
                                 f"({len(self.keys)}, 5, 3) for {rec}, got {array.shape}")  # fmt: skip
            self.landmarks = torch.as_tensor(array, dtype=torch.float32)

    def _image_keys(self, end: int) -> list[int]:
        """Keys ``1 .. end - 1`` that the header record announces, each checked against the index."""
        if not 1 <= end <= max(self.reader.offsets) + 1:
            raise ValueError(f"{self.reader.rec}: record 0 announces images 1..{end - 1}, not in {self.reader.idx}")
        missing = [key for key in range(1, end) if key not in self.reader.offsets]
        if missing:
            raise ValueError(f"{self.reader.idx}: no entry for image record(s) {missing[:5]} of {self.reader.rec}")
        return list(range(1, end))

    def __len__(self) -> int:
        return len(self.keys)

    def label(self, index: int) -> int:
        """The label of item ``index`` (reads the record header only, not the image)."""
        key = self.keys[index]
        head = self.reader.read_head(key, _IR_SIZE)
        flag = struct.unpack("<I", head[:4])[0] if len(head) >= 4 else 0
        if flag > 0:
            head = self.reader.read_head(key, _IR_SIZE + 4 * flag)
        if len(head) < _IR_SIZE + 4 * flag:  # a first part cut short by an escaped magic word: read it all
            head = self.reader.read(key)
        where = f"{self.reader.rec}: record {key}"
        header, _ = unpack_record(head, where)
        return _integer_label(header.label if header.flag == 0 else header.label[0], where)

    @property
    def labels(self) -> torch.Tensor:
        """``(N,)`` int64 labels of all items (one pass over the record headers, cached)."""
        if self._labels is None:
            self._labels = torch.tensor([self.label(i) for i in range(len(self))], dtype=torch.int64)
        return self._labels

    def _read(self, index: int) -> tuple[int, bytes]:
        key = self.keys[index]
        where = f"{self.reader.rec}: record {key}"
        header, payload = unpack_record(self.reader.read(key), where)
        return _integer_label(header.label if header.flag == 0 else header.label[0], where), payload

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        label, payload = self._read(index)
        image = decode_image(payload, f"{self.reader.rec}: record {self.keys[index]}")
        return image, self.landmarks[index].clone(), label
