"""MTCNN front-end: the install hint, the torchvision stand-in, and detections on real photos.

The real photos are sample images inside the ``insightface`` wheel (``pip install --no-deps
insightface==2.1``), read from the installed package at test time; their licence is unclear, so they are
never copied into this repository. Tests that need facenet-pytorch or those photos skip when absent.
"""

import importlib.metadata
import importlib.util
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from face.align import ARCFACE_TEMPLATE
from face.detect import INSTALL_HINT, Detections, MTCNNDetector
from face.detect import mtcnn as mtcnn_module
from face.detect.nms import batched_nms

needs_facenet = pytest.mark.skipif(
    importlib.util.find_spec("facenet_pytorch") is None,
    reason=f"facenet-pytorch is not installed (the optional extra 'detect': {INSTALL_HINT})",
)


def _sample_photo(name: str) -> torch.Tensor:
    try:
        path = importlib.metadata.distribution("insightface").locate_file(f"insightface/data/images/{name}")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("no real face photos: pip install --no-deps insightface==2.1 (its wheel ships sample images)")
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


@pytest.fixture(scope="module")
def detector():
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip(f"facenet-pytorch is not installed ({INSTALL_HINT})")
    return MTCNNDetector()


def test_missing_extra_names_the_extra_and_the_install_command(monkeypatch):
    for name in ("facenet_pytorch", "facenet_pytorch.models", "facenet_pytorch.models.mtcnn"):
        monkeypatch.setitem(sys.modules, name, None)  # import of these names now fails
    with pytest.raises(ImportError, match=r"optional extra 'detect'.*pip install --no-deps facenet-pytorch==2\.6\.0"):
        MTCNNDetector()


@needs_facenet
def test_stand_in_is_gone_after_import(detector):
    assert detector.nms_source.startswith(("torchvision ", "face.detect.nms.batched_nms (torchvision unusable"))
    stand_in = sys.modules.get("torchvision")
    assert stand_in is None or "stand-in" not in (stand_in.__doc__ or "")
    if "face.detect.nms" in detector.nms_source:  # torchvision unusable here: facenet-pytorch got ours
        assert sys.modules["facenet_pytorch.models.utils.detect_face"].batched_nms is batched_nms


@needs_facenet
def test_same_detections_with_torchvision_and_with_the_stand_in(detector, monkeypatch):
    if "face.detect.nms" in detector.nms_source:
        pytest.skip(f"torchvision does not import here: {detector.nms_source}")
    photo = _sample_photo("t1.jpg")[:, ::2, ::2].contiguous()
    with_torchvision = detector.detect([photo])[0]
    monkeypatch.setattr(sys.modules["facenet_pytorch.models.utils.detect_face"], "batched_nms", batched_nms)
    with_ours = detector.detect([photo])[0]
    assert torch.equal(with_torchvision.boxes, with_ours.boxes)
    assert torch.equal(with_torchvision.landmarks, with_ours.landmarks)


@needs_facenet
def test_aligned_real_face_gives_the_template_landmarks(detector):
    """Tom_Hanks_54745.png is a 112x112 crop aligned to the ArcFace template by another detector."""
    photo = _sample_photo("Tom_Hanks_54745.png")
    padded = torch.nn.functional.pad(photo, (56, 56, 56, 56))  # room around the face, as in a photo
    found = detector.detect([padded])[0]
    assert len(found) == 1 and found.scores[0] > 0.99
    error = (found.landmarks[0, :, :2] - 56 - ARCFACE_TEMPLATE).norm(dim=-1)  # pixels; eyes 35 px apart
    assert error.mean() < 6 and error.max() < 12, error
    x0, y0, x1, y1 = (found.boxes[0] - 56).tolist()
    assert -10 < x0 < 15 and -10 < y0 < 15 and 75 < x1 < 120 and 100 < y1 < 130


@needs_facenet
def test_group_photo_finds_the_six_people_with_sane_landmarks(detector):
    photo = _sample_photo("t1.jpg")[:, ::2, ::2].contiguous()  # 640x443: faster, faces still > 40 px
    found = detector.detect([photo])[0]
    confident = found.scores > 0.9  # measured: six faces, lowest 0.986; nothing else at this size
    assert confident.sum() == 6, found.scores
    assert torch.all(found.scores[:-1] >= found.scores[1:])  # best first
    marks, boxes = found.landmarks[confident], found.boxes[confident]
    inside = (marks[..., 0] >= boxes[:, None, 0] - 2) & (marks[..., 0] <= boxes[:, None, 2] + 2)
    inside &= (marks[..., 1] >= boxes[:, None, 1] - 2) & (marks[..., 1] <= boxes[:, None, 3] + 2)
    assert inside.all()
    eyes_y, mouth_y = marks[:, :2, 1].mean(1), marks[:, 3:, 1].mean(1)
    assert torch.all(marks[:, 0, 0] < marks[:, 1, 0]) and torch.all(marks[:, 3, 0] < marks[:, 4, 0])
    assert torch.all(eyes_y < marks[:, 2, 1]) and torch.all(marks[:, 2, 1] < mouth_y + 5)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert torch.cdist(centres, centres).add(torch.eye(6) * 1e9).min() > 40  # six different people


@needs_facenet
def test_blank_and_tiny_photos_have_no_face(detector):
    blank = torch.full((3, 120, 160), 128, dtype=torch.uint8)
    tiny = torch.zeros(3, 10, 300, dtype=torch.uint8)  # below MTCNN's smallest face
    results = detector.detect([blank, tiny])
    assert [len(r) for r in results] == [0, 0]
    assert all(isinstance(r, Detections) for r in results)
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector.detect([torch.zeros(1, 50, 50, dtype=torch.uint8)])


def test_stand_in_provides_only_what_facenet_pytorch_imports():
    modules = mtcnn_module._stand_in_torchvision()
    assert modules["torchvision.ops.boxes"].batched_nms is batched_nms
    with pytest.raises(AttributeError, match="does not import here"):
        getattr(modules["torchvision.transforms.functional"], "to_tensor")  # noqa: B009
    saved = sys.modules.get("torchvision")
    with mtcnn_module._torchvision_replaced():
        assert sys.modules["torchvision"] is not saved
    assert sys.modules.get("torchvision") is saved


@needs_facenet
def test_batched_detection_equals_photo_by_photo(detector):
    """Photos of one size share passes of the cascade (two batches of 3 and 1 here, plus a photo of another
    size and one too small to search); every photo's faces are those it gets alone."""
    face = _sample_photo("Tom_Hanks_54745.png")
    photos = [torch.nn.functional.pad(face, (56 + dx, 56 - dx, 56 + dy, 56 - dy)) for dx, dy in
              ((0, 0), (20, -10), (-25, 15), (30, 30))]  # fmt: skip
    photos.insert(2, _sample_photo("t1.jpg")[:, ::2, ::2].contiguous())  # another size
    photos.append(torch.zeros(3, 10, 10, dtype=torch.uint8))  # smaller than min_face_size
    batched = MTCNNDetector(batch_size=3).detect(photos)
    alone = [detector.detect([photo])[0] for photo in photos]
    assert [len(found) for found in batched] == [len(found) for found in alone]
    assert len(batched[0]) == 1 and len(batched[-1]) == 0
    for got, want in zip(batched, alone):
        torch.testing.assert_close(got.boxes, want.boxes, rtol=0, atol=1e-3)
        torch.testing.assert_close(got.landmarks, want.landmarks, rtol=0, atol=1e-3)
        torch.testing.assert_close(got.scores, want.scores, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        MTCNNDetector(batch_size=0)
