"""XNorm as insightface's ``verification.test`` logs it: the mean L2 norm of the unnormalised embeddings of
the images and of their mirrors, each pass on its own, before any normalisation or fusion."""

import json

import numpy as np
import torch
from test_embed_and_path import StandIn

from face.data import read_verification_bin, write_verification_bin
from face.eval import embed, evaluate_verification, format_table


def insightface_xnorm(model, images, landmarks):
    """The loop of insightface's ``test``: an embeddings array per view (original, mirrored), float64."""
    embeddings_list = []
    x = (images.float() / 255 - 0.5) / 0.5
    mirrored = landmarks[:, [1, 0, 2, 4, 3]].clone()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    with torch.no_grad():
        for view, points in ((x, landmarks), (x.flip(-1), mirrored)):
            embeddings_list.append(model(view, points).numpy().astype(np.float64))
    total, count = 0.0, 0
    for embeddings in embeddings_list:
        for row in embeddings:
            total += np.linalg.norm(row)
            count += 1
    return total / count


def test_xnorm_is_the_mean_norm_of_every_view_before_fusion(tmp_path):
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (20, 3, 16, 16), generator=g, dtype=torch.uint8)
    pixels = torch.rand(20, 5, 2, generator=g) * 15
    write_verification_bin(tmp_path / "set.bin", images, [True, False] * 5, pixels)
    pairs = read_verification_bin(tmp_path / "set.bin")
    model = StandIn().eval()
    result = evaluate_verification(model, pairs, batch_size=7)
    unit = torch.cat([(pixels + 0.5) / 16, torch.ones(20, 5, 1)], -1)
    expected = insightface_xnorm(model, images, unit)
    assert abs(result["xnorm"] - expected) < 1e-5 * expected
    fused = embed(model, images, unit, normalize=False).double().norm(dim=1).mean().item()
    assert abs(result["xnorm"] - fused) > 1e-3  # not the norm of the flip-summed embeddings
    plain = evaluate_verification(model, pairs, flip=False)["xnorm"]  # only the originals without flip
    assert plain != result["xnorm"]
    table = format_table({"verification": {"set": result, "old": {k: v for k, v in result.items() if k != "xnorm"}}})
    assert "XNorm" in table.splitlines()[0] and f"{result['xnorm']:.3f}" in table
    json.dumps(result)  # a plain float in the JSON
