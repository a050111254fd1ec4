"""Fuzzing the readers of outside face data: ``.bin`` (+ sidecars), RecordIO, identity folders with a
landmark CSV, TinyFace folders, IJB meta files (see ``_fuzz_helpers`` for the property)."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from _fuzz_helpers import FUZZ, check_reader, mutated
from hypothesis import given, settings
from hypothesis import strategies as st

from face.data.folder import FaceFolder
from face.data.identification import read_identification_folder
from face.data.ijb import read_ijb, read_ijb_pairs
from face.data.images import encode_image
from face.data.recordio import RecordFaceDataset, write_face_recordio
from face.data.verification import read_verification_bin, sidecar_path, write_verification_bin


def _image(seed: int, size: int = 10) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, size, size), dtype=np.uint8))


def _encoded(seed: int) -> bytes:
    return encode_image(_image(seed), "png" if seed % 2 else "jpeg")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _python2_bin(entries: list[bytes], issame: list[bool]) -> bytes:
    """A ``.bin`` as Python 2 pickles it: the images as ``str`` (BINSTRING opcodes)."""
    out = b"\x80\x02]("
    for entry in entries:
        out += b"T" + struct.pack("<i", len(entry)) + entry
    out += b"e](" + b"".join(b"\x88" if same else b"\x89" for same in issame)
    return out + b"e\x86."


def _use_pairs(path: Path) -> None:
    """What evaluation does with a ``.bin``: every entry decoded, the sidecars' shapes checked."""
    read_verification_bin(path).check()


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_verification_bin(tmp_path: Path, data: st.DataObject) -> None:
    entries = [_encoded(i) for i in range(4)]
    seeds = [
        pickle.dumps((entries, [True, False]), protocol=4),
        pickle.dumps((entries[:2], [True]), protocol=2),
        pickle.dumps(([np.frombuffer(e, np.uint8) for e in entries[:2]], [0]), protocol=3),
        _python2_bin(entries, [False, True]),
    ]
    path = tmp_path / "set.bin"
    path.write_bytes(data.draw(mutated(seeds)))
    check_reader("verification .bin", lambda: _use_pairs(path), tmp_path, [path])


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_fuzz_verification_sidecars(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "set.bin"
    if not path.exists():
        write_verification_bin(path, [_encoded(i) for i in range(4)], [True, False])
    kind = data.draw(st.sampled_from(["landmarks", "boxes"]))
    seeds = [_npy(np.ones((4, 5, 3), np.float32)), _npy(np.ones((4, 4), np.float32)), _npy(np.ones((4, 5, 3)))]
    side = sidecar_path(path, kind)
    for other in ("landmarks", "boxes"):
        sidecar_path(path, other).unlink(missing_ok=True)
    side.write_bytes(data.draw(mutated(seeds)))
    check_reader("verification .bin sidecars", lambda: _use_pairs(path), tmp_path, [side])


# ----------------------------------------------------------------------------------------- RecordIO


def _use_recordio(rec: Path) -> None:
    dataset = RecordFaceDataset(rec)
    dataset.labels  # noqa: B018 - the label scan reads every record header
    for index in range(len(dataset)):
        dataset[index]


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_recordio(tmp_path: Path, data: st.DataObject) -> None:
    seed = tmp_path / "seed"
    if not seed.exists():
        seed.mkdir()
        write_face_recordio(seed / "train.rec", [(_encoded(i), i // 2) for i in range(4)])
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    rec.write_bytes((seed / "train.rec").read_bytes())
    idx.write_bytes((seed / "train.idx").read_bytes())
    target = data.draw(st.sampled_from([rec, idx]))
    target.write_bytes(data.draw(mutated([target.read_bytes()])))
    check_reader("RecordIO .rec/.idx", lambda: _use_recordio(rec), tmp_path, [rec, idx])


# ----------------------------------------------------------------------------------------- folders + CSV


def _face_tree(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(_encoded(i))


def _landmark_csv_bytes(names: list[str]) -> bytes:
    buffer = io.StringIO()
    header = ["image"] + [f"{a}{i}" for i in range(5) for a in "xy"] + [f"c{i}" for i in range(5)]
    buffer.write(",".join(header) + "\n")
    for k, name in enumerate(names):
        values = [f"{1 + (k + j) % 8:.4f}" for j in range(10)] + ["0.9"] * 5
        if k == 1:
            values[2:4] = ["", ""]
            values[11] = "0"
        buffer.write(",".join([name, *values]) + "\n")
    return buffer.getvalue().encode()


def _use_folder(root: Path, csv: Path) -> None:
    dataset = FaceFolder(root, csv, missing="nan")
    for index in range(len(dataset)):
        dataset[index]


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_identity_folder(tmp_path: Path, data: st.DataObject) -> None:
    root, csv = tmp_path / "faces", tmp_path / "landmarks.csv"
    names = ["00000/a.png", "00000/b.jpg", "00001/c.png"]
    if not root.exists():
        _face_tree(root, names)
    target = data.draw(st.sampled_from([csv, root / names[0], root / names[1]]))
    csv.write_bytes(_landmark_csv_bytes(names))
    for i, name in enumerate(names):
        (root / name).write_bytes(_encoded(i))
    seeds = [target.read_bytes()] + ([_landmark_csv_bytes(names[:1])] if target == csv else [])
    target.write_bytes(data.draw(mutated(seeds)))
    check_reader("identity folder + landmark CSV", lambda: _use_folder(root, csv), tmp_path, [target])


def _use_identification(root: Path) -> None:
    sets = read_identification_folder(root, size=16)
    for faces in (sets.probe, sets.gallery):
        faces.resized_landmarks()
        for index in range(len(faces)):
            faces.item(index)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_fuzz_tinyface(tmp_path: Path, data: st.DataObject) -> None:
    root = tmp_path / "tinyface"
    names = [
        "Probe/1_1.png",
        "Probe/2_1.jpg",
        "Gallery_Match/1_2.png",
        "Gallery_Match/2_3.jpg",
        "Gallery_Distractor/x.png",
    ]
    _face_tree(root, names)
    (root / "landmarks.csv").write_bytes(_landmark_csv_bytes(names[:3]))
    target = root / data.draw(st.sampled_from(["landmarks.csv", names[0], names[3]]))
    target.write_bytes(data.draw(mutated([target.read_bytes()])))
    check_reader("TinyFace folder + landmark CSV", lambda: _use_identification(root), tmp_path, [target])


# ----------------------------------------------------------------------------------------- IJB


def _ijb_meta(root: Path) -> dict[str, bytes]:
    landmarks = "".join(
        f"{i}.jpg " + " ".join(f"{10 + i + j:.3f}" for j in range(10)) + f" {0.5 + i / 10:.3f}\n" for i in range(1, 5)
    )
    tids = "".join(f"{i}.jpg {7 + i // 3} {100 + i % 2}\n" for i in range(4, 0, -1))
    pairs = "7 8 0\n8 7 1\n7 7 1\n"
    return {"ijbc_name_5pts_score.txt": landmarks.encode(), "ijbc_face_tid_mid.txt": tids.encode(),
            "ijbc_template_pair_label.txt": pairs.encode()}  # fmt: skip


def _use_ijb(root: Path) -> None:
    data = read_ijb(root)
    read_ijb_pairs(data.pair_file, data.templates, chunk_bytes=16)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_ijb_meta(tmp_path: Path, data: st.DataObject) -> None:
    root = tmp_path / "IJBC"
    (root / "loose_crop").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    meta = _ijb_meta(root)
    for name, content in meta.items():
        (root / "meta" / name).write_bytes(content)
    name = data.draw(st.sampled_from(sorted(meta)))
    target = root / "meta" / name
    target.write_bytes(data.draw(mutated([meta[name]])))
    check_reader("IJB meta files", lambda: _use_ijb(root), tmp_path, [target])
