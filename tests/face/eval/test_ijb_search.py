"""IJB-B/C 1:N identification against a transcription of insightface's ``ijb_1n.py`` on a synthetic IJB
layout, a hand-computed case, the list reader's errors and the command."""

import json
import math

import numpy as np
import pytest
from test_embed_and_path import StandIn

from face.data import read_ijb, read_ijb_search
from face.data.ijb import IJBSet
from face.eval import SCORINGS, ijb_features, ijb_search_metrics, search_metrics, template_features


def transcribed_template_features(img_feats, templates, medias, choose_templates, choose_ids):
    """``ijb_1n.py``'s ``image2template_feature``: per chosen template, media means summed, then divided by
    the norm; subjects from each template's first row."""
    unique_templates, indices = np.unique(choose_templates, return_index=True)
    subjects = choose_ids[indices]
    feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for k, t in enumerate(unique_templates):
        in_t = np.where(templates == t)[0]
        media_feats = []
        for m in np.unique(medias[in_t]):
            media_feats.append(np.mean(img_feats[in_t[medias[in_t] == m]], 0, keepdims=True))
        feats[k] = np.sum(np.array(media_feats), 0)
    return feats / np.sqrt(np.sum(feats**2, -1, keepdims=True)), unique_templates, subjects


def transcribed_evaluation(query, gallery, mask, fars=(0.01, 0.1)):
    """``ijb_1n.py``'s ``gen_mask``-indexed ``evaluation``: top-1/5/10 by ``argsort``, then the
    ``ceil(P * far)``-th highest non-mate score as threshold and the share of mate scores above it."""
    similarity = np.dot(query, gallery.T)
    top = np.argsort(-similarity)
    out = {f"rank{k}": np.mean([mask[i] in top[i, :k] for i in range(len(query))]) for k in (1, 5, 10)}
    required = [math.ceil(len(query) * far) for far in fars]
    positives = []
    for i in range(len(query)):
        positives.append(similarity[i, mask[i]])
        similarity[i, mask[i]] = -2.0
    negatives = sorted(similarity[similarity > -2.0], reverse=True)[: max(required)]
    for far, count in zip(fars, required):
        threshold = negatives[count - 1]
        out[f"{far:.0e}"] = (np.sum(np.array(positives) > threshold) / len(query), threshold)
    return out


def _synthetic_ijb(tmp_path, seed=0):
    """IJB-C-like lists without images: 40 subjects, one gallery template each (G1: 0-19, G2: 20-39), two or
    three probe templates per subject, images in shared media, features = subject centre + noise."""
    rng = np.random.default_rng(seed)
    gallery_rows = {"G1": [], "G2": []}
    probe_rows, templates, medias, subjects_of_image = [], [], [], []
    next_template = 1000
    for subject in range(40):
        for role in ["gallery"] + ["probe"] * int(rng.integers(2, 4)):
            tid = next_template + int(rng.integers(1, 5))
            next_template = tid
            for _ in range(int(rng.integers(1, 5))):
                templates.append(tid)
                medias.append(int(rng.integers(0, 60)))
                subjects_of_image.append(subject)
            target = gallery_rows["G1" if subject < 20 else "G2"] if role == "gallery" else probe_rows
            target += [(tid, 500 + subject)] * int(rng.integers(1, 3))  # one CSV row per image
    meta = tmp_path / "IJBC" / "meta"
    meta.mkdir(parents=True)
    for stem, rows in (("1N_gallery_G1", gallery_rows["G1"]), ("1N_gallery_G2", gallery_rows["G2"])):
        (meta / f"ijbc_{stem}.csv").write_text(
            "TEMPLATE_ID,SUBJECT_ID,FILENAME\n" + "".join(f"{t},{s},x.jpg\n" for t, s in rows)
        )
    (meta / "ijbc_1N_probe_mixed.csv").write_text(
        "TEMPLATE_ID,SUBJECT_ID\n" + "".join(f"{t},{s}\n" for t, s in probe_rows)
    )
    n = len(templates)
    centres = rng.normal(size=(40, 16))
    features = (centres[subjects_of_image] * 0.6 + rng.normal(size=(n, 16))) * rng.uniform(0.5, 2, (n, 1))
    data = IJBSet(
        root=tmp_path / "IJBC",
        name="IJBC",
        images=[f"{i}.jpg" for i in range(n)],
        landmarks=np.zeros((n, 5, 2), np.float32),
        faceness=rng.uniform(0.3, 1.0, n).astype(np.float32),
        templates=np.array(templates),
        medias=np.array(medias),
        pair_file=meta / "unused.txt",
    )
    return data, features.astype(np.float32), gallery_rows, probe_rows


