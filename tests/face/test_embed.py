"""kprpe-face embed: every photo accounted for, embeddings equal to the model run on independently made crops."""

import importlib.util
import math

import numpy as np
import pytest
import torch
from PIL import Image

from face.align import ARCFACE_TEMPLATE, align_faces
from face.cli import main
from face.detect import write_box_csv
from face.detect.base import Detections
from face.detect.inputs import prepare_face
from face.landmarks import write_landmark_csv
from face.models import build_model, load_pretrained, save_pretrained


def _face_photo(points: torch.Tensor, size: tuple[int, int], seed: int) -> np.ndarray:
    """An (H, W, 3) uint8 photo: textured background, a bright blob on each landmark."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: size[0], : size[1]]
    image = rng.uniform(0, 0.3, (*size, 3))
    for x, y in points.tolist():
        image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 3.0**2))[..., None] * rng.uniform(0.5, 1, 3)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A vit_tiny KP-RPE model whose landmark projection is not zero (so landmarks change the embedding)."""
    torch.manual_seed(0)
    model = build_model({"preset": "vit_tiny", "rpe": "kprpe"})
    with torch.no_grad():
        model.kprpe.proj.weight.normal_(0, 0.5)
    return save_pretrained(model, tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def photos(tmp_path):
    images = tmp_path / "photos"
    (images / "sub").mkdir(parents=True)
    marks = {
        "a.png": ARCFACE_TEMPLATE * 1.6 + torch.tensor([20.0, 15.0]),
        "sub/b.png": ARCFACE_TEMPLATE * 0.9 + 5,
        "c.jpg": ARCFACE_TEMPLATE * 1.2 + 30,
    }
    for i, (name, points) in enumerate(marks.items()):
        Image.fromarray(_face_photo(points, (230, 220), seed=i)).save(images / name, quality=98)
    Image.fromarray(_face_photo(ARCFACE_TEMPLATE, (120, 120), seed=9)).save(images / "no_row.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(np.full((40, 40), 3000, np.uint16)).save(images / "deep.png")  # 16-bit greyscale
    (images / "notes.txt").write_text("not a photo: ignored")
    rows = [(name, points) for name, points in marks.items()]
    rows += [("broken.jpg", ARCFACE_TEMPLATE), ("deep.png", ARCFACE_TEMPLATE), ("gone.jpg", ARCFACE_TEMPLATE)]
    rows += [("../outside.png", ARCFACE_TEMPLATE)]
    write_landmark_csv(tmp_path / "marks.csv", rows)
    return images, tmp_path / "marks.csv", marks


def _read_photo(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)


def _run(*args) -> int:
    return main(["embed", "--no-progress", *map(str, args)])


def test_csv_front_end_aligned_every_photo_accounted_for(photos, checkpoint, tmp_path, capsys):
    images, marks_csv, marks = photos
    out = tmp_path / "emb.npz"
    assert (
        _run("--images", images, "--model", checkpoint, "--out", out, "--landmarks", marks_csv, "--batch-size", 2) == 0
    )
    printed = capsys.readouterr().out
    result = np.load(out, allow_pickle=False)
    keys = result["keys"].tolist()
    assert keys == ["a.png", "broken.jpg", "c.jpg", "deep.png", "no_row.png", "sub/b.png", "gone.jpg", "../outside.png"]
    status = dict(zip(keys, result["status"].tolist()))
    assert [k for k, s in status.items() if s == "ok"] == ["a.png", "c.jpg", "sub/b.png"]
    assert status["broken.jpg"].startswith("unreadable image")
    assert status["deep.png"].startswith("unsupported image mode 'I;16'")
    assert status["no_row.png"] == "no landmarks for it in the CSV"
    assert status["gone.jpg"] == "photo not found (listed in the landmark CSV)"
    assert status["../outside.png"].startswith("not inside --images")
    assert sorted(result["skipped"].tolist()) == sorted(f"{k}: {s}" for k, s in status.items() if s != "ok")
    for key, reason in status.items():
        if reason != "ok":
            assert f"skipped {key}: {reason}" in printed
    assert "embedded 3 of 8 photo(s), skipped 5" in printed

    model = load_pretrained(checkpoint)
    ok = result["status"] == "ok"
    assert np.isnan(result["embeddings"][~ok]).all() and np.isfinite(result["embeddings"][ok]).all()
    for i, key in enumerate(keys):
        if not ok[i]:
            continue
        photo = _read_photo(images / key).float()[None]
        aligned = align_faces(photo, marks[key][None], (112, 112))
        expected = model((aligned.images / 255 - 0.5) / 0.5, aligned.keypoints)[0]
        assert torch.allclose(torch.from_numpy(result["embeddings"][i]), expected, atol=1e-4, rtol=1e-4)
        template = ((ARCFACE_TEMPLATE + 0.5) / 112).flatten().tolist()
        assert result["landmarks"][i, :, :2].flatten().tolist() == pytest.approx(template, abs=1e-3)
        assert result["photo_landmarks"][i, :, :2].flatten().tolist() == pytest.approx(
            marks[key].flatten().tolist(), abs=1e-3
        )
    assert result["faces"].tolist() == [1, 0, 1, 0, 0, 1, 0, 0]


def test_detection_crop_of_a_box_the_size_of_the_crop_is_the_pixels_themselves(photos, checkpoint, tmp_path):
    images, marks_csv, marks = photos
    write_box_csv(tmp_path / "boxes.csv", [("a.png", (40, 30, 152, 142), 0.9)])  # 112 x 112 at (40, 30)
    out = tmp_path / "emb.npz"
    args = ["--images", images, "--model", checkpoint, "--out", out, "--landmarks", marks_csv]
    assert _run(*args, "--boxes", tmp_path / "boxes.csv", "--no-align") == 0
    result = np.load(out)
    i = result["keys"].tolist().index("a.png")
    crop = _read_photo(images / "a.png")[:, 30:142, 40:152].float()
    keypoints = (marks["a.png"] - torch.tensor([40.0, 30.0]) + 0.5) / 112
    keypoints = torch.cat([keypoints, torch.ones(5, 1)], -1)
    assert result["landmarks"][i].flatten().tolist() == pytest.approx(keypoints.flatten().tolist(), abs=1e-5)
    expected = load_pretrained(checkpoint)(((crop / 255 - 0.5) / 0.5)[None], keypoints[None])[0]
    assert torch.allclose(torch.from_numpy(result["embeddings"][i]), expected, atol=1e-4, rtol=1e-4)
    assert result["boxes"][i].tolist() == [40, 30, 152, 142] and result["scores"][i] == pytest.approx(0.9)
    # Landmarks move the embedding: KP-RPE sees where the face parts are.
    shifted = load_pretrained(checkpoint)(((crop / 255 - 0.5) / 0.5)[None], (keypoints + 0.1)[None])[0]
    assert not torch.allclose(shifted, expected, atol=1e-3)


def test_landmarks_outside_the_photo_or_nan_are_missing_and_counted():
    photo = torch.zeros(3, 100, 120, dtype=torch.uint8)
    points = torch.cat([ARCFACE_TEMPLATE * 0.8 + 5, torch.ones(5, 1)], -1)
    points[4, :2] = torch.tensor([130.0, 50.0])  # right mouth corner off the 120-wide photo
    points[2] = torch.tensor([math.nan, math.nan, 1.0])  # nose unknown
    face = Detections(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), points[None], torch.ones(1))
    prepared = prepare_face(photo, face, align=True)
    assert prepared.dropped == 1
    assert torch.isnan(prepared.keypoints[[2, 4], :2]).all() and prepared.keypoints[[2, 4], 2].tolist() == [0, 0]
    assert torch.isfinite(prepared.keypoints[[0, 1, 3]]).all()
    points[[0, 1, 3], :2] = -20.0  # now only off-photo landmarks are left
    with pytest.raises(ValueError, match="fewer than two landmarks on the photo .*4 given, 4 outside the 120x100"):
        prepare_face(photo, Detections(face.boxes, points[None], face.scores), align=True)
    # The detection crop still works from the box; far-off keypoints (beyond one crop size) are missing too.
    far = torch.cat([ARCFACE_TEMPLATE * 0.8 + 5, torch.ones(5, 1)], -1)
    small_box = torch.tensor([[0.0, 0.0, 20.0, 20.0]])  # 5.6x magnification: the mouth lands beyond x = 2
    prepared = prepare_face(photo, Detections(small_box, far[None], torch.ones(1)), align=False)
    beyond = (far[:, :2] + 0.5) / 20 > 2
    assert prepared.dropped == int(beyond.any(-1).sum()) > 0
    with pytest.raises(ValueError, match="no usable box"):
        prepare_face(photo, Detections(torch.full((1, 4), math.nan), far[None], torch.ones(1)), align=False)


def test_embed_rejects_bad_arguments_with_exit_code_2(photos, checkpoint, tmp_path, capsys):
    images, marks_csv, _ = photos
    out = tmp_path / "x.npz"
    assert _run("--images", tmp_path / "absent", "--model", checkpoint, "--out", out, "--landmarks", marks_csv) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert _run("--images", images, "--model", checkpoint, "--out", out, "--boxes", marks_csv) == 2
    assert "--boxes needs --landmarks" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run("--images", empty, "--model", checkpoint, "--out", out, "--batch-size", 0) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    assert _run("--images", empty, "--model", checkpoint, "--out", out, "--min-face-size", 5) == 2
    assert "min_face_size must be >= 12" in capsys.readouterr().err
    (empty / "none.csv").write_text("image,x0,y0,x1,y1,x2,y2,x3,y3,x4,y4\n")
    assert _run("--images", empty, "--model", checkpoint, "--out", out, "--landmarks", empty / "none.csv") == 2
    assert "no landmark rows" in capsys.readouterr().err
    if importlib.util.find_spec("facenet_pytorch") is not None:
        assert _run("--images", empty, "--model", checkpoint, "--out", out) == 2  # none.csv is not a photo
        assert "no photos" in capsys.readouterr().err
    assert not out.exists()


def test_missing_detect_extra_is_one_line_with_the_install_command(photos, checkpoint, tmp_path, capsys, monkeypatch):
    import sys

    images, _, _ = photos
    for name in ("facenet_pytorch", "facenet_pytorch.models", "facenet_pytorch.models.mtcnn"):
        monkeypatch.setitem(sys.modules, name, None)
    assert _run("--images", images, "--model", checkpoint, "--out", tmp_path / "x.npz") == 2
    err = capsys.readouterr().err
    assert "optional extra 'detect'" in err and "pip install --no-deps facenet-pytorch==2.6.0" in err


@pytest.mark.skipif(importlib.util.find_spec("facenet_pytorch") is None, reason="facenet-pytorch is not installed")
def test_mtcnn_front_end_on_a_real_face(checkpoint, tmp_path):
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("insightface")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("no real face photo: pip install --no-deps insightface==2.1 (its wheel ships sample images)")
    images = tmp_path / "photos"
    images.mkdir()
    face = _read_photo(dist.locate_file("insightface/data/images/Tom_Hanks_54745.png"))
    padded = torch.nn.functional.pad(face, (56, 56, 56, 56))  # read at test time, written to tmp only
    Image.fromarray(padded.permute(1, 2, 0).numpy()).save(images / "hanks.png")
    Image.fromarray(np.full((90, 90, 3), 128, np.uint8)).save(images / "grey.png")
    out = tmp_path / "emb.npz"
    assert _run("--images", images, "--model", checkpoint, "--out", out) == 0
    result = np.load(out)
    assert result["keys"].tolist() == ["grey.png", "hanks.png"]
    assert result["status"].tolist() == ["no face found", "ok"]
    moved = result["photo_landmarks"][1, :, :2] @ result["matrices"][1, :, :2].T + result["matrices"][1, :, 2]
    assert result["landmarks"][1, :, :2] == pytest.approx((moved + 0.5) / 112, abs=1e-5)  # the crop's keypoints
    assert np.abs(result["landmarks"][1, :, :2] - ((ARCFACE_TEMPLATE + 0.5) / 112).numpy()).max() < 0.1
    error = np.linalg.norm(result["photo_landmarks"][1, :, :2] - 56 - ARCFACE_TEMPLATE.numpy(), axis=-1)
    assert error.mean() < 6
    assert '"front_end": "mtcnn"' in str(result["info"])


def test_face_choice_best_or_largest():
    from face.commands.embed import _choose

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 30.0, 20.0], [5.0, 5.0, 25.0, 25.0]])
    found = Detections(boxes, torch.zeros(3, 5, 3), torch.tensor([0.99, 0.9, 0.8]))
    assert _choose(found, "best") == 0 and _choose(found, "largest") == 1


