"""Joints into existing OpenGait silhouette pickles: the estimated crop against SynthGait's truth."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from _gait_data_helpers import opengait_pickles, pose_at

from kprpe_gait.cli import main
from kprpe_gait.data.io import DataFormatError, list_sequence_folders, load_sequence
from kprpe_gait.data.pretreat import pretreat_frames, pretreat_gait3d
from kprpe_gait.data.recover import convert_opengait_pickles, frame_slots, joint_errors, load_opengait_sils
from kprpe_gait.data.synth import SynthConfig, generate


def opengait_pickle_set(synth: Path, out: Path, limit: int | None = None) -> tuple[Path, Path]:
    """What a user has without raw silhouettes: OpenGait's ``<seq>.pkl`` (string-ordered frames) and
    Gait3D's pose files of those frames. Built from SynthGait's raw layout."""
    sils_root, poses_root = out / "sils-pkl", out / "2D_Poses"
    raw = synth / "raw"
    for key in list_sequence_folders(synth / "pkl")[:limit]:
        seq = pretreat_frames(
            sorted(raw.joinpath("2D_Silhouettes", *key).glob("*.png")),
            sorted(raw.joinpath("2D_Poses", *key).glob("*.txt")),
        )
        # the longest run of consecutive frame numbers: a pairing convert_opengait_pickles can be sure of
        runs = np.split(np.arange(len(seq.frames)), np.flatnonzero(np.diff(seq.frames) != 1) + 1)
        keep = max(runs, key=len)
        names = [f"human_crop_f{seq.frames[k]:05d}" for k in keep]
        order = np.argsort(names, kind="stable")  # OpenGait pickles frames in string order of names
        folder = sils_root.joinpath(*key)
        folder.mkdir(parents=True)
        with open(folder / f"{key[2]}.pkl", "wb") as f:
            pickle.dump(seq.sils[keep][order], f)
        poses = poses_root.joinpath(*key)
        poses.mkdir(parents=True)
        for name in names:
            shutil.copy(raw.joinpath("2D_Poses", *key, f"{name}.txt"), poses)
    return sils_root, poses_root


def test_estimated_crops_are_close_to_the_truth(tiny_synth: Path, tmp_path: Path) -> None:
    sils_root, poses_root = opengait_pickle_set(tiny_synth, tmp_path)
    summary = convert_opengait_pickles(sils_root, poses_root, tmp_path / "out", progress=False)
    keys = list_sequence_folders(tiny_synth / "pkl")
    assert summary.written == len(keys) and not summary.empty
    errors = []
    for key in keys:
        sils, joints = load_sequence((tmp_path / "out").joinpath(*key))
        true_sils, true_joints = load_sequence((tiny_synth / "pkl").joinpath(*key))
        start = next(t for t in range(len(true_sils)) if np.array_equal(true_sils[t], sils[0]))
        true_sils, true_joints = true_sils[start : start + len(sils)], true_joints[start : start + len(sils)]
        np.testing.assert_array_equal(sils, true_sils)
        np.testing.assert_array_equal(joints[..., 2], true_joints[..., 2])
        errors.append(joint_errors(joints, true_joints, min_conf=0.3))
    errors = np.concatenate(errors)
    # measured: mean 0.9 px, 90th percentile 1.6 px on this set (64x64 frame)
    assert errors.mean() < 1.2 and np.percentile(errors, 90) < 2.2


def test_string_order_pairing_and_count_mismatch(write_raw, tmp_path: Path) -> None:
    key = ("0001", "camid3_videoid1", "seq0")
    for i, n in enumerate((9999, 10000, 10001)):
        sil = np.zeros((120, 60), np.uint8)
        sil[10 : 60 + 15 * i, 20:40] = 255
        joints = {
            1: (30.0, 13.0),
            2: (30.0, 13.0),
            5: (25, 20),
            6: (35, 20),
            11: (26, 40),
            12: (34, 40),
            15: (30.0, 57 + 15 * i),
        }
        write_raw(key, n, sil, pose_at(joints, conf=0.5 + 0.1 * i))  # the confidence tells the frames apart
    pretreat_gait3d(write_raw.root / "2D_Silhouettes", write_raw.root / "2D_Poses", tmp_path / "truth", progress=False)
    true_sils, true_joints = load_sequence((tmp_path / "truth").joinpath(*key))
    folder = tmp_path / "sils" / Path(*key)
    folder.mkdir(parents=True)
    with open(folder / "seq0.pkl", "wb") as f:
        pickle.dump(true_sils[[1, 2, 0]], f)  # f10000, f10001, f9999: OpenGait's string order
    summary = convert_opengait_pickles(tmp_path / "sils", write_raw.root / "2D_Poses", tmp_path / "out", progress=False)
    assert summary.written == 1
    sils, joints = load_sequence((tmp_path / "out").joinpath(*key))
    np.testing.assert_array_equal(sils, true_sils)  # back in numeric order ...
    np.testing.assert_array_equal(joints[..., 2], true_joints[..., 2])  # ... paired with the right poses

    write_raw(key, 10002, None, pose_at({0: (1, 1)}))  # one more pose than pickled frames
    summary = convert_opengait_pickles(
        tmp_path / "sils", write_raw.root / "2D_Poses", tmp_path / "out2", progress=False
    )
    assert summary.written == 0 and summary.empty == [key] and summary.dropped == {"count_mismatch": 3}


def test_bad_pickle_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "sils" / "0001" / "camid0_videoid1" / "seq0"
    folder.mkdir(parents=True)
    (tmp_path / "poses").mkdir()
    with open(folder / "seq0.pkl", "wb") as f:
        pickle.dump(np.zeros((3, 64, 44), np.uint8), f)
    with pytest.raises(DataFormatError, match=r"expected \(T, 64, 64\)"):
        convert_opengait_pickles(tmp_path / "sils", tmp_path / "poses", tmp_path / "out", progress=False)
    shutil.copy(folder / "seq0.pkl", folder / "other.pkl")
    with pytest.raises(DataFormatError, match="found 2"):
        convert_opengait_pickles(tmp_path / "sils", tmp_path / "poses", tmp_path / "out", progress=False)
    argv = ["pretreat-gait3d", "--from-pickles", str(tmp_path / "empty"), "--poses", str(tmp_path / "poses")]
    assert main(argv + ["--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert "silhouette pickle root is not a folder" in capsys.readouterr().err


def test_cli_from_pickles(tiny_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sils_root, poses_root = opengait_pickle_set(tiny_synth, tmp_path, limit=3)
    argv = [
        "pretreat-gait3d",
        "--from-pickles",
        str(sils_root),
        "--poses",
        str(poses_root),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv + ["--workers", "2", "--quiet"]) == 0
    assert "3 written" in capsys.readouterr().out


def _ladder(n: int) -> np.ndarray:
    """A raw silhouette whose height grows with ``n`` (frames stay distinguishable after the crop)."""
    sil = np.zeros((120, 60), np.uint8)
    sil[10 : 60 + 3 * n, 20:40] = 255
    return sil


@pytest.mark.parametrize("padded", [False, True])
def test_compensating_drops_are_not_paired(write_raw, tmp_path: Path, padded: bool) -> None:
    """Pose f4 missing (its silhouette pickled) and silhouette f7 missing (its pose present): as many pickled
    frames as pose files, yet string-order pairing would give frames 4-6 their neighbours' joints. The
    range f1-f10 has ten frames and the pickle nine, so the sequence is refused (``pose_gap`` when the
    unpadded names f1..f10 do not even fix where f4 sorts)."""
    key = ("0001", "camid3_videoid1", "seq0")
    for n in range(1, 11):
        pose = None if n == 4 else pose_at({0: (30.0, 13.0)}, conf=0.05 * n)
        write_raw(key, n, None if n == 7 else _ladder(n), pose, name=f"human_crop_f{n:05d}" if padded else None)
    folder = tmp_path / "sils"
    opengait_pickles(write_raw.root / "2D_Silhouettes", folder)
    summary = convert_opengait_pickles(folder, write_raw.root / "2D_Poses", tmp_path / "out", progress=False)
    assert summary.written == 0 and summary.dropped == {"count_mismatch" if padded else "pose_gap": 9}
    assert not (tmp_path / "out" / Path(*key)).exists()


#: head, shoulders, hips and an ankle: the joints the crop estimate needs
BOX_JOINTS = {1: (30.0, 13.0), 2: (30.0, 13.0), 5: (25, 20), 6: (35, 20), 11: (26, 40), 12: (34, 40), 15: (30.0, 57)}


def test_missing_pose_inside_a_complete_range(write_raw, tmp_path: Path) -> None:
    """Every silhouette of f00098-f00102 pickled, the pose of f00100 missing: the pickle has one frame per
    number of the range, so each row is known; f00100 is left out (``no_pose``), the others written."""
    key = ("0001", "camid3_videoid1", "seq0")
    for n in range(98, 103):
        pose = None if n == 100 else pose_at(BOX_JOINTS, conf=0.005 * n)
        write_raw(key, n, _ladder(n - 90), pose, name=f"human_crop_f{n:05d}")
    opengait_pickles(write_raw.root / "2D_Silhouettes", tmp_path / "sils")
    pickled = load_opengait_sils(tmp_path / "sils" / Path(*key))
    summary = convert_opengait_pickles(tmp_path / "sils", write_raw.root / "2D_Poses", tmp_path / "out", progress=False)
    assert summary.written == 1 and summary.dropped == {"no_pose": 1}
    sils, joints = load_sequence((tmp_path / "out").joinpath(*key))
    np.testing.assert_array_equal(sils, pickled[[0, 1, 3, 4]])
    np.testing.assert_allclose(joints[:, 1, 2], 0.005 * np.array([98, 99, 101, 102]), atol=1e-6)


def test_frame_slots_orders_frames_without_pose_files() -> None:
    def names(*stems: str) -> list[str]:
        return [f"/p/{stem}.txt" for stem in stems]

    # no gap: the files' own string order, whatever the names
    assert frame_slots(names("f10", "f11", "f8", "f9")) == [10, 11, 8, 9]
    # a gap, same prefix and digit count: every name in between sorts numerically
    assert frame_slots(names("f09998", "f10001")) == [9998, 9999, 10000, 10001]
    assert frame_slots(names("f100", "f103")) == [100, 101, 102, 103]
    # a gap and names of two widths (f9999 < f10000 numerically, not as strings) or prefixes: not fixed
    assert frame_slots(names("f10000", "f9998")) is None
    assert frame_slots(names("a_f100", "b_f102")) is None
    assert frame_slots([]) == []


@pytest.fixture(scope="module")
def dropping_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SynthGait with frame drops on both sides: missing and broken silhouettes, missing pose files."""
    out = tmp_path_factory.mktemp("dropping") / "synth"
    cfg = SynthConfig.preset("tiny", num_ids=10, num_train_ids=5, seed=11, sil_drop_prob=0.02, pose_drop_prob=0.02)
    generate(out, cfg, progress=False)
    return out / "raw"


