"""File-level helpers: frame numbers, pose files, sequence pickles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _gait_data_helpers import pose_at

from kprpe_gait.data.formats import JOINT_PKL_NAME, SIL_PKL_NAME
from kprpe_gait.data.io import (
    DataFormatError,
    atomic_pickle,
    check_sequence_arrays,
    format_pose_line,
    frame_number,
    frames_by_number,
    list_sequence_folders,
    load_sequence,
    read_pose_file,
    sequence_complete,
    write_sequence,
)


def test_frame_numbers_sort_numerically() -> None:
    names = ["human_crop_f10000.png", "human_crop_f9999.png", "human_crop_f00017.png"]
    assert [frame_number(n) for n in names] == [10000, 9999, 17]
    assert sorted(names, key=frame_number) == ["human_crop_f00017.png", "human_crop_f9999.png", "human_crop_f10000.png"]
    with pytest.raises(DataFormatError, match="f<frame number>"):
        frame_number("gei.png")
    with pytest.raises(DataFormatError, match="both hold frame 5"):
        frames_by_number([Path("a/human_crop_f5.txt"), Path("a/human_crop_f005.txt")])


def test_pose_file_round_trip(tmp_path: Path) -> None:
    pose = pose_at({0: (10.25, 20.5), 16: (3.0, 99.75)}, conf=0.625)
    line = format_pose_line(pose, (311, 438))
    assert line.startswith("311,438,9.7500,20.0000,0.6250,")
    path = tmp_path / "human_crop_f1.txt"
    path.write_text(line)
    np.testing.assert_allclose(read_pose_file(path), pose, atol=1e-4)
    # whitespace-separated files read the same
    path.write_text(line.replace(",", " "))
    np.testing.assert_allclose(read_pose_file(path), pose, atol=1e-4)
    with pytest.raises(DataFormatError, match="cannot read pose file"):
        read_pose_file(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"\(17, 3\)"):
        format_pose_line(np.zeros((16, 3)))


def test_sequence_round_trip_and_validation(tmp_path: Path) -> None:
    sils = np.zeros((3, 64, 64), np.uint8)
    joints = np.zeros((3, 17, 3), np.float32)
    folder = tmp_path / "0000" / "camid0_videoid1" / "seq0"
    assert not sequence_complete(folder)
    write_sequence(folder, sils, joints)
    assert sequence_complete(folder)
    got_s, got_j = load_sequence(folder)
    np.testing.assert_array_equal(got_s, sils)
    np.testing.assert_array_equal(got_j, joints)
    assert list_sequence_folders(tmp_path) == [("0000", "camid0_videoid1", "seq0")]

    for s, j, message in (
        (sils[:2], joints, "3 joint frames"),
        (sils.astype(np.float32), joints, "uint8"),
        (sils, joints.astype(np.float64), "float32"),
        (sils[:, :, :44], joints, r"\(T, 64, 64\)"),
        (sils, np.full((3, 17, 3), np.nan, np.float32), "NaN"),
        (sils[:0], joints[:0], "empty"),
    ):
        with pytest.raises(ValueError, match=message):
            check_sequence_arrays(s, j, "here")
    atomic_pickle(folder / JOINT_PKL_NAME, joints[:2])
    with pytest.raises(ValueError, match="3 silhouette frames but 2 joint frames"):
        load_sequence(folder)
    (folder / SIL_PKL_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="00-sils.pkl: missing"):
        load_sequence(folder)


def test_malicious_sequence_pickles_are_refused_before_running(tmp_path: Path, malicious_pickles) -> None:
    marker, pickles = malicious_pickles
    folder = tmp_path / "root" / "0001" / "t" / "v"
    write_sequence(folder, np.zeros((2, 64, 64), np.uint8), np.zeros((2, 17, 3), np.float32))
    for name, data in pickles.items():
        (folder / JOINT_PKL_NAME).write_bytes(data)
        with pytest.raises(DataFormatError, match=f"{JOINT_PKL_NAME}: refused to load global"):
            load_sequence(folder)
        assert not marker.exists(), name
