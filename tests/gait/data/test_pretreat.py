"""pretreat-gait3d end to end: geometry, pairing, ordering, empty sequences, resumability, errors."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from _gait_data_helpers import dot_edge, dot_frame, dot_joint, pose_at

from kprpe_gait.cli import main
from kprpe_gait.data import io as data_io
from kprpe_gait.data.formats import JOINT_PKL_NAME, SIL_PKL_NAME
from kprpe_gait.data.io import DataFormatError, load_sequence
from kprpe_gait.data.pretreat import (
    SETTINGS_NAME,
    OutputSettingsError,
    count_joints_outside,
    pretreat_gait3d,
    silhouette_box,
)

KEY = ("0001", "camid3_videoid1", "seq0")


def run(root: Path, out: Path, **kw):
    return pretreat_gait3d(root / "2D_Silhouettes", root / "2D_Poses", out, progress=False, **kw)


def body_frame(index: int) -> np.ndarray:
    """A frame whose body height encodes ``index`` (so frames can be recognised after the crop)."""
    img = np.zeros((120, 60), np.uint8)
    img[10 : 40 + 15 * index, 20:40] = 255
    return img


def test_joint_on_dot_after_pretreatment(write_raw, tmp_path: Path) -> None:
    """A joint placed on a dot of the raw frame is, after the pickles are written, on that dot."""
    cases = [  # (height, width, body, dot, radius)
        (240, 150, (12, 230, 10, 40), (120.3, 97.6), 9.0),
        (200, 400, (20, 190, 150, 230), (262.4, 60.8), 8.0),
        (48, 90, (4, 44, 30, 48), (52.6, 30.3), 3.0),
    ]
    for i, (h, w, body, dot, r) in enumerate(cases):
        img = dot_frame(h, w, body, dot, r, edge=dot_edge(body[1] - body[0]))
        joint = dot_joint(img, body)
        write_raw(KEY, 100 + i, img, pose_at({9: joint}))
    summary = run(write_raw.root, tmp_path / "out")
    assert summary.written == 1 and summary.frames_kept == 3
    sils, joints = load_sequence(tmp_path / "out" / Path(*KEY))
    for t in range(3):
        x, y, conf = joints[t, 9]
        assert conf == pytest.approx(0.9)
        yy, xx = np.mgrid[0:64, 0:64] + 0.5
        near = (np.abs(xx - x) < 6) & (np.abs(yy - y) < 6) & (sils[t] > 0)
        # keep only the dot's blob: drop the columns of the body (the body is at the silhouette's median)
        blob = near & (np.abs(xx - 32) > 10)
        w = sils[t] * blob
        centroid = np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])
        np.testing.assert_allclose(centroid, [x, y], atol=0.1)
        # missing joints are zeroed, not replayed
        assert (joints[t, :9, :2] == 0).all() and (joints[t, :9, 2] == 0).all()


def test_numeric_frame_order_and_pairing(write_raw, tmp_path: Path) -> None:
    frames = [9998, 9999, 10000, 10001, 10002, 10003]
    for i, n in enumerate(frames):
        pose = pose_at({0: (30.0, 15.0)}, conf=0.1 + 0.1 * i)  # confidence encodes the frame
        sil = body_frame(i)
        write_raw(KEY, n, None if n == 10001 else sil, None if n == 9999 else pose)
    write_raw(KEY, 20000, None, pose_at({0: (1.0, 1.0)}))  # a pose without silhouette
    summary = run(write_raw.root, tmp_path / "out")
    _, joints = load_sequence(tmp_path / "out" / Path(*KEY))
    kept = [0, 2, 4, 5]  # 9998, 10000, 10002, 10003: numeric order, f10000 after f9998
    np.testing.assert_allclose(joints[:, 0, 2], [0.1 + 0.1 * i for i in kept], rtol=1e-6)
    assert summary.dropped == {"no_pose": 1, "no_silhouette": 2}
    assert summary.frames_kept == 4


def test_silhouette_frames_follow_the_pose_order(write_raw, tmp_path: Path) -> None:
    for i, n in enumerate([10, 9, 100, 11]):
        write_raw(KEY, n, body_frame(i), pose_at({0: (30.0, 15.0)}, conf=0.5))
    run(write_raw.root, tmp_path / "out")
    sils, _ = load_sequence(tmp_path / "out" / Path(*KEY))
    # frame numbers 9, 10, 11, 100 -> bodies 1, 0, 3, 2; the body height sets the crop's aspect, hence its width
    widths = [s.sum() / 255 / 64 for s in sils]  # mass / height = the body's width
    expected = [20 * 64 / (30 + 15 * i) for i in (1, 0, 3, 2)]  # 28.4, 42.7, 17.1, 21.3
    np.testing.assert_allclose(widths, expected, atol=0.5)


def test_empty_sequences_are_reported_not_written(write_raw, tmp_path: Path) -> None:
    tiny = np.zeros((50, 30), np.uint8)
    tiny[10:20, 10] = 255  # 10 pixels: OpenGait's filter drops it
    write_raw(KEY, 1, tiny, pose_at({0: (10.0, 10.0)}))
    write_raw(("0002", "camid1_videoid1", "seq0"), 1, body_frame(0), None)  # silhouettes without poses
    write_raw(("0003", "camid1_videoid1", "seq0"), 1, body_frame(0), pose_at({0: (30.0, 15.0)}))
    summary = run(write_raw.root, tmp_path / "out")
    assert summary.written == 1
    assert sorted(summary.empty) == [KEY, ("0002", "camid1_videoid1", "seq0")]
    assert summary.dropped == {"too_few_pixels": 1, "no_pose": 1}
    assert not (tmp_path / "out" / Path(*KEY)).exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0003", SETTINGS_NAME]
    assert "empty sequences: 0001/camid3_videoid1/seq0, 0002/camid1_videoid1/seq0" in summary.format()


def _three_sequences(write_raw) -> list[tuple[str, str, str]]:
    keys = [(f"000{i}", "camid0_videoid2", "seq0") for i in range(3)]
    for i, key in enumerate(keys):
        for n in range(4):
            write_raw(key, n, body_frame(n + i), pose_at({5: (25.0, 30.0)}))
    return keys


def test_resumable_and_half_written_sequences_are_redone(write_raw, tmp_path: Path) -> None:
    keys = _three_sequences(write_raw)
    out = tmp_path / "out"
    first = run(write_raw.root, out)
    assert (first.written, first.skipped) == (3, 0)
    before = {k: (out.joinpath(*k) / SIL_PKL_NAME).read_bytes() for k in keys}

    second = run(write_raw.root, out)
    assert (second.written, second.skipped, second.frames_kept) == (0, 3, 0)

    # an interrupted run: silhouettes written, joints not, a stale temporary file left behind
    half = out.joinpath(*keys[1])
    (half / JOINT_PKL_NAME).unlink()
    (half / SIL_PKL_NAME).write_bytes(b"truncated")
    (half / f".{JOINT_PKL_NAME}.abc{data_io.TMP_SUFFIX}").write_bytes(b"partial")
    third = run(write_raw.root, out)
    assert (third.written, third.skipped) == (1, 2)
    assert (half / SIL_PKL_NAME).read_bytes() == before[keys[1]]
    assert sorted(p.name for p in half.iterdir()) == [SIL_PKL_NAME, JOINT_PKL_NAME]

    forced = run(write_raw.root, out, overwrite=True)
    assert forced.written == 3


def test_parallel_run_writes_the_same_bytes(write_raw, tmp_path: Path) -> None:
    keys = _three_sequences(write_raw)
    run(write_raw.root, tmp_path / "a", workers=1)
    run(write_raw.root, tmp_path / "b", workers=2)
    for key in keys:
        for name in (SIL_PKL_NAME, JOINT_PKL_NAME):
            assert (tmp_path / "a").joinpath(*key, name).read_bytes() == (tmp_path / "b").joinpath(
                *key, name
            ).read_bytes()


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "seq" / SIL_PKL_NAME

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(data_io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        data_io.atomic_pickle(target, np.zeros((2, 64, 64), np.uint8))
    assert list(target.parent.iterdir()) == []
    monkeypatch.undo()
    data_io.atomic_pickle(target, np.ones(3))
    with open(target, "rb") as handle:
        np.testing.assert_array_equal(pickle.load(handle), np.ones(3))
    assert [p.name for p in target.parent.iterdir()] == [SIL_PKL_NAME]


def test_output_matches_the_pickle_contract(write_raw, tmp_path: Path) -> None:
    _three_sequences(write_raw)
    run(write_raw.root, tmp_path / "out")
    folder = (tmp_path / "out").joinpath("0000", "camid0_videoid2", "seq0")
    assert sorted(os.listdir(folder)) == [SIL_PKL_NAME, JOINT_PKL_NAME]  # sorted names = modality order
    with open(folder / SIL_PKL_NAME, "rb") as f:
        sils = pickle.load(f)
    with open(folder / JOINT_PKL_NAME, "rb") as f:
        joints = pickle.load(f)
    assert sils.shape == (4, 64, 64) and sils.dtype == np.uint8
    assert joints.shape == (4, 17, 3) and joints.dtype == np.float32


def test_bad_inputs_fail_with_clear_messages(write_raw, tmp_path: Path) -> None:
    write_raw(KEY, 1, body_frame(0), pose_at({0: (30.0, 15.0)}))
    root = write_raw.root
    with pytest.raises(DataFormatError, match="silhouette root is not a folder"):
        pretreat_gait3d(tmp_path / "nope", root / "2D_Poses", tmp_path / "o", progress=False)
    with pytest.raises(DataFormatError, match=r"no pose files found at <id>/<cam_video>/<seq>/\*\.txt"):
        pretreat_gait3d(root / "2D_Silhouettes", root, tmp_path / "o", progress=False)  # one level too high

    pose_file = root.joinpath("2D_Poses", *KEY, "human_crop_f1.txt")
    for content, message in (
        ("1,2,3\n", "expected 53 numbers"),
        ("311,438," + ",".join(["0.5"] * 50) + ",abc\n", "non-numeric"),
        ("311,438," + ",".join(["0.5"] * 50) + ",nan\n", "NaN"),
        ("311,438," + ",".join(["0.5"] * 50) + ",-1\n", "negative confidence"),
    ):
        pose_file.write_text(content)
        with pytest.raises(DataFormatError, match=message) as err:
            run(root, tmp_path / "o", strict=True)
        assert "human_crop_f1.txt" in str(err.value)
        skipped = run(root, tmp_path / "o")  # without --strict: the frame is skipped, the reason kept
        assert skipped.dropped == {"malformed_pose": 1} and message.split()[0] in skipped.bad_files[0][2]
    pose_file.write_text(data_io.format_pose_line(pose_at({0: (30.0, 15.0)})))

    png = root.joinpath("2D_Silhouettes", *KEY, "human_crop_f1.png")
    png.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataFormatError, match="unreadable image") as err:
        run(root, tmp_path / "o", strict=True)
    assert "human_crop_f1.png" in str(err.value)

    png.write_bytes(b"")
    root.joinpath("2D_Silhouettes", *KEY, "human_crop_f01.png").write_bytes(b"")
    with pytest.raises(DataFormatError, match="both hold frame 1"):
        run(root, tmp_path / "o")


def test_cli_runs_and_reports(write_raw, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _three_sequences(write_raw)
    out, summary_json = tmp_path / "out", tmp_path / "summary.json"
    argv = ["pretreat-gait3d", "--root", str(write_raw.root), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv + ["--summary-json", str(summary_json)]) == 0
    text = capsys.readouterr().out
    assert "sequences: 3 (3 written, 0 already complete, 0 empty and not written)" in text
    assert '"frames_kept": 12' in summary_json.read_text()
    assert main(argv) == 0
    assert "3 already complete" in capsys.readouterr().out
    # same data through --sils/--poses
    argv2 = [
        "pretreat-gait3d",
        "--sils",
        str(write_raw.root / "2D_Silhouettes"),
        "--poses",
        str(write_raw.root / "2D_Poses"),
    ]
    assert main(argv2 + ["--out", str(tmp_path / "out2"), "--quiet", "--workers", "1"]) == 0
    capsys.readouterr()

    for bad, message in (
        (["--root", str(tmp_path), "--out", str(out)], "not a Gait3D root, missing 2D_Silhouettes, 2D_Poses"),
        (["--sils", str(write_raw.root / "2D_Silhouettes"), "--out", str(out)], "needs --poses"),
        (["--root", str(write_raw.root), "--sils", str(tmp_path), "--out", str(out)], "exactly one of"),
        (["--root", str(write_raw.root), "--out", str(out), "--workers", "0"], "--workers must be >= 1"),
    ):
        assert main(["pretreat-gait3d", *bad]) == 1
        assert message in capsys.readouterr().err


def test_joints_outside_silhouettes_are_flagged(write_raw, tmp_path: Path) -> None:
    sil = np.zeros((100, 50), np.uint8)
    sil[10:90, 15:35] = 255
    inside = pose_at({0: (25.0, 15.0), 15: (20.0, 85.0), 16: (30.0, 85.0)})
    assert count_joints_outside(silhouette_box(sil), inside) == (0, 3)
    elsewhere = inside.copy()
    elsewhere[:, 0] += 200  # poses in another frame (e.g. the full video frame)
    assert count_joints_outside(silhouette_box(sil), elsewhere) == (3, 3)
    write_raw(KEY, 1, sil, inside)
    write_raw(KEY, 2, sil, elsewhere)
    summary = run(write_raw.root, tmp_path / "out")
    assert summary.outside_fraction == 0.5 and summary.to_dict()["joints_outside_silhouette"] == 0.5
    assert "WARNING: many joints fall off their silhouettes" in summary.format()


def test_bad_files_are_skipped_counted_and_logged(write_raw, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One corrupt PNG and one malformed pose line among good frames: both frames are skipped, counted by
    reason and logged with their paths; the other frames are written; ``--strict`` aborts instead."""
    for n in range(6):
        write_raw(KEY, n, body_frame(n), pose_at({0: (30.0, 15.0)}, conf=0.1 + 0.1 * n))
    write_raw(("0002", "camid0_videoid1", "seq0"), 0, body_frame(0), pose_at({0: (30.0, 15.0)}))
    root = write_raw.root
    corrupt = root.joinpath("2D_Silhouettes", *KEY, "human_crop_f2.png")
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated
    malformed = root.joinpath("2D_Poses", *KEY, "human_crop_f4.txt")
    malformed.write_text("311,438,0.5,0.5\n")
    out = tmp_path / "out"
    argv = ["pretreat-gait3d", "--root", str(root), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "unreadable_silhouette: 1" in text and "malformed_pose: 1" in text
    assert "files skipped as unreadable or malformed: 2" in text
    _, joints = load_sequence(out / Path(*KEY))
    np.testing.assert_allclose(joints[:, 0, 2], [0.1, 0.2, 0.4, 0.6], rtol=1e-6)  # frames 0, 1, 3, 5
    log = (out / "pretreat-gait3d-skipped.log").read_text().splitlines()
    assert [line.split("\t")[:2] for line in log] == [
        ["malformed_pose", str(malformed)],
        ["unreadable_silhouette", str(corrupt)],
    ]
    assert "expected 53 numbers" in log[0] and "unreadable image" in log[1]

    assert main(argv + ["--strict", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "human_crop_f" in err and ("unreadable image" in err or "malformed pose file" in err)


def test_rerun_with_other_settings_refuses_or_redoes(write_raw, tmp_path: Path, capsys) -> None:
    keys = _three_sequences(write_raw)
    out = tmp_path / "out"
    run(write_raw.root, out)
    first = load_sequence(out.joinpath(*keys[0]))[1]
    assert json.loads((out / SETTINGS_NAME).read_text())["settings"] == {
        "format_version": 2, "mode": "raw", "size": 64, "pose_offset": 0.5
    }  # fmt: skip
    assert run(write_raw.root, out).skipped == 3  # same settings: resumed
    with pytest.raises(OutputSettingsError, match=r"other settings \(pose_offset 0.5 -> 0.0\).*--overwrite"):
        run(write_raw.root, out, pose_offset=0.0)
    redone = run(write_raw.root, out, pose_offset=0.0, overwrite=True)
    assert redone.written == 3
    again = load_sequence(out.joinpath(*keys[0]))[1]
    heights = 30 + 15 * np.arange(4)  # body_frame(n): rows 10 .. 40 + 15 n, 60 columns
    scale = np.stack([(64 * (60 / heights)).astype(int) / 60, 64 / heights], axis=1)
    np.testing.assert_allclose(first[:, 5, :2] - again[:, 5, :2], 0.5 * scale, atol=1e-4)  # 0.5 raw px, replayed
    assert json.loads((out / SETTINGS_NAME).read_text())["settings"]["pose_offset"] == 0.0

    # a root with sequences but no record (an older version): refused, then redone with --overwrite
    (out / SETTINGS_NAME).unlink()
    argv = ["pretreat-gait3d", "--root", str(write_raw.root), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 1
    assert "holds sequences but no pretreat-gait3d.json" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0 and (out / SETTINGS_NAME).is_file()


def test_temporary_files_never_in_sequence_folders(write_raw, tmp_path: Path, monkeypatch) -> None:
    """OpenGait's loader lists every file of a sequence folder: while a pickle is being written the folder
    holds only finished pickles; staged files an interrupted run left behind are cleaned on the next run."""
    keys = _three_sequences(write_raw)
    out = tmp_path / "out"
    seen = []
    replace = os.replace

    def watching_replace(src, dst):
        if str(dst).endswith(".pkl"):
            seen.append(sorted(os.listdir(Path(dst).parent)))
            assert Path(src).parent == out / data_io.STAGING_DIR_NAME
        replace(src, dst)

    monkeypatch.setattr(data_io.os, "replace", watching_replace)
    run(write_raw.root, out)
    monkeypatch.undo()
    assert seen and all(set(names) <= {SIL_PKL_NAME, JOINT_PKL_NAME} for names in seen)
    assert sorted(p.name for p in out.iterdir()) == sorted({k[0] for k in keys} | {SETTINGS_NAME})

    # an interrupted run: a staged file at the root, a legacy temporary file inside a complete sequence
    staging = out / data_io.STAGING_DIR_NAME
    staging.mkdir()
    (staging / f"123-0-seq0-{SIL_PKL_NAME}{data_io.TMP_SUFFIX}").write_bytes(b"partial")
    legacy = out.joinpath(*keys[0]) / f".{SIL_PKL_NAME}.x1y2{data_io.TMP_SUFFIX}"
    legacy.write_bytes(b"partial")
    assert run(write_raw.root, out).skipped == 3
    assert not staging.exists() and not legacy.exists()
    assert sorted(os.listdir(out.joinpath(*keys[0]))) == [SIL_PKL_NAME, JOINT_PKL_NAME]
