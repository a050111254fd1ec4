"""Submission files: exact formats, round trips through the readers, atomic replacement, errors."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from kprpe_gait.eval import submission
from kprpe_gait.eval.submission import (
    nearest_labels,
    read_challenge_csv,
    read_distance_npz,
    read_grew_csv,
    top_k_labels,
    write_challenge_csv,
    write_distance_npz,
    write_grew_csv,
)

# 2 probes x 3 gallery sequences; gallery labels 0007, 0003, 0007
#   probe p0: distances 0.3, 0.1, 0.2 -> ranked 0003, 0007 (3rd item), 0007 (1st item)
#   probe p1: distances 0.5, 0.5, 0.1 -> ranked 0007 (3rd), then the tie 0007 (1st), 0003 (2nd) in gallery order
DIST = np.array([[0.3, 0.1, 0.2], [0.5, 0.5, 0.1]])
GALLERY = ["0007", "0003", "0007"]


def test_top_k_and_nearest_labels():
    np.testing.assert_array_equal(top_k_labels(DIST, GALLERY, 3), [["0003", "0007", "0007"], ["0007", "0007", "0003"]])
    np.testing.assert_array_equal(nearest_labels(torch.tensor(DIST), GALLERY), ["0003", "0007"])
    for k in (0, 4, 1.0, True):
        with pytest.raises(ValueError, match="k must be an integer"):
            top_k_labels(DIST, GALLERY, k)
    with pytest.raises(ValueError, match=r"expected \('P', 2\)"):
        top_k_labels(DIST, GALLERY[:2], 1)


def test_grew_csv_exact_text_and_round_trip(tmp_path):
    path = write_grew_csv(tmp_path / "grew.csv", ["p0", "p1"], GALLERY, DIST, top_k=3)
    # OpenGait's GREW writer: header videoId,rank1..rankK; labels as integers
    assert path.read_text() == "videoId,rank1,rank2,rank3\np0,3,7,7\np1,7,7,3\n"
    assert read_grew_csv(path) == (["p0", "p1"], [["3", "7", "7"], ["7", "7", "3"]])
    raw = write_grew_csv(tmp_path / "raw.csv", ["p0", "p1"], GALLERY, DIST, top_k=2, label_format="raw")
    assert raw.read_text() == "videoId,rank1,rank2\np0,0003,0007\np1,0007,0007\n"


def test_grew_csv_default_has_twenty_ranks(tmp_path):
    rng = np.random.default_rng(0)
    dist = rng.random((4, 30))
    gallery = [f"{i:05d}" for i in rng.integers(0, 12, 30)]
    path = write_grew_csv(tmp_path / "grew.csv", [f"vid{i}" for i in range(4)], gallery, dist)
    header = path.read_text().splitlines()[0]
    assert header == "videoId," + ",".join(f"rank{i}" for i in range(1, 21))
    ids, ranks = read_grew_csv(path)
    assert ids == ["vid0", "vid1", "vid2", "vid3"]
    expected = [[str(int(gallery[j])) for j in np.argsort(row, kind="stable")[:20]] for row in dist]
    assert ranks == expected


def test_grew_template_form_and_zip(tmp_path):
    # GREW-Benchmark's template: a 22nd column rank1_distractor (here the rank-1 label) and CRLF line ends
    path = write_grew_csv(tmp_path / "t.csv", ["p0", "p1"], GALLERY, DIST, top_k=3, form="template")
    assert path.read_bytes() == b"videoId,rank1,rank2,rank3,rank1_distractor\r\np0,3,7,7,3\r\np1,7,7,3,7\r\n"
    assert read_grew_csv(path) == (["p0", "p1"], [["3", "7", "7"], ["7", "7", "3"]])
    archive_path = write_grew_csv(tmp_path / "submission.zip", ["p0", "p1"], GALLERY, DIST, top_k=3)
    with zipfile.ZipFile(archive_path) as archive:
        assert archive.namelist() == ["submission.csv"]
        assert archive.read("submission.csv") == b"videoId,rank1,rank2,rank3\np0,3,7,7\np1,7,7,3\n"
    assert read_grew_csv(archive_path) == read_grew_csv(path)
    with pytest.raises(ValueError, match="GREW form must be one of"):
        write_grew_csv(tmp_path / "x.csv", ["p0", "p1"], GALLERY, DIST, top_k=1, form="codalab")
    with pytest.raises(ValueError, match=r"submissions are \.csv or \.zip"):
        write_grew_csv(tmp_path / "x.txt", ["p0", "p1"], GALLERY, DIST, top_k=1)


def test_grew_csv_errors(tmp_path):
    with pytest.raises(ValueError, match="not an integer"):
        write_grew_csv(tmp_path / "g.csv", ["p0", "p1"], ["a", "b", "c"], DIST, top_k=2)
    with pytest.raises(ValueError, match="k must be an integer in"):
        write_grew_csv(tmp_path / "g.csv", ["p0", "p1"], GALLERY, DIST)  # top_k 20 > 3 gallery items
    with pytest.raises(ValueError, match="cannot be written"):
        write_grew_csv(tmp_path / "g.csv", ["p,0", "p1"], GALLERY, DIST, top_k=1)
    with pytest.raises(ValueError, match="dist has shape"):
        write_grew_csv(tmp_path / "g.csv", ["p0"], GALLERY, DIST, top_k=1)
    with pytest.raises(ValueError, match="label_format"):
        write_grew_csv(tmp_path / "g.csv", ["p0", "p1"], GALLERY, DIST, top_k=1, label_format="hex")
    assert not list(tmp_path.iterdir())  # nothing written by a failed call
    (tmp_path / "bad.csv").write_text("video,rank1\nx,1\n")
    with pytest.raises(ValueError, match="not a GREW submission"):
        read_grew_csv(tmp_path / "bad.csv")


def test_challenge_csv_and_zip(tmp_path):
    labels = nearest_labels(DIST, GALLERY)
    csv_path = write_challenge_csv(tmp_path / "submission.csv", ["v0", "v1"], labels)
    assert csv_path.read_text() == "videoID,label\nv0,0003\nv1,0007\n"
    zip_path = write_challenge_csv(tmp_path / "submission.zip", ["v0", "v1"], labels)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.namelist() == ["submission.csv"]
        assert archive.read("submission.csv").decode() == csv_path.read_text()
    assert read_challenge_csv(zip_path) == read_challenge_csv(csv_path) == (["v0", "v1"], ["0003", "0007"])
    # same predictions, same bytes (fixed member time)
    again = write_challenge_csv(tmp_path / "again.zip", ["v0", "v1"], list(labels))
    assert again.read_bytes() == zip_path.read_bytes()


def test_challenge_errors(tmp_path):
    with pytest.raises(ValueError, match=".csv or .zip"):
        write_challenge_csv(tmp_path / "s.txt", ["v0"], ["1"])
    with pytest.raises(ValueError, match="1 probe video ids but 2 predicted labels"):
        write_challenge_csv(tmp_path / "s.csv", ["v0"], ["1", "2"])
    with pytest.raises(ValueError, match="cannot be written"):
        write_challenge_csv(tmp_path / "s.csv", ["v0"], ["a\nb"])
    with zipfile.ZipFile(tmp_path / "wrong.zip", "w") as archive:
        archive.writestr("other.csv", "videoID,label\n")
    with pytest.raises(ValueError, match="must hold exactly submission.csv"):
        read_challenge_csv(tmp_path / "wrong.zip")


def test_distance_npz_round_trip_without_pickle(tmp_path):
    dist = np.random.default_rng(1).random((2, 3)).astype(np.float32)
    path = write_distance_npz(tmp_path / "d.npz", torch.from_numpy(dist), ["a-c0-s0", "b-c0-s0"],
                              ["a-c1-s0", "b-c1-s0", "c-c0-s0"], ["a", "b"], ["a", "b", "c"], "cos")  # fmt: skip
    with np.load(path, allow_pickle=False) as npz:  # plain arrays only
        assert sorted(npz.files) == ["dist", "gallery_keys", "gallery_labels", "metric", "probe_keys", "probe_labels"]
    content = read_distance_npz(path)
    np.testing.assert_array_equal(content["dist"], dist)
    assert content["dist"].dtype == np.float32
    assert content["probe_keys"] == ["a-c0-s0", "b-c0-s0"]
    assert content["gallery_keys"] == ["a-c1-s0", "b-c1-s0", "c-c0-s0"]
    assert content["probe_labels"] == ["a", "b"] and content["gallery_labels"] == ["a", "b", "c"]
    assert content["metric"] == "cos"
    unlabelled = write_distance_npz(tmp_path / "u.npz", dist, ["x", "y"], ["1", "2", "3"], None, [1, 2, 3], "euc")
    assert read_distance_npz(unlabelled)["probe_labels"] is None
    assert read_distance_npz(unlabelled)["gallery_labels"] == ["1", "2", "3"]


def test_distance_npz_errors(tmp_path):
    dist = np.zeros((2, 3))
    with pytest.raises(ValueError, match="must end in .npz"):
        write_distance_npz(tmp_path / "d.np", dist, ["a", "b"], ["1", "2", "3"], None, ["1", "2", "3"], "euc")
    with pytest.raises(ValueError, match="gallery_keys has 2 entries, dist needs 3"):
        write_distance_npz(tmp_path / "d.npz", dist, ["a", "b"], ["1", "2"], None, ["1", "2", "3"], "euc")
    with pytest.raises(ValueError, match="NaN"):
        write_distance_npz(tmp_path / "d.npz", dist + np.nan, ["a", "b"], ["1", "2", "3"], None, ["1", "2", "3"], "euc")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="lacks"):
        read_distance_npz(tmp_path / "other.npz")


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "d.npz"
    target.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(submission.np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        write_distance_npz(target, np.zeros((1, 1)), ["a"], ["b"], ["a"], ["b"], "euc")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]
