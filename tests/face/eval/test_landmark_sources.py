"""Landmarks for verification sets without any: MTCNN on each image and its mirror, the ArcFace template,
or a sidecar; a KP-RPE model evaluated end to end on a ``.bin`` without sidecar with each source, and the
detected landmarks saved once and reused."""

import importlib.metadata
import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from face.align import ARCFACE_TEMPLATE, normalise_landmarks
from face.data import read_verification_bin, sidecar_path, write_verification_bin
from face.eval import embed, pair_landmarks, template_landmarks
from face.landmarks import flip_landmarks
from face.models.vit import FaceViT

needs_facenet = pytest.mark.skipif(importlib.util.find_spec("facenet_pytorch") is None, reason="no facenet-pytorch")


def _tom_hanks() -> torch.Tensor:
    """A real 112x112 face aligned to the ArcFace template (a sample image of the insightface wheel)."""
    try:
        path = importlib.metadata.distribution("insightface").locate_file("insightface/data/images/Tom_Hanks_54745.png")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("no real face photo: pip install --no-deps insightface==2.1")
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


def _kprpe_model() -> FaceViT:
    torch.manual_seed(0)
    model = FaceViT(patch_size=16, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2, output_dim=16, rpe="kprpe")
    torch.nn.init.normal_(model.kprpe.proj.weight)  # zero at init: the landmarks would change nothing
    return model.eval()


@pytest.fixture
def stock_bin(tmp_path):
    """10 pairs of shifted / darkened copies of a real aligned face, written without any sidecar."""
    face = _tom_hanks()
    images = []
    for k in range(20):
        shifted = torch.roll(face, shifts=(k % 3 - 1, (k * 2) % 5 - 2), dims=(1, 2))
        images.append((shifted.float() * (1 - 0.02 * k)).round().to(torch.uint8))
    path = tmp_path / "stock.bin"
    write_verification_bin(path, images, [True, False] * 5)
    assert not sidecar_path(path, "landmarks").exists()
    return path


def test_template_source_is_the_arcface_template_scaled(stock_bin):
    points = pair_landmarks(read_verification_bin(stock_bin), "template")
    assert points.landmarks.shape == (20, 5, 3) and points.flipped is None and points.missing == 0
    np.testing.assert_allclose(points.landmarks[3, :, :2], ARCFACE_TEMPLATE.numpy(), atol=1e-4)
    half = template_landmarks(1, (56, 56))[0, :, :2]
    np.testing.assert_allclose(half, (ARCFACE_TEMPLATE.numpy() + 0.5) / 2 - 0.5, atol=1e-4)


def test_sidecar_source_needs_a_sidecar_and_detect_a_detector(stock_bin):
    pairs = read_verification_bin(stock_bin)
    with pytest.raises(ValueError, match="no landmark sidecar"):
        pair_landmarks(pairs, "sidecar")
    with pytest.raises(ValueError, match="needs a detector"):
        pair_landmarks(pairs, "detect")
    with pytest.raises(ValueError, match="landmark source must be one of"):
        pair_landmarks(pairs, "dlib")


@needs_facenet
def test_detect_finds_the_landmarks_of_each_image_and_of_its_mirror(stock_bin):
    from face.detect import MTCNNDetector

    pairs = read_verification_bin(stock_bin)
    points = pair_landmarks(pairs, "detect", MTCNNDetector(batch_size=4))
    assert points.source == "detect" and points.missing == 0
    # image 1 is the face rolled by (0, 0): its landmarks are those of an aligned face, near the template
    error = np.linalg.norm(points.landmarks[1, :, :2] - ARCFACE_TEMPLATE.numpy(), axis=-1)
    assert error.mean() < 7, error
    # the mirror's own detection agrees with the original's mirrored (left/right swapped), within a few px
    mirrored = flip_landmarks(points.landmarks, width=112)
    assert np.abs(points.flipped[..., :2] - mirrored[..., :2]).max() < 6
    assert not np.array_equal(points.flipped, mirrored)  # detected on the mirror, not computed from it


@needs_facenet
def test_kprpe_model_on_a_stock_bin_with_each_source(stock_bin, tmp_path, monkeypatch, capsys):
    from face.cli import main
    from face.commands import eval as eval_command

    model = _kprpe_model()
    monkeypatch.setattr(eval_command, "_load_model", lambda path: model)
    out = tmp_path / "results.json"
    base = ["eval", "--model", "m", "--bin", str(stock_bin), "--out", str(out), "--no-progress"]
    results = {}
    for source in ("default", "template", "detect"):
        extra = [] if source == "default" else ["--landmarks", source]
        assert main(base + extra) == 0
        results[source] = json.loads(out.read_text())["verification"]["stock"]
    assert results["default"]["landmark_source"] == "detect"  # no sidecar: detected
    assert results["template"]["landmark_source"] == "template" and results["detect"]["landmarks_missing"] == 0
    assert results["default"] == results["detect"]
    assert main(base + ["--landmarks", "sidecar"]) == 2
    assert "no <stem>.landmarks.npy beside" in capsys.readouterr().err

    # detected once, saved, then read back by later runs: the same numbers as detecting again
    assert main(base + ["--save-landmarks"]) == 0
    assert sidecar_path(stock_bin, "landmarks").exists() and sidecar_path(stock_bin, "flip_landmarks").exists()
    for extra in ([], ["--landmarks", "sidecar"]):
        assert main(base + extra) == 0
        reused = json.loads(out.read_text())["verification"]["stock"]
        assert reused["landmark_source"] == "sidecar"
        assert {k: v for k, v in reused.items() if k != "landmark_source"} == {
            k: v for k, v in results["detect"].items() if k != "landmark_source"
        }
    assert main(base + ["--landmarks", "template", "--save-landmarks"]) == 2

    # the model reads the landmarks: the template and the detected ones give different embeddings
    pairs = read_verification_bin(stock_bin)
    images = torch.stack(list(pairs.images()))
    by_source = {
        source: embed(
            model, images, normalise_landmarks(torch.from_numpy(pair_landmarks(pairs, source).landmarks), (112, 112))
        )
        for source in ("template", "sidecar")
    }
    assert not torch.allclose(by_source["template"], by_source["sidecar"], atol=1e-4)


def test_face_swin_on_a_stock_bin(stock_bin, tmp_path):
    """A saved face Swin evaluates through the same command: KP-RPE with template landmarks; Swin V2's own
    bias reads no landmarks, so none are looked up (no detector needed)."""
    from face.cli import main
    from face.models import build_model, save_pretrained

    out = tmp_path / "results.json"
    for rpe, extra, source in (("kprpe", ["--landmarks", "template"], "template"), ("cpb", [], None)):
        torch.manual_seed(0)
        folder = save_pretrained(build_model({"preset": "swin_tiny", "rpe": rpe}).eval(), tmp_path / rpe)
        args = ["eval", "--model", str(folder), "--bin", str(stock_bin), "--out", str(out), "--no-progress"]
        assert main(args + extra) == 0
        result = json.loads(out.read_text())["verification"]["stock"]
        assert result.get("landmark_source") == source and 0 <= result["accuracy"] <= 1
