"""SynthGait: layout and formats, determinism, partition, joints in the silhouette frame, misaligned split."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from _gait_data_helpers import TINY
from PIL import Image

from kprpe_gait.cli import main
from kprpe_gait.data import walker as W
from kprpe_gait.data.formats import PARTITION_KEYS, SIL_PKL_NAME
from kprpe_gait.data.io import frame_number, list_sequence_folders, load_sequence, read_pose_file
from kprpe_gait.data.pretreat import SETTINGS_NAME
from kprpe_gait.data.synth import PRESETS, SynthConfig, generate, plan_sequences

MICRO = SynthConfig.preset("tiny", num_ids=4, num_train_ids=2, seqs_per_id=2, min_frames=20, max_frames=22, seed=3)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_formats(tiny_synth: Path) -> None:
    for name in ("partition.json", "preview.png", "synthgait.json"):
        assert (tiny_synth / name).is_file()
    raw_sils = sorted((tiny_synth / "raw" / "2D_Silhouettes").glob("*/*/*/*.png"))
    raw_poses = sorted((tiny_synth / "raw" / "2D_Poses").glob("*/*/*/*.txt"))
    assert raw_sils and raw_poses
    for path in raw_sils[:50] + raw_poses[:50]:
        ident, cam_video, seq = path.parts[-4:-1]
        assert (
            re.fullmatch(r"\d{4}", ident)
            and re.fullmatch(r"camid\d+_videoid[1-3]", cam_video)
            and re.fullmatch(r"seq\d+", seq)
        )
        assert re.fullmatch(r"human_crop_f\d{5}\.(png|txt)", path.name)
    img = np.asarray(Image.open(raw_sils[0]))
    assert img.dtype == np.uint8 and img.ndim == 2 and set(np.unique(img)) <= {0, 255}
    assert read_pose_file(raw_poses[0]).shape == (17, 3)
    # the pickles hold every sequence, in the contract's shapes
    keys = list_sequence_folders(tiny_synth / "pkl")
    assert len(keys) == TINY.num_ids * TINY.seqs_per_id
    sils, joints = load_sequence((tiny_synth / "pkl").joinpath(*keys[0]))
    assert sils.shape[1:] == (64, 64) and joints.shape[1:] == (17, 3)
    assert ((joints[..., 2] >= 0) & (joints[..., 2] <= 1)).all()
    # the root of pkl/ holds identity folders and the settings record (OpenGait reads only the identity
    # folders its partition names, so it is a valid OpenGait dataset_root)
    entries = [p for p in (tiny_synth / "pkl").iterdir() if p.name != SETTINGS_NAME]
    assert entries and all(p.is_dir() and re.fullmatch(r"\d{4}", p.name) for p in entries)
    assert (tiny_synth / "pkl" / SETTINGS_NAME).is_file()


def test_pairing_matters_in_raw(tiny_synth: Path) -> None:
    """Some frames lack a silhouette or a pose, so the modalities' frame lists differ."""
    summary = json.loads((tiny_synth / "synthgait.json").read_text())
    differing = 0
    for key in list_sequence_folders(tiny_synth / "raw" / "2D_Silhouettes"):
        sil = {frame_number(p) for p in (tiny_synth / "raw" / "2D_Silhouettes").joinpath(*key).glob("*.png")}
        pose = {frame_number(p) for p in (tiny_synth / "raw" / "2D_Poses").joinpath(*key).glob("*.txt")}
        differing += sil != pose
        assert TINY.min_frames - 5 <= len(sil | pose) <= TINY.max_frames
    assert differing > 0
    raw, pre = summary["raw"], summary["pretreat"]
    dropped = pre["frames_dropped"]
    assert dropped["no_pose"] == raw["pose_missing"] - raw["both_missing"]
    assert dropped["no_silhouette"] == raw["silhouette_missing"] - raw["both_missing"]
    assert dropped.get("too_few_pixels", 0) == raw["silhouette_broken"] - _broken_without_pose(tiny_synth)
    assert pre["frames_kept"] + sum(dropped.values()) + raw["both_missing"] == raw["frames"]


def _broken_without_pose(root: Path) -> int:
    """Broken (nearly empty) silhouettes whose pose file is missing: dropped as no_pose, not as too_few_pixels."""
    count = 0
    for png in (root / "raw" / "2D_Silhouettes").glob("*/*/*/*.png"):
        pose = root / "raw" / "2D_Poses" / png.relative_to(root / "raw" / "2D_Silhouettes").with_suffix(".txt")
        count += not pose.exists() and np.asarray(Image.open(png)).sum() <= 10000
    return count