@pytest.fixture(scope="module")
def synthface(tmp_path_factory):
    """Four SynthFace photos (two identities) with their exact landmarks and detector-like boxes as CSVs."""
    from face.synth.config import synth_config
    from face.synth.render import render_photo, sample_identity

    folder = tmp_path_factory.mktemp("synthface")
    rng = np.random.default_rng(3)
    config = synth_config("demo")
    truth = {}
    for person in range(2):
        identity = sample_identity(rng)
        for k in range(2):
            photo = render_photo(identity, rng, config)
            name = f"id{person}/{k}.png"
            (folder / "photos" / f"id{person}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo.image).save(folder / "photos" / name)
            truth[name] = photo
    write_landmark_csv(folder / "marks.csv", [(name, torch.from_numpy(p.landmarks)) for name, p in truth.items()])
    write_box_csv(folder / "boxes.csv", [(name, p.box.tolist(), 1.0) for name, p in truth.items()])
    return folder, truth


def test_synthface_photos_through_the_csv_front_end(synthface, checkpoint, tmp_path):
    folder, truth = synthface
    common = ["--images", folder / "photos", "--model", checkpoint, "--landmarks", folder / "marks.csv"]
    assert _run(*common, "--boxes", folder / "boxes.csv", "--no-align", "--out", tmp_path / "det.npz") == 0
    assert _run(*common, "--out", tmp_path / "ali.npz", "--batch-size", 3) == 0
    detection, aligned = np.load(tmp_path / "det.npz"), np.load(tmp_path / "ali.npz")
    assert detection["keys"].tolist() == aligned["keys"].tolist() == sorted(truth)
    assert set(detection["status"].tolist()) == set(aligned["status"].tolist()) == {"ok"}
    for i, name in enumerate(detection["keys"].tolist()):
        photo = truth[name]
        x0, y0, x1, y1 = photo.box.tolist()  # detection crop: the box's edges are the crop's edges
        expected = (photo.landmarks + 0.5 - [x0, y0]) / [x1 - x0, y1 - y0]
        assert detection["landmarks"][i, :, :2] == pytest.approx(expected, abs=1e-4)
        assert detection["boxes"][i].tolist() == pytest.approx(photo.box.tolist(), abs=1e-3)
        # Aligned: the landmarks sit near the template (expression and yaw move them a little).
        template = ((ARCFACE_TEMPLATE + 0.5) / 112).numpy()
        assert np.abs(aligned["landmarks"][i, :, :2] - template).max() < 0.08
    assert np.isfinite(detection["embeddings"]).all() and np.isfinite(aligned["embeddings"]).all()
    assert not np.allclose(detection["embeddings"], aligned["embeddings"], atol=1e-3)


@pytest.mark.skipif(importlib.util.find_spec("facenet_pytorch") is None, reason="facenet-pytorch is not installed")
def test_synthface_photos_through_mtcnn(synthface, checkpoint, tmp_path):
    folder, truth = synthface
    out = tmp_path / "mtcnn.npz"
    assert _run("--images", folder / "photos", "--model", checkpoint, "--out", out, "--no-align") == 0
    result = np.load(out)
    assert result["keys"].tolist() == sorted(truth)
    found = result["status"] == "ok"
    assert found.sum() >= 3, result["status"]  # the detector fires on SynthFace faces
    for i in np.flatnonzero(found):
        photo = truth[result["keys"][i]]
        eyes = np.linalg.norm(photo.landmarks[0] - photo.landmarks[1])
        error = np.linalg.norm(result["photo_landmarks"][i, :, :2] - photo.landmarks, axis=-1).mean() / eyes
        assert error < 0.3
