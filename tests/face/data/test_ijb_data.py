"""IJB-B/C meta files: joined by image name, pair lists read in chunks, every malformed input named."""

import numpy as np
import pytest

from face.data import iter_pair_chunks, read_ijb, read_ijb_pairs

#: image -> (template, media)
TIDS = {"a.jpg": (7, 100), "b.jpg": (7, 100), "c.jpg": (7, 101), "d.jpg": (9, 100), "e.jpg": (12, 102)}
PAIRS = [(7, 9, 0), (7, 12, 1), (9, 12, 0), (12, 7, 1)]


def test_images_are_joined_to_templates_and_media_by_name(tmp_path, write_ijb):
    data = read_ijb(write_ijb(tmp_path / "IJBC", tids=TIDS, pairs=PAIRS))
    assert data.name == "IJBC" and len(data) == 5 and data.images == list(TIDS)
    assert data.templates.tolist() == [t for t, _ in TIDS.values()]
    assert data.medias.tolist() == [m for _, m in TIDS.values()]
    assert data.landmarks.shape == (5, 5, 2) and data.faceness.shape == (5,) and (data.faceness >= 0.5).all()
    assert data.image_path(2) == tmp_path / "IJBC" / "loose_crop" / "c.jpg"
    pairs = read_ijb_pairs(data.pair_file, data.templates)
    assert pairs.template_ids.tolist() == [7, 9, 12]
    assert pairs.first.tolist() == [0, 0, 1, 2] and pairs.second.tolist() == [1, 2, 2, 0]
    assert pairs.same.tolist() == [False, True, False, True] and len(pairs) == 4


def test_the_set_is_named_by_its_folder_or_explicitly(tmp_path, write_ijb):
    root = write_ijb(tmp_path / "somewhere", name="ijbb")
    assert read_ijb(root, "ijbb").name == "IJBB"
    with pytest.raises(ValueError, match="unknown IJB set 'SOMEWHERE'"):
        read_ijb(root)
    with pytest.raises(FileNotFoundError, match="ijbc_name_5pts_score.txt not found"):
        read_ijb(root, "IJBC")
    with pytest.raises(FileNotFoundError, match="IJB folder .* not found"):
        read_ijb(tmp_path / "IJBB")


def test_pair_lists_read_in_chunks_equal_one_read(tmp_path):
    rng = np.random.default_rng(1)
    rows = np.stack([rng.integers(0, 50, 1000), rng.integers(0, 50, 1000), rng.integers(0, 2, 1000)], 1)
    path = tmp_path / "pairs.txt"
    path.write_text("".join(f"{a} {b} {c}\n" for a, b, c in rows))
    chunks = list(iter_pair_chunks(path, chunk_bytes=64))
    assert len(chunks) > 10 and np.array_equal(np.concatenate(chunks), rows)
    whole = read_ijb_pairs(path, np.arange(50))
    small = read_ijb_pairs(path, np.arange(50), chunk_bytes=64)
    for field in ("template_ids", "first", "second", "same"):
        assert np.array_equal(getattr(whole, field), getattr(small, field))
    assert np.array_equal(whole.first, rows[:, 0]) and whole.first.dtype == np.int32


@pytest.mark.parametrize(
    "meta, content, message",
    [
        ("name_5pts_score", "1.jpg 1 2 3\n", r"ijbc_name_5pts_score.txt:1: expected 12 fields, got 4"),
        ("name_5pts_score", "1.jpg" + " 1" * 9 + " x 0.9\n", r"row 1: not a number"),
        ("name_5pts_score", ("1.jpg" + " 1" * 11 + "\n") * 2, "1.jpg listed twice"),
        ("face_tid_mid", "1.jpg 7\n", r"ijbc_face_tid_mid.txt:1: expected 3 fields"),
        ("face_tid_mid", "1.jpg 7 100\n", r"no template for 4 image\(s\)"),
        ("face_tid_mid", "1.jpg 7 100\n1.jpg 7 101\n", r"1.jpg listed twice \(rows 1 and 2\)"),
        ("face_tid_mid", "".join(f"{i}.jpg 1 1\n" for i in range(1, 7)), r"no landmarks for 1 image\(s\).*6.jpg"),
    ],
)
def test_malformed_meta_files_are_named(tmp_path, write_ijb, meta, content, message):
    root = write_ijb(tmp_path / "IJBC")
    (root / "meta" / f"ijbc_{meta}.txt").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_ijb(root)


@pytest.mark.parametrize(
    "content, message",
    [
        ("7 9 1\n7 11 0\n", r"pair 2: template 11 has no image"),
        ("7 9 1\n7 9 2\n", r"pair 2: label must be 0 or 1, got 2"),
        ("7 9 1\n7 9\n9 7 0\n", r"pairs.txt:2: expected 'template template label', got '7 9'"),
        ("7 9 1\n7 nine 1\n", r"pairs.txt:2: expected"),
        ("", "no pairs"),
    ],
)
def test_malformed_pair_lists_are_named(tmp_path, content, message):
    path = tmp_path / "pairs.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_ijb_pairs(path, np.array([7, 9, 12]))
