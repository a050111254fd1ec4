import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from face.align import ARCFACE_TEMPLATE, align_faces, transform_points
from face.data import box_crop_matrix, read_verification_bin, warp_faces, write_verification_bin
from face.eval import (
    alignment_matrix,
    embed,
    evaluate_path,
    evaluate_verification,
    interpolate_affine,
    path_crops,
    verification_metrics,
)


class StandIn(nn.Module):
    """A small landmark-aware embedder standing in for a face model: pooled pixels + landmarks -> 16-d."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3 * 4 * 4 + 10, 16)
        self.norm = nn.BatchNorm1d(16)  # makes train / eval mode matter

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(images, 4).flatten(1)
        points = torch.zeros(len(images), 10) if landmarks is None else landmarks[..., :2].flatten(1)
        return self.norm(self.linear(torch.cat([pooled, torch.nan_to_num(points)], 1)))


def _faces(count=6, size=16):
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (count, 3, size, size), generator=g, dtype=torch.uint8)
    landmarks = torch.rand(count, 5, 3, generator=g)
    return images, landmarks


def test_embed_flip_tta_sums_original_and_mirrored_with_swapped_landmarks():
    model = StandIn().train()
    images, landmarks = _faces()
    x = (images.float() / 255 - 0.5) / 0.5
    mirrored = landmarks[:, [1, 0, 2, 4, 3]].clone()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    model.eval()
    with torch.no_grad():
        expected = F.normalize(model(x, landmarks) + model(x.flip(-1), mirrored), dim=1)
        plain = F.normalize(model(x, landmarks), dim=1)
    model.train()
    got = embed(model, images, landmarks, flip=True, batch_size=4)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(embed(model, images, landmarks, flip=False, batch_size=64), plain)
    torch.testing.assert_close(embed(model, list(images), landmarks, batch_size=5), expected)  # a sequence input
    assert model.training  # mode restored
    torch.testing.assert_close(got.norm(dim=1), torch.ones(6))
    with pytest.raises(ValueError, match="6 images but landmarks for 5"):
        embed(model, images, landmarks[:5])
    with pytest.raises(ValueError, match="differ in shape"):
        embed(model, [images[0], images[1, :, :8]], None)


def test_interpolate_affine_and_path_endpoints():
    m0 = torch.tensor([[[1.0, 0, 2], [0, 1, 3]]])
    m1 = torch.tensor([[[0.0, -1, 0], [1, 0, 5]]])
    torch.testing.assert_close(interpolate_affine(m0, m1, 0.25), 0.75 * m0 + 0.25 * m1)
    with pytest.raises(ValueError, match="t must be in"):
        interpolate_affine(m0, m1, 1.5)
    # the same path read in crop space: from the identity to A = M1 M0^-1, applied after M0
    square = torch.tensor([[[0.0, 0, 1]]])
    h0, h1 = torch.cat([m0, square], 1), torch.cat([m1, square], 1)
    a = h1 @ torch.linalg.inv(h0)
    crop_space = ((1 - 0.3) * torch.eye(3) + 0.3 * a) @ h0
    torch.testing.assert_close(crop_space[:, :2], interpolate_affine(m0, m1, 0.3))

    g = torch.Generator().manual_seed(3)
    photos = [torch.randint(0, 256, (3, 150, 140), generator=g, dtype=torch.uint8) for _ in range(2)]
    photos.append(torch.randint(0, 256, (3, 130, 160), generator=g, dtype=torch.uint8))  # another size
    # landmarks: the template rotated by 10 degrees, scaled by 0.9, shifted
    angle = torch.deg2rad(torch.tensor(10.0))
    rotation = 0.9 * torch.tensor([[torch.cos(angle), -torch.sin(angle)], [torch.sin(angle), torch.cos(angle)]])
    points = ARCFACE_TEMPLATE @ rotation.T + torch.tensor([12.0, 9.0])
    landmarks = torch.cat([points, torch.ones(5, 1)], 1).expand(3, 5, 3).clone()
    boxes = torch.tensor([[5.0, 4.0, 125.0, 130.0]] * 3)
    # alignment_matrix sends the landmarks onto the template
    moved = transform_points(landmarks.double(), alignment_matrix(landmarks).double())[..., :2]
    torch.testing.assert_close(moved, ARCFACE_TEMPLATE.expand(3, 5, 2).double(), atol=1e-4, rtol=0)
    aligned_crops, aligned_points = path_crops(photos, landmarks, boxes, 1.0)
    for i, photo in enumerate(photos):
        reference = align_faces(photo[None].float(), landmarks[i : i + 1])
        assert (aligned_crops[i].int() - reference.images[0].round().int()).abs().max() <= 1
        torch.testing.assert_close(aligned_points[i], reference.keypoints[0], atol=1e-5, rtol=0)
    detection_crops, detection_points = path_crops(photos, landmarks, boxes, 0.0)
    expected = warp_faces(photos[2][None], landmarks[2:], box_crop_matrix(boxes[2:]))
    assert torch.equal(detection_crops[2], expected[0][0])
    torch.testing.assert_close(detection_points[2], expected[1][0])


def test_evaluate_path_at_t1_matches_evaluate_verification_on_the_aligned_bin(tmp_path):
    g = torch.Generator().manual_seed(4)
    count = 40  # 20 pairs
    base = torch.rand(count // 2, 3, 6, 6, generator=g) * 255
    photos = F.interpolate(base.repeat_interleave(2, 0), (120, 120), mode="bilinear")
    photos = (photos + 20 * torch.randn(photos.shape, generator=g)).clamp(0, 255).round().to(torch.uint8)
    issame = np.array([True, False] * (count // 4))
    order = np.arange(count)
    for k in range(1, count // 2, 2):  # different pairs: swap the second image with another pair's
        order[2 * k + 1] = (2 * k + 5) % count
    photos = photos[order]
    landmarks = (ARCFACE_TEMPLATE + 4 + torch.randn(count, 5, 2, generator=g)).double()
    boxes = torch.tensor([[2.0, 3.0, 118.0, 117.0]]).expand(count, 4)
    write_verification_bin(tmp_path / "raw.bin", photos, issame, landmarks, boxes)
    raw = read_verification_bin(tmp_path / "raw.bin")
    model = StandIn()
    path = evaluate_path(model, raw, steps=3, batch_size=16)
    assert path["t"] == [0.0, 0.5, 1.0] and len(path["accuracy"]) == 3
    crops, keypoints = path_crops([raw.image(i) for i in range(count)], raw.landmarks, raw.boxes, 1.0)
    write_verification_bin(tmp_path / "aligned.bin", crops, issame, keypoints[..., :2] * 112 - 0.5)
    aligned = evaluate_verification(model, read_verification_bin(tmp_path / "aligned.bin"), batch_size=7)
    assert aligned["accuracy"] == pytest.approx(path["accuracy"][-1])
    for far, value in aligned["tar_at_far"].items():
        assert (value["tar"], value["far"]) == pytest.approx(
            (path["tar_at_far"][-1][far]["tar"], path["tar_at_far"][-1][far]["far"])
        )
    direct = verification_metrics(embed(model, crops, keypoints), issame)
    assert direct["fold_thresholds"] == aligned["fold_thresholds"]
    with pytest.raises(ValueError, match="landmarks and boxes sidecars"):
        evaluate_path(model, read_verification_bin(tmp_path / "aligned.bin"), steps=3)


def test_eval_command_writes_json_and_table(tmp_path, monkeypatch, capsys):
    from face.cli import main
    from face.commands import eval as eval_command

    monkeypatch.setattr(eval_command, "_load_model", lambda path: StandIn())
    images, landmarks = _faces(40, 112)
    write_verification_bin(tmp_path / "pairs.bin", images, [True, False] * 10, landmarks[..., :2] * 100)
    out = tmp_path / "results.json"
    assert main(["eval", "--model", "m", "--bin", str(tmp_path / "pairs.bin"), "--out", str(out), "--no-progress"]) == 0
    results = json.loads(out.read_text())
    metrics = results["verification"]["pairs"]
    assert metrics["pairs"] == 20 and metrics["flip"] and set(metrics["tar_at_far"]) == {"1e-04", "1e-03", "1e-02"}
    assert "pairs" in capsys.readouterr().out
    assert main(["eval", "--model", "m", "--bin", str(tmp_path / "none.bin"), "--out", str(out)]) == 2
    assert "none.bin not found" in capsys.readouterr().err
    assert main(["eval", "--model", "m", "--raw", str(tmp_path / "pairs.bin"), "--out", str(out)]) == 2
    assert "--raw and --path-steps N go together" in capsys.readouterr().err


def test_eval_command_end_to_end_on_synthface_with_a_saved_model(tmp_path, capsys):
    from face.cli import main
    from face.models import build_model, save_pretrained
    from face.synth import generate, synth_config

    small = {"ids": 2, "images_per_id": 2, "test_ids": 5, "test_images_per_id": 2, "pairs": 10, "photo_size": 96}
    files = generate(synth_config("tiny", **small), tmp_path / "synth", progress=False)
    torch.manual_seed(0)
    save_pretrained(build_model({"preset": "vit_tiny", "rpe": "kprpe"}), tmp_path / "model")
    out = tmp_path / "results.json"
    args = ["eval", "--model", str(tmp_path / "model"), "--bin", str(files["aligned"]), str(files["unaligned"])]
    args += ["--raw", str(files["raw"]), "--path-steps", "2", "--no-flip", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    results = json.loads(out.read_text())
    assert set(results["verification"]) == {"aligned", "unaligned"}
    assert results["verification"]["aligned"]["landmarks"] and results["path"]["t"] == [0.0, 1.0]
    assert results["flip"] is False and results["verification"]["unaligned"]["flip"] is False
    assert all(0 <= a <= 1 for a in results["path"]["accuracy"])
    printed = capsys.readouterr().out
    assert "aligned" in printed and "unaligned" in printed and "path t:" in printed


class MeanColour(nn.Module):
    """Embeds a face by its mean colour (no parameters): identities below differ by colour only."""

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None) -> torch.Tensor:
        return images.mean((2, 3)) + 1.0  # shift off the origin: colours in [-1, 1] would flip under the norm


def test_identification_folder_through_the_command(tmp_path, monkeypatch):
    from PIL import Image

    from face.cli import main
    from face.commands import eval as eval_command

    colours = {1: (200, 30, 30), 2: (30, 200, 30), 3: (30, 30, 200)}
    files = {"Probe/1_0.png": colours[1], "Probe/2_0.png": colours[2], "Probe/3_0.png": colours[3]}
    files.update({"Gallery_Match/1_1.png": (180, 40, 40), "Gallery_Match/2_1.png": colours[2]})
    files.update({"Gallery_Match/3_1.png": colours[3], "Gallery_Distractor/a.png": colours[1]})
    for name, colour in files.items():
        (tmp_path / "tiny" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 30), colour).save(tmp_path / "tiny" / name)
    monkeypatch.setattr(eval_command, "_load_model", lambda path: MeanColour())
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "m", "--identification", str(tmp_path / "tiny"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())["identification"]["tiny"]
    # probe 1's colour equals the distractor's: its match comes second
    assert result["rank1"] == pytest.approx(2 / 3) and result["rank5"] == 1.0
    assert (result["probes"], result["gallery"], result["without_match"]) == (3, 4, 0)