@pytest.mark.parametrize("seed", [0, 1])
def test_ijb_1n_equals_the_transcription_of_ijb_1n_py(tmp_path, seed):
    data, features, gallery_rows, probe_rows = _synthetic_ijb(tmp_path, seed)
    search = read_ijb_search(data)
    result = ijb_search_metrics(features, data, search)
    assert result["galleries"] == ["G1", "G2"] and result["gallery"] == 40
    for scoring, (keep_norm, use_faceness) in SCORINGS.items():
        img = features.copy()
        if not keep_norm:
            img = img / np.sqrt(np.sum(img**2, -1, keepdims=True))
        if use_faceness:
            img = img * data.faceness[:, None]
        gallery_pairs = np.array(gallery_rows["G1"] + gallery_rows["G2"])
        g_feats, _, g_ids = transcribed_template_features(img, data.templates, data.medias, *gallery_pairs.T)
        p_feats, _, p_ids = transcribed_template_features(img, data.templates, data.medias, *np.array(probe_rows).T)
        mask = [int(np.flatnonzero(g_ids == q)[0]) for q in p_ids]
        expected = transcribed_evaluation(p_feats, g_feats, mask)
        ours = result["scorings"][scoring]
        assert ours["probes"] == len(p_ids)
        for k in (1, 5, 10):
            assert ours[f"rank{k}"] == pytest.approx(expected[f"rank{k}"], abs=1e-12)
        for fpir in ("1e-02", "1e-01"):
            tpir, threshold = expected[fpir]
            assert ours["tpir_at_fpir"][fpir]["tpir"] == pytest.approx(tpir, abs=1e-12)
            # image features are weighted in float32 here and there, in different orders: float32 rounding
            assert ours["tpir_at_fpir"][fpir]["threshold"] == pytest.approx(threshold, abs=1e-6)
        assert 0 < ours["rank1"] < ours["rank10"] <= 1  # a non-trivial search: the comparison can fail
    # probes scored a few at a time: the same numbers
    _, pooled = template_features(features, data.templates, data.medias, data.faceness)
    ids = np.unique(data.templates)
    probes = pooled[np.searchsorted(ids, search.probe_templates)]
    gallery = pooled[np.searchsorted(ids, search.gallery_templates)]
    assert search_metrics(probes, gallery, search.mates, chunk=7) == result["scorings"]["Norm:True_Det:True"]


def test_search_metrics_by_hand():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    probes = np.array([[0.8, 0.6], [0.6, 0.8], [-0.6, 0.8]])
    mates = np.array([0, 0, 2])
    # similarities: p0 [0.8, 0.6, -0.8], p1 [0.6, 0.8, -0.6], p2 [-0.6, 0.8, 0.6]
    result = search_metrics(probes, gallery, mates, fpirs=(0.34, 0.67), ranks=(1, 2), chunk=2)
    assert result["rank1"] == pytest.approx(1 / 3) and result["rank2"] == 1.0
    # non-mates, highest first: 0.8 (p1), 0.8 (p2), 0.6 (p0), -0.6 (p0?) ...; ceil(3 * .34) = 2 -> 0.8
    assert result["tpir_at_fpir"]["3e-01"] == {"tpir": 0.0, "threshold": 0.8}
    # ceil(3 * .67) = 3 -> 0.6: mate scores 0.8, 0.6, 0.6 -> only p0 strictly above
    assert result["tpir_at_fpir"]["7e-01"]["tpir"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="non-mate scores"):
        search_metrics(probes, gallery, mates, fpirs=(3.0,))
    with pytest.raises(ValueError, match="needs a mate"):
        search_metrics(probes, gallery, np.array([0, 0, 3]))