@pytest.mark.parametrize("pickler", ["cv2", pytest.param("opengait", marks=pytest.mark.opengait)])
def test_real_opengait_output_is_never_mispaired(
    pickler: str, dropping_synth: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """OpenGait's own pickles (with ``OPENGAIT_ROOT``; else the same frames from the tested-identical crop)
    of raw frames with drops on both sides: every written row holds the joints of its silhouette's frame."""
    imgs2pickle = request.getfixturevalue("opengait_pretreatment").imgs2pickle if pickler == "opengait" else None
    opengait_pickles(dropping_synth / "2D_Silhouettes", tmp_path / "og", imgs2pickle)
    summary = convert_opengait_pickles(tmp_path / "og", dropping_synth / "2D_Poses", tmp_path / "out", progress=False)
    rows = mispaired = 0
    for key in list_sequence_folders(tmp_path / "out"):
        sils, joints = load_sequence((tmp_path / "out").joinpath(*key))
        truth = pretreat_frames(
            sorted(dropping_synth.joinpath("2D_Silhouettes", *key).glob("*.png")),
            sorted(dropping_synth.joinpath("2D_Poses", *key).glob("*.txt")),
        )
        by_sil = {sil.tobytes(): conf for sil, conf in zip(truth.sils, truth.joints[..., 2])}
        for sil, row in zip(sils, joints):
            rows += 1
            # the confidences are copied verbatim from the pose file: they tell the frames apart
            mispaired += not np.array_equal(by_sil.get(sil.tobytes()), row[:, 2])
    assert mispaired == 0
    assert summary.written >= 3 and rows > 50
    assert summary.written + len(summary.empty) == summary.sequences == 30
    assert set(summary.dropped) <= {"count_mismatch", "pose_gap", "no_pose"} and summary.dropped


def test_malicious_opengait_pickle_is_refused_before_running(tmp_path: Path, malicious_pickles) -> None:
    marker, pickles = malicious_pickles
    folder = tmp_path / "sils" / "0001" / "camid0_videoid1" / "seq0"
    folder.mkdir(parents=True)
    for name, data in pickles.items():
        (folder / "seq0.pkl").write_bytes(data)
        with pytest.raises(DataFormatError, match=r"seq0\.pkl: refused to load global"):
            load_opengait_sils(folder)
        assert not marker.exists(), name
