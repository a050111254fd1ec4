"""kprpe-face align: crops and keypoints.csv from a folder, clear errors on bad input."""

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from face.align import ARCFACE_TEMPLATE
from face.cli import main
from face.landmarks import read_landmark_csv


def _face(points: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    rows = np.arange(size[0])[:, None]
    cols = np.arange(size[1])[None, :]
    image = np.zeros(size)
    for x, y in points.tolist():
        image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 2.5**2))
    return Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).convert("RGB")


@pytest.fixture
def faces(tmp_path):
    images = tmp_path / "images"
    (images / "person").mkdir(parents=True)
    a = ARCFACE_TEMPLATE * 1.5 + 15
    b = ARCFACE_TEMPLATE * 0.8 + 4
    _face(a, (200, 190)).save(images / "person" / "a.jpg", quality=100)
    _face(b, (100, 100)).save(images / "b.png")
    table = tmp_path / "landmarks.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image"] + [f"{c}{i}" for i in range(5) for c in "xy"])
        writer.writerow(["person/a.jpg"] + [f"{v:.3f}" for v in a.flatten().tolist()])
        row = ["b.png"] + [f"{v:.3f}" for v in b.flatten().tolist()]
        row[-2:] = ["", ""]  # right mouth corner not detected
        writer.writerow(row)
    return images, table, tmp_path / "out"


def test_align_writes_crops_and_normalised_keypoints(faces, capsys):
    images, table, out = faces
    assert main(["align", "--images", str(images), "--landmarks", str(table), "--out", str(out), "--no-progress"]) == 0
    assert "aligned 2 face(s)" in capsys.readouterr().out
    assert Image.open(out / "person" / "a.png").size == (112, 112)
    assert Image.open(out / "b.png").size == (112, 112)
    with open(out / "keypoints.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image"] + [f"{c}{i}" for i in range(5) for c in "xyc"]
    assert [r[0] for r in rows[1:]] == ["person/a.png", "b.png"]
    expected = ((ARCFACE_TEMPLATE + 0.5) / 112).flatten().tolist()
    got_a = [float(v) for i, v in enumerate(rows[1][1:]) if i % 3 != 2]
    assert got_a == pytest.approx(expected, abs=1e-4)
    assert rows[2][-3:] == ["", "", "0.000000"]  # the missing landmark stays missing
    crop = np.asarray(Image.open(out / "person" / "a.png").convert("L"), dtype=np.float64)
    x, y = ARCFACE_TEMPLATE[0].tolist()  # the left-eye blob sits on the template
    assert crop[round(y), round(x)] > 200


def test_misalignment_moves_faces_and_keypoints_reproducibly(faces):
    images, table, out = faces
    args = [
        "align",
        "--images",
        str(images),
        "--landmarks",
        str(table),
        "--no-progress",
        "--misalign-rotation",
        "15",
        "--misalign-scale",
        "0.1",
        "--misalign-shift",
        "0.1",
        "--seed",
        "7",
    ]
    assert main(args + ["--out", str(out / "1")]) == 0
    assert main(args + ["--out", str(out / "2")]) == 0
    first = (out / "1" / "keypoints.csv").read_text()
    assert first == (out / "2" / "keypoints.csv").read_text()
    values = [float(v) for v in first.splitlines()[1].split(",")[1:] if v]
    aligned = ((ARCFACE_TEMPLATE + 0.5) / 112).flatten().tolist()
    assert max(abs(a - b) for a, b in zip([v for i, v in enumerate(values) if i % 3 != 2], aligned)) > 0.01


def test_read_landmarks_with_confidences(tmp_path):
    table = tmp_path / "l.csv"
    table.write_text(
        "image,"
        + ",".join(f"v{i}" for i in range(15))
        + "\nx.png,"
        + ",".join(["1"] * 10 + ["0.9", "0", "nan", "1", "1"])
        + "\n"
    )
    ((name, points),) = read_landmark_csv(table)
    assert name == "x.png" and points.shape == (5, 3)
    assert points[:, 2].tolist() == pytest.approx([0.9, 0.0, 0.0, 1.0, 1.0])
    assert not math.isnan(points[2, 0])


def _align_folder_of(tmp_path) -> int:
    """Run ``kprpe-face align`` on ``tmp_path/images`` with ``tmp_path/l.csv``."""
    folders = ["--images", str(tmp_path / "images"), "--out", str(tmp_path / "out")]
    return main(["align", *folders, "--landmarks", str(tmp_path / "l.csv"), "--no-progress"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("name,x0\nfoo.png,1\n", "expected a header starting with 'image'"),
        ("image,x0\nfoo.png,1,2,3\n", "l.csv:2: expected 10 (x, y) or 15"),
        ("image,x0\nfoo.png," + ",".join(["1"] * 9 + ["abc"]) + "\n", "l.csv:2: could not convert"),
        ("image\n", "no landmark rows"),
        ("image\nmissing.png," + ",".join(["1"] * 10) + "\n", "not found under"),
        ("image\n../up.png," + ",".join(["1"] * 10) + "\n", "must be relative and inside --images"),
    ],
)
def test_bad_landmark_files_fail_clearly(tmp_path, capsys, content, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "l.csv").write_text(content)
    code = _align_folder_of(tmp_path)
    assert code == 2
    assert message in capsys.readouterr().err


def test_face_with_too_few_landmarks_is_named(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (50, 50)).save(tmp_path / "images" / "f.png")
    (tmp_path / "l.csv").write_text("image\nf.png,10,10" + "," * 8 + "\n")
    code = _align_folder_of(tmp_path)
    assert code == 2
    assert "f.png: cannot fit a similarity" in capsys.readouterr().err


def test_eval_refuses_a_malicious_bin_before_it_runs(tmp_path, capsys, malicious_pickles):
    marker, pickles = malicious_pickles
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickles["os.system"])
    assert (
        main(["eval", "--model", str(tmp_path / "no-model"), "--bin", str(evil), "--out", str(tmp_path / "r.json")])
        == 2
    )
    err = capsys.readouterr().err
    assert "evil.bin: refused to load global" in err and "system" in err
    assert not marker.exists()
    assert not (tmp_path / "r.json").exists()