def _lists(tmp_path, g1, g2, probes):
    data, *_ = _synthetic_ijb(tmp_path)
    meta = data.root / "meta"
    for stem, rows in (("1N_gallery_G1", g1), ("1N_gallery_G2", g2), ("1N_probe_mixed", probes)):
        (meta / f"ijbc_{stem}.csv").write_text("TEMPLATE_ID,SUBJECT_ID\n" + "".join(f"{t},{s}\n" for t, s in rows))
    return data


def test_search_lists_fail_clearly(tmp_path):
    data, *_ = _synthetic_ijb(tmp_path / "a")
    t = np.unique(data.templates).tolist()
    cases = [
        (([(t[0], 1)], [(t[1], 2)], [(t[2], 3)]), "probe subject.*without a gallery template"),
        (([(t[0], 1)], [(t[1], 1)], [(t[2], 1)]), "several gallery templates"),
        (([(t[0], 1)], [(t[0], 1)], [(t[2], 1)]), "in both galleries"),
        (([(t[0], 1), (t[0], 2)], [(t[1], 3)], [(t[2], 1)]), f"template {t[0]} listed with subjects 1 and 2"),
        (([(99999, 1)], [(t[1], 2)], [(t[2], 1)]), "without images in the set"),
    ]
    for k, (lists, message) in enumerate(cases):
        with pytest.raises(ValueError, match=message):
            read_ijb_search(_lists(tmp_path / str(k), *lists))
    (data.root / "meta" / "ijbc_1N_gallery_G2.csv").unlink()
    with pytest.raises(FileNotFoundError, match="ijbc_1N_gallery_G2.csv"):
        read_ijb_search(data)


def test_ijb_1n_through_the_command(tmp_path, monkeypatch, capsys, write_ijb):
    from face.cli import main
    from face.commands import eval as eval_command

    monkeypatch.setattr(eval_command, "_load_model", lambda path: StandIn())
    tids = {f"{i}.jpg": (10 + i // 2, 200 + i // 3) for i in range(12)}  # templates 10..15
    search = {
        "1N_gallery_G1": [(10, 1), (11, 2)],
        "1N_gallery_G2": [(12, 3)],
        "1N_probe_mixed": [(13, 1), (14, 2), (15, 3)],
    }
    root = write_ijb(tmp_path / "IJBC", tids=tids, pairs=[(10, 13, 1), (11, 13, 0)], search=search)
    out = tmp_path / "results.json"
    base = ["eval", "--model", "m", "--ijb", str(root), "--out", str(out), "--no-progress"]
    assert main(base + ["--ijb-protocol", "both"]) == 0
    results = json.loads(out.read_text())
    assert set(results["ijb"]["IJBC"]["tar_at_far"]) == set(SCORINGS)
    found = results["ijb_1n"]["IJBC"]
    assert (found["probes"], found["gallery"], found["galleries"]) == (3, 3, ["G1", "G2"])
    data = read_ijb(root)
    expected = ijb_search_metrics(ijb_features(StandIn(), data), data, read_ijb_search(data))
    assert found["scorings"] == json.loads(json.dumps(expected["scorings"]))
    printed = capsys.readouterr().out
    assert "IJBC 1:N scoring" in printed and "TPIR@1e-02" in printed and "G1 + G2" in printed
    assert main(base + ["--ijb-protocol", "1:N"]) == 0
    assert "IJBC" not in json.loads(out.read_text())["ijb"]
    (root / "meta" / "ijbc_1N_probe_mixed.csv").write_text("TEMPLATE_ID,SUBJECT_ID\n13,9\n")
    assert main(base + ["--ijb-protocol", "1:N"]) == 2  # fails before the feature pass
    assert "without a gallery template" in capsys.readouterr().err