def test_partition_is_valid(tiny_synth: Path) -> None:
    partition = json.loads((tiny_synth / "partition.json").read_text())
    assert list(partition) == list(PARTITION_KEYS)
    train, test, probes = (set(partition[k]) for k in PARTITION_KEYS)
    assert len(train) == TINY.num_train_ids and len(test) == TINY.num_ids - TINY.num_train_ids
    assert not train & test and train | test == {f"{i:04d}" for i in range(TINY.num_ids)}
    probe_ids = [p.split("-")[0] for p in partition["PROBE_SET"]]
    assert sorted(probe_ids) == sorted(test)  # one probe per test identity
    for probe in probes:
        ident, cam_video, seq = probe.split("-")
        assert ((tiny_synth / "pkl") / ident / cam_video / seq / SIL_PKL_NAME).is_file()


def test_joints_lie_on_the_silhouette(tiny_synth: Path) -> None:
    """Confident joints of the pickles fall on (or right next to) foreground pixels of their frame."""
    hits, total = 0, 0
    for key in list_sequence_folders(tiny_synth / "pkl"):
        sils, joints = load_sequence((tiny_synth / "pkl").joinpath(*key))
        t, j = np.nonzero(joints[..., 2] > 0.6)
        cols = np.clip(joints[t, j, 0].astype(int), 0, 63)
        rows = np.clip(joints[t, j, 1].astype(int), 0, 63)
        fg = np.zeros_like(t, dtype=bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                fg |= sils[t, np.clip(rows + dr, 0, 63), np.clip(cols + dc, 0, 63)] > 0
        hits, total = hits + fg.sum(), total + fg.size
    assert hits / total > 0.97


def test_misaligned_split_moves_joints_with_silhouettes(tiny_synth: Path) -> None:
    partition = json.loads((tiny_synth / "partition.json").read_text())
    keys = list_sequence_folders(tiny_synth / "pkl-misaligned")
    assert {k[0] for k in keys} == set(partition["TEST_SET"])
    moved = []
    for key in keys:
        sils, joints = load_sequence((tiny_synth / "pkl").joinpath(*key))
        msils, mjoints = load_sequence((tiny_synth / "pkl-misaligned").joinpath(*key))
        assert msils.shape == sils.shape and mjoints.shape == joints.shape
        np.testing.assert_array_equal(mjoints[..., 2], joints[..., 2])
        good = joints[..., 2] > 0
        moved.append(np.linalg.norm(mjoints[..., :2] - joints[..., :2], axis=-1)[good].mean())
        # joints keep landing on the (warped) body: mean warped-silhouette value under the joints
        t, j = np.nonzero(joints[..., 2] > 0.6)
        inside = (0 <= mjoints[t, j, 0]) & (mjoints[t, j, 0] < 64) & (0 <= mjoints[t, j, 1]) & (mjoints[t, j, 1] < 64)
        r, c = mjoints[t, j, 1][inside].astype(int), mjoints[t, j, 0][inside].astype(int)
        assert (msils[t[inside], r, c] > 0).mean() > 0.85
    assert np.mean(moved) > 1.0  # misaligned means moved


def test_deterministic_and_independent_of_workers(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", MICRO, workers=1, progress=False)
    b = generate(tmp_path / "b", MICRO, workers=2, progress=False)
    assert a == b
    files_a, files_b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert files_a.keys() == files_b.keys() and len(files_a) > 100
    assert all(files_a[k] == files_b[k] for k in files_a)
    other = generate(tmp_path / "c", SynthConfig.preset("tiny", **{**MICRO.to_dict(), "seed": 4}), progress=False)
    files_c = all_files(tmp_path / "c")
    assert other["config"]["seed"] == 4
    assert files_c.get("partition.json") != files_a["partition.json"] or files_c.keys() != files_a.keys()


def test_existing_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "d"
    first = generate(out, MICRO, progress=False)
    stamp = (out / "partition.json").stat().st_mtime_ns
    assert generate(out, MICRO, progress=False) == first  # complete with the same settings: nothing redone
    assert (out / "partition.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other settings"):
        generate(out, SynthConfig.preset("tiny", **{**MICRO.to_dict(), "seed": 9}), progress=False)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "leftover").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(tmp_path / "e", MICRO, progress=False)


def test_identity_not_tied_to_view() -> None:
    """Views come from the sequence's camera and random direction, never from the identity."""
    cfg = SynthConfig.preset("small")
    specs = plan_sequences(cfg)
    cams_per_id = {}
    for s in specs:
        cams_per_id.setdefault(s.identity, set()).add(s.cam)
    assert np.mean([len(c) for c in cams_per_id.values()]) > 4  # 5 sequences mostly on 5 cameras
    # the same camera serves many identities
    ids_per_cam = {}
    for s in specs:
        ids_per_cam.setdefault(s.cam, set()).add(s.identity)
    assert np.mean([len(i) for i in ids_per_cam.values()]) > 5


def test_walker_basics() -> None:
    rng = np.random.default_rng(0)
    body, gait = W.sample_body(rng), W.sample_gait(rng)
    standing = W.Gait(
        **{**gait.__dict__, "hip_amp": 0.0, "knee_swing": 0.0, "knee_stance": 0.0, "hip_offset": 0.0, "toe_off": 0.0}
    )
    pose = W.pose_3d(body, standing, 0.0, 0.0).points
    top = pose[W.HEAD, 2] + 1.15 * body.head_r
    assert 0.93 < top <= 1.02  # stature ~1 when (nearly) standing
    assert pose[[W.L_HEEL, W.R_HEEL, W.L_TOE, W.R_TOE], 2].min() == pytest.approx(0.0)
    # walking: the left ankle moves forward and back over a cycle
    xs = [W.pose_3d(body, gait, t / 25, 0.0).points[W.L_ANKLE, 0] for t in range(30)]
    assert max(xs) - min(xs) > 0.2
    side = W.Camera(0.0, 0.0)
    assert side.far_side() == 1 and side.far_side_weight() == pytest.approx(1.0)
    front = W.Camera(-np.pi / 2, 0.0)
    assert front.far_side_weight() == pytest.approx(0.0, abs=1e-9)
    assert front.apparent_half_width(0.2, 0.1) == pytest.approx(0.2)
    assert side.apparent_half_width(0.2, 0.1) == pytest.approx(0.1)


def test_presets_and_config_validation() -> None:
    small = SynthConfig.preset("small")
    assert 60 <= small.num_ids <= 100 and 4 <= small.seqs_per_id <= 6
    assert (small.min_frames, small.max_frames) == (20, 60)
    assert set(PRESETS) == {"tiny", "small", "medium", "large"}
    assert SynthConfig.from_dict(small.to_dict()) == small
    with pytest.raises(ValueError, match="unknown keys"):
        SynthConfig.from_dict({"num_idz": 3})
    with pytest.raises(ValueError, match="unknown SynthGait size 'huge'"):
        SynthConfig.preset("huge")
    with pytest.raises(ValueError, match="num_train_ids"):
        SynthConfig(num_ids=5, num_train_ids=5)
    with pytest.raises(ValueError, match="min_frames <= max_frames"):
        SynthConfig(min_frames=30, max_frames=20)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    argv = ["synth", "--out", str(out), "--size", "tiny", "--ids", "4", "--seqs-per-id", "2", "--max-frames", "21"]
    assert main(argv + ["--seed", "3", "--workers", "1", "--quiet", "--mis-rotate", "3"]) == 0
    text = capsys.readouterr().out
    assert "8 sequences" in text and "preview.png" in text
    stored = json.loads((out / "synthgait.json").read_text())
    assert stored["config"]["num_ids"] == 4 and stored["config"]["num_train_ids"] == 2
    assert stored["config"]["misalign"]["rotate"] == 3.0
    assert (
        main(["synth", "--out", str(tmp_path / "x"), "--size", "tiny", "--ids", "4", "--train-ids", "4", "--quiet"])
        == 1
    )
    assert "num_train_ids" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "y"), "--size", "tiny", "--mis-crop-max", "1.5", "--quiet"]) == 1
    assert "crop_max < 1" in capsys.readouterr().err


def test_short_sequences_still_get_a_preview(tmp_path: Path) -> None:
    cfg = SynthConfig.preset("tiny", num_ids=2, num_train_ids=1, seqs_per_id=1, min_frames=2, max_frames=3, seed=5)
    generate(tmp_path / "short", cfg, progress=False)
    sheet = np.asarray(Image.open(tmp_path / "short" / "preview.png"))
    assert sheet.ndim == 3 and sheet.shape[2] == 3 and sheet.shape[0] >= 128
