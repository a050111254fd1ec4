"""face.eval.reliance: the keypoint-reliance probe reads ~0 for a KP-RPE model whose W_L is zero (and for the
constant-landmark wrapper), clearly non-zero for one built to depend on its landmarks; exact test warps;
``kprpe-face eval --reliance`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from face.align import ARCFACE_TEMPLATE
from face.cli import main
from face.eval.reliance import (
    ConstantLandmarks,
    constant_landmarks,
    keypoint_reliance,
    replace_landmarks,
    warp_pairs,
)
from face.models import build_model, save_pretrained


def _model(weight_std: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model({"preset": "vit_tiny", "patch_size": 16, "depth": 2, "rpe": "kprpe"}).eval()
    if weight_std:
        with torch.no_grad():
            model.kprpe.proj.weight.normal_(std=weight_std)
    return model


def _pairs(count: int = 12):
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2 * count, 3, 112, 112), dtype=torch.uint8, generator=generator)
    keypoints = constant_landmarks(2 * count) + torch.cat([0.08 * torch.rand(2 * count, 5, 2, generator=generator),
                                                           torch.zeros(2 * count, 5, 1)], -1)  # fmt: skip
    issame = np.arange(count) % 2 == 0
    return images, keypoints, issame


def test_constant_and_shuffled_landmarks():
    unit = constant_landmarks(3)
    assert unit.shape == (3, 5, 3) and torch.equal(unit[0], unit[2]) and bool((unit[..., 2] == 1).all())
    torch.testing.assert_close(unit[0, :, :2] * 112 - 0.5, ARCFACE_TEMPLATE)
    points = torch.rand(7, 5, 3)
    shuffled = replace_landmarks(points, "shuffled", seed=3)
    order = [int((points == row).all(-1).all(-1).nonzero()) for row in shuffled]
    assert sorted(order) == list(range(7)) and all(i != j for i, j in enumerate(order))  # no face keeps its own
    assert torch.equal(replace_landmarks(points, "shuffled", seed=3), shuffled)
    assert replace_landmarks(points[..., :2], "constant").shape == (7, 5, 2)
    with pytest.raises(ValueError, match="unknown keypoint mode"):
        replace_landmarks(points, "mean")


def test_warp_pairs_moves_image_and_landmarks_by_the_exact_map():
    image = torch.zeros(1, 3, 112, 112, dtype=torch.uint8)
    image[..., 50, 60] = 255
    unit = torch.tensor([[[(60 + 0.5) / 112, (50 + 0.5) / 112, 1.0]] * 5])
    moved, points = warp_pairs(image, unit, shift=8.0, seed=0)
    weights = moved[0, 0].double()  # bilinear splat of the dot: its centroid is where the dot went
    ys, xs = torch.meshgrid(torch.arange(112.0), torch.arange(112.0), indexing="ij")
    x, y = float((weights * xs).sum() / weights.sum()), float((weights * ys).sum() / weights.sum())
    px = points[0, 0, :2] * 112 - 0.5
    assert abs(float(px[0]) - x) < 0.05 and abs(float(px[1]) - y) < 0.05  # the landmark moved with the pixel
    assert abs(float(np.hypot(x - 60, y - 50)) - 8.0) < 0.05  # by exactly the asked length
    # scale about the centre keeps the centre; rotation by 0 and scale 1 is the identity
    same, kept = warp_pairs(image, unit)
    assert torch.equal(same, image) and torch.allclose(kept, unit, atol=1e-6)
    _, shrunk = warp_pairs(image, unit, scale=0.5)
    torch.testing.assert_close(shrunk[0, 0, :2] * 112 - 0.5, torch.tensor([55.5 + 2.25, 55.5 - 2.75]), atol=1e-4,
                               rtol=0)  # fmt: skip


def test_probe_reads_zero_for_zero_w_l_and_for_the_constant_wrapper():
    images, keypoints, issame = _pairs()
    for model in (_model(), ConstantLandmarks(_model(3.0))):
        out = keypoint_reliance(model, images, keypoints, issame, probe_faces=8)
        assert out["accuracy"]["true"] == out["accuracy"]["constant"] == out["accuracy"]["shuffled"]
        assert out["embedding_cosine"]["min"] > 0.99999 and out["keypoint_bias"] == 0.0
        assert len(out["bias"]) == 2 and out["logit_spread"] > 0
    wrapped = ConstantLandmarks(_model(3.0))  # the shortcut above is exact: the wrapper ignores what it is given
    x = torch.randn(2, 3, 112, 112)
    assert torch.equal(wrapped(x, keypoints[:2]), wrapped(x, keypoints[2:4].flip(0)))


def test_probe_reads_clearly_for_a_model_built_to_depend_on_landmarks():
    images, keypoints, issame = _pairs()
    out = keypoint_reliance(_model(30.0), images, keypoints, issame, probe_faces=8)
    assert out["keypoint_bias"] > 1.0 and out["embedding_cosine"]["mean"] < 0.999
    assert all(r["keypoint_bias"] > 0 for r in out["bias_shuffled"])
    with pytest.raises(ValueError, match="do not match"):
        keypoint_reliance(_model(), images[:4], keypoints, issame)


def test_eval_reliance_flag_end_to_end(tmp_path, capsys):
    from face.synth import generate, synth_config

    small = {"ids": 2, "images_per_id": 2, "test_ids": 5, "test_images_per_id": 2, "pairs": 10, "photo_size": 96}
    files = generate(synth_config("tiny", **small), tmp_path / "synth", progress=False)
    save_pretrained(_model(2.0), tmp_path / "model")
    out = tmp_path / "results.json"
    args = ["eval", "--model", str(tmp_path / "model"), "--bin", str(files["aligned"]), "--reliance", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    reliance = json.loads(out.read_text())["reliance"]["aligned"]
    assert set(reliance["accuracy"]) == {"true", "constant", "shuffled"} and reliance["keypoint_bias"] > 0
    printed = capsys.readouterr().out
    assert "reliance" in printed and "kp bias" in printed
