"""IJB-B/C 1:1: template pooling against a loop re-derivation and a hand-computed case, pair scores, the
end-to-end evaluation (aligned crops, flip-summed unnormalised features) and the command."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_embed_and_path import StandIn

from face.align import align_faces
from face.data import load_image, read_ijb, read_ijb_pairs
from face.data.ijb import IJBPairs
from face.eval import (
    IJB_FARS,
    SCORINGS,
    embed,
    evaluate_ijb,
    ijb_features,
    ijb_metrics,
    pair_scores,
    tar_at_far,
    template_features,
)


def loop_template_features(features, templates, medias, faceness, keep_norm, use_faceness):
    """The CVLface / insightface loops, written out: per template, per media mean, sum, normalise."""
    feats = np.array(features, dtype=np.float64)
    if not keep_norm:
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    if use_faceness:
        feats = feats * faceness[:, None]
    out = {}
    for t in sorted(set(templates.tolist())):
        in_t = np.flatnonzero(templates == t)
        total = np.zeros(feats.shape[1])
        for m in sorted(set(medias[in_t].tolist())):
            total += feats[in_t[medias[in_t] == m]].mean(0)
        out[t] = total / np.linalg.norm(total)
    return out


@pytest.mark.parametrize("scoring", list(SCORINGS))
def test_template_pooling_equals_the_reference_loops(scoring):
    rng = np.random.default_rng(0)
    n = 300
    templates = rng.integers(0, 40, n) * 3 + 5  # sparse, unsorted ids
    medias = rng.integers(0, 25, n)  # media ids shared across templates, as a video can be
    features = rng.normal(size=(n, 8)) * rng.uniform(0.5, 3, size=(n, 1))
    faceness = rng.uniform(0.3, 1.0, n)
    keep_norm, use_faceness = SCORINGS[scoring]
    ids, pooled = template_features(features, templates, medias, faceness, keep_norm, use_faceness)
    expected = loop_template_features(features, templates, medias, faceness, keep_norm, use_faceness)
    assert ids.tolist() == sorted(expected) and pooled.dtype == np.float64
    np.testing.assert_allclose(pooled, np.stack([expected[t] for t in ids]), rtol=1e-5, atol=1e-6)


def test_template_pooling_by_hand():
    # template 1: media 10 = images 0, 1 (mean), media 11 = image 2; template 2: image 3
    features = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 4.0], [3.0, 4.0]])
    templates, medias, faceness = np.array([1, 1, 1, 2]), np.array([10, 10, 11, 10]), np.array([1.0, 0.5, 0.25, 1.0])
    ids, pooled = template_features(features, templates, medias, faceness, keep_norm=True, use_faceness=True)
    # (2, 0) and (0, 1) average to (1, 0.5); plus (0, 1) -> (1, 1.5)
    np.testing.assert_allclose(pooled, [np.array([1, 1.5]) / np.hypot(1, 1.5), [0.6, 0.8]], rtol=1e-6)
    _, unit = template_features(features, templates, medias, keep_norm=False, use_faceness=False)
    # unit vectors (1, 0) and (0, 1) average to (0.5, 0.5); plus (0, 1) -> (0.5, 1.5)
    np.testing.assert_allclose(unit[0], np.array([0.5, 1.5]) / np.hypot(0.5, 1.5), rtol=1e-6)
    with pytest.raises(ValueError, match="faceness scores"):
        template_features(features, templates, medias, None)
    with pytest.raises(ValueError, match="not finite"):
        template_features(np.full((4, 2), np.nan), templates, medias, faceness)


def test_pair_scores_are_cosines_in_any_batch():
    rng = np.random.default_rng(3)
    feats = F.normalize(torch.from_numpy(rng.normal(size=(6, 5))), dim=1).numpy().astype(np.float32)
    first, second = rng.integers(0, 6, 20).astype(np.int32), rng.integers(0, 6, 20).astype(np.int32)
    pairs = IJBPairs(np.arange(6) * 2, first, second, rng.integers(0, 2, 20).astype(bool))
    expected = (feats[first] * feats[second]).sum(1)
    np.testing.assert_allclose(pair_scores(feats, pairs, batch=7), expected, rtol=1e-6)
    np.testing.assert_allclose(pair_scores(feats, pairs), expected, rtol=1e-6)


def assert_tars_close(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for far, point in expected.items():
        assert got[far]["resolved"] == point["resolved"]
        for key in ("tar", "far", "threshold"):
            assert got[far][key] == pytest.approx(point[key], rel=1e-5), (far, key)


#: 12 images in 6 templates (two per person, media shared within a template), every template pair listed
BIG_TIDS = {f"{i}.jpg": (10 + i // 2, 200 + i // 4) for i in range(12)}
BIG_PAIRS = [(10 + a, 10 + b, int(a // 2 == b // 2)) for a in range(6) for b in range(a + 1, 6)]


def test_evaluation_embeds_aligned_crops_with_flip_summed_unnormalised_features(tmp_path, write_ijb):
    data = read_ijb(write_ijb(tmp_path / "IJBC", tids=BIG_TIDS, pairs=BIG_PAIRS))
    model = StandIn()
    features = ijb_features(model, data, batch_size=2)
    # the same by hand: each loose crop aligned with its landmarks, rounded to uint8, embedded unnormalised
    crops, keypoints = [], []
    for i in range(len(data)):
        aligned = align_faces(load_image(data.image_path(i)).float()[None], torch.from_numpy(data.landmarks[i])[None])
        crops.append(aligned.images[0].round().clamp(0, 255).to(torch.uint8))
        keypoints.append(aligned.keypoints[0])
    expected = embed(model, torch.stack(crops), torch.stack(keypoints), flip=True, normalize=False)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.linalg.norm(features, axis=1), 1.0)  # the norm is kept for Norm:True

    result = evaluate_ijb(model, data, batch_size=3)
    pairs = read_ijb_pairs(data.pair_file, data.templates)
    assert (result["images"], result["templates"], result["pairs"]) == (12, 6, 15)
    assert (result["positives"], result["negatives"], result["flip"]) == (3, 12, True)
    assert set(result["tar_at_far"]) == set(SCORINGS)
    for scoring, (keep_norm, use_faceness) in SCORINGS.items():
        _, pooled = template_features(features, data.templates, data.medias, data.faceness, keep_norm, use_faceness)
        direct = tar_at_far(pair_scores(pooled, pairs), pairs.same, IJB_FARS)
        assert_tars_close(result["tar_at_far"][scoring], direct)
    assert set(result["tar_at_far"]["Norm:True_Det:True"]) == {f"{far:.0e}" for far in IJB_FARS}
    with pytest.raises(ValueError, match="4 features for the 12 images"):
        ijb_metrics(features[:4], data, pairs)
    # the scorings differ (norms and faceness weights are not all equal), so each is really computed
    scores = {
        name: pair_scores(template_features(features, data.templates, data.medias, data.faceness, *flags)[1], pairs)
        for name, flags in SCORINGS.items()
    }
    assert len({tuple(np.round(v, 6)) for v in scores.values()}) == 3


def test_ijb_through_the_command(tmp_path, monkeypatch, capsys, write_ijb):
    from face.cli import main
    from face.commands import eval as eval_command

    monkeypatch.setattr(eval_command, "_load_model", lambda path: StandIn())
    write_ijb(tmp_path / "IJBB", name="ijbb")
    write_ijb(tmp_path / "other", name="ijbc", seed=1)
    out = tmp_path / "results.json"
    base = ["eval", "--model", "m", "--out", str(out), "--no-progress"]
    assert main(base + ["--ijb", str(tmp_path / "IJBB")]) == 0
    result = json.loads(out.read_text())["ijb"]["IJBB"]
    assert result["pairs"] == 4 and set(result["tar_at_far"]) == set(SCORINGS)
    assert result["tar_readout"] == "field"
    printed = capsys.readouterr().out
    assert "TAR@FAR readout: field" in printed
    assert main(base + ["--ijb", str(tmp_path / "IJBB"), "--tar-readout", "full"]) == 0
    assert json.loads(out.read_text())["ijb"]["IJBB"]["tar_readout"] == "full"
    assert "IJBB scoring" in printed and "Norm:False_Det:True" in printed and "TAR@1e-04" in printed
    assert main(base + ["--ijb", str(tmp_path / "other"), "--ijb-name", "IJBC"]) == 0
    assert set(json.loads(out.read_text())["ijb"]) == {"IJBC"}
    assert main(base + ["--ijb", str(tmp_path / "other"), str(tmp_path / "IJBB"), "--ijb-name", "IJBC"]) == 2
    assert "--ijb-name goes with exactly one --ijb" in capsys.readouterr().err
    (tmp_path / "IJBB" / "meta" / "ijbb_template_pair_label.txt").write_text("7 99 1\n")
    assert main(base + ["--ijb", str(tmp_path / "IJBB")]) == 2  # the pair list fails before the feature pass
    assert "template 99 has no image" in capsys.readouterr().err
