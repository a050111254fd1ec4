import math

import numpy as np
import pytest
import torch

from face.align import ARCFACE_TEMPLATE
from face.data import FaceFolder, RecordFaceDataset, read_verification_bin
from face.eval import path_crops
from face.synth import Camera, generate, render_photo, sample_identity, synth_config
from face.synth.config import SynthConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, generate(synth_config("tiny", recordio=True), out, progress=False)


def test_camera_landmarks_are_the_exact_inverse_of_the_render_map():
    rng = np.random.default_rng(0)
    for _ in range(5):
        roll, yaw = math.radians(rng.uniform(-30, 30)), math.radians(rng.uniform(-15, 15))
        camera = Camera(rng.uniform(0.7, 1.1), roll, yaw, rng.uniform(60, 100, 2), 56.0, (56.0, 71.7))
        points = ARCFACE_TEMPLATE.numpy() + rng.normal(0, 2, (5, 2))
        photo = camera.to_photo(points)
        u, v = camera.to_face(photo[:, 0], photo[:, 1])
        np.testing.assert_allclose(np.stack([u, v], 1), points, atol=1e-6)


def test_photo_is_deterministic_and_landmarks_sit_on_the_face():
    config = SynthConfig(occluder_prob=0, max_blur=0, low_res_prob=0, max_noise=0)
    ident = sample_identity(np.random.default_rng(1))
    a = render_photo(ident, np.random.default_rng(2), config)
    b = render_photo(ident, np.random.default_rng(2), config)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks, b.landmarks)
    x0, y0, x1, y1 = a.box
    assert ((a.landmarks >= [x0, y0]) & (a.landmarks <= [x1, y1])).all()  # the box holds the landmarks
    # each eye landmark falls on the iris / pupil (dark), not on skin or sclera
    for k in (0, 1):
        x, y = a.landmarks[k]
        centre = a.image[round(y), round(x)].astype(float).mean()
        assert centre < 150


def test_tiny_set_layout_and_landmarks(tiny):
    _, files = tiny
    config = synth_config("tiny")
    train = FaceFolder(files["train"], files["train_landmarks"])
    assert len(train.classes) == config.ids and len(train) == config.ids * config.images_per_id
    image, landmarks, label = train[0]
    assert image.shape == (3, 112, 112) and label == 0
    # aligned training crops: landmarks near the template (expression and yaw move them a little)
    assert (landmarks[:, :2] - ARCFACE_TEMPLATE).norm(dim=1).max() < 8
    records = RecordFaceDataset(files["train_rec"])
    assert len(records) == len(train)
    assert [records.label(i) for i in range(len(records))] == train.labels.tolist()
    torch.testing.assert_close(records[3][1], train[3][1], atol=1e-3, rtol=0)
    aligned, unaligned, raw = (read_verification_bin(files[name]) for name in ("aligned", "unaligned", "raw"))
    assert len(aligned) == len(unaligned) == len(raw) == config.pairs and aligned.issame.sum() == config.pairs // 2
    assert (aligned.issame == raw.issame).all() and raw.boxes.shape == (2 * config.pairs, 4)
    template = ARCFACE_TEMPLATE.numpy()
    aligned_error = np.linalg.norm(aligned.landmarks[:, :2, :2] - template[:2], axis=-1).mean()
    unaligned_error = np.linalg.norm(unaligned.landmarks[:, :2, :2] - template[:2], axis=-1).mean()
    assert aligned_error < 3 and unaligned_error > 2 * aligned_error  # the detection crop is misaligned
    # the raw photos through the Fig. 5 path reproduce both crops (up to their JPEG encoding)
    photos = [raw.image(i) for i in range(6)]
    for t, crops in ((1.0, aligned), (0.0, unaligned)):
        images, keypoints = path_crops(photos, raw.landmarks[:6], raw.boxes[:6], t)
        stored = torch.stack([crops.image(i) for i in range(6)])
        assert (images.float() - stored.float()).abs().mean() < 4
        pixels = keypoints[..., :2] * 112 - 0.5
        torch.testing.assert_close(pixels, torch.from_numpy(crops.landmarks[:6, :, :2]), atol=2e-3, rtol=0)
    assert files["preview"].stat().st_size > 0


def test_output_depends_on_the_seed_only(tiny, tmp_path):
    from face.cli import main

    out, files = tiny
    small = {"ids": 2, "images_per_id": 2, "test_ids": 5, "test_images_per_id": 2, "pairs": 10, "photo_size": 96}
    generate(synth_config("tiny", **small, workers=1), tmp_path / "one", progress=False)
    args = ["synth", "--preset", "tiny", "--out", str(tmp_path / "two"), "--workers", "2", "--no-progress"]
    args += [f"--{key.replace('_', '-')}={value}" for key, value in small.items()]
    assert main(args) == 0
    names = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    for name in names:
        if name.name != "synthface.json":  # holds timings
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    # a folder holding the same set is reused; another config needs overwrite
    before = files["aligned"].stat().st_mtime_ns
    assert generate(synth_config("tiny", recordio=True, workers=3), out, progress=False) == files
    assert files["aligned"].stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="another config"):
        generate(synth_config("tiny", seed=1), out, progress=False)
    # an interrupted run is rendered again without asking; folders that are not SynthFace's are left alone
    (tmp_path / "one" / "synthface.json").unlink()
    (tmp_path / "one" / "synthface.partial").write_text("{}")
    again = generate(synth_config("tiny", **small), tmp_path / "one", progress=False)
    assert not (tmp_path / "one" / "synthface.partial").exists() and again["aligned"].is_file()
    (tmp_path / "mine" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="not written by SynthFace"):
        generate(synth_config("tiny", **small), tmp_path / "mine", progress=False)


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown key 'idz'"):
        synth_config("tiny", idz=3)
    with pytest.raises(ValueError, match="unknown SynthFace preset 'huge'"):
        synth_config("huge")
    with pytest.raises(ValueError, match="distinct same pairs"):
        synth_config("tiny", pairs=100)
