"""Fuzzing the readers of outside gait data: Gait3D pose ``.txt`` and silhouette PNGs, OpenGait ``.pkl``
sequences, partition JSON (see ``_fuzz_helpers`` for the property)."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
from _fuzz_helpers import FUZZ, check_reader, mutated
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kprpe_gait.data.formats import JOINT_PKL_NAME, SIL_PKL_NAME
from kprpe_gait.data.io import format_pose_line, load_sequence, read_pose_file, read_pose_files, read_silhouette_png
from kprpe_gait.data.recover import load_opengait_sils
from kprpe_gait.train.dataset import GaitDataset, read_partition


def _pose_line(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    joints = np.concatenate([rng.uniform(0, 60, (17, 2)), rng.uniform(0, 1, (17, 1))], axis=1)
    return format_pose_line(joints, (311, 438)).encode()


def _read_pose_batch(paths: list[Path]) -> None:
    """:func:`read_pose_files` reports bad files in its ``errors``: those must name their file too."""
    poses, errors = read_pose_files(paths)
    assert poses.shape == (len(paths), 17, 3)
    for index, message in errors.items():
        assert paths[index].name in message, message


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_pose_txt(tmp_path: Path, data: st.DataObject) -> None:
    path, good = tmp_path / "human_crop_f00017.txt", tmp_path / "human_crop_f00018.txt"
    good.write_bytes(_pose_line(1))
    path.write_bytes(data.draw(mutated([_pose_line(0), _pose_line(2).replace(b",", b" ")])))
    check_reader("Gait3D pose .txt", lambda: read_pose_file(path), tmp_path, [path])
    check_reader("Gait3D pose .txt (batch)", lambda: _read_pose_batch([good, path]), tmp_path, [path])


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_silhouette_png(tmp_path: Path, data: st.DataObject) -> None:
    sil = np.zeros((20, 12), np.uint8)
    sil[4:16, 3:9] = 255
    seeds = [_png(sil), _png(np.stack([sil] * 3, -1)), _png(sil.astype(np.uint16) * 257)]
    path = tmp_path / "human_crop_f00017.png"
    path.write_bytes(data.draw(mutated(seeds)))
    check_reader("Gait3D silhouette PNG", lambda: read_silhouette_png(path), tmp_path, [path])


def _sequence_pickles() -> dict[str, list[bytes]]:
    """Pickles as ``write_sequence`` and OpenGait's pretreatment write them (protocols 4/5 and 2)."""
    sils = np.zeros((3, 64, 64), np.uint8)
    sils[:, 10:50, 20:40] = 255
    joints = np.random.default_rng(0).uniform(0, 64, (3, 17, 3)).astype(np.float32)
    return {
        SIL_PKL_NAME: [pickle.dumps(sils, protocol=5), pickle.dumps(sils, protocol=2)],
        JOINT_PKL_NAME: [pickle.dumps(joints, protocol=5), pickle.dumps(joints, protocol=4)],
    }


def _use_sequence(root: Path) -> None:
    load_sequence(root / "0001" / "t" / "v")
    GaitDataset(root, cache=False).load(0)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_fuzz_sequence_pickles(tmp_path: Path, data: st.DataObject) -> None:
    folder = tmp_path / "root" / "0001" / "t" / "v"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = _sequence_pickles()
    for name, versions in seeds.items():
        (folder / name).write_bytes(versions[0])
    name = data.draw(st.sampled_from(sorted(seeds)))
    (folder / name).write_bytes(data.draw(mutated(seeds[name])))
    check_reader("OpenGait sequence .pkl", lambda: _use_sequence(tmp_path / "root"), tmp_path, [folder / name])


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_fuzz_opengait_silhouette_pickle(tmp_path: Path, data: st.DataObject) -> None:
    folder = tmp_path / "0001" / "t" / "seq0"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "seq0.pkl"
    path.write_bytes(data.draw(mutated(_sequence_pickles()[SIL_PKL_NAME])))
    check_reader("OpenGait silhouette .pkl (recover)", lambda: load_opengait_sils(folder), tmp_path, [path])


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_partition_json(tmp_path: Path, data: st.DataObject) -> None:
    seed = {"TRAIN_SET": ["0001", "0002"], "TEST_SET": ["0003"], "PROBE_SET": ["0003-cam0-seq0"]}
    path = tmp_path / "partition.json"
    path.write_bytes(data.draw(mutated([json.dumps(seed).encode(), json.dumps(seed, indent=2).encode()])))
    check_reader("partition JSON", lambda: read_partition(path), tmp_path, [path])
