"""kprpe.io: files appear complete or not at all, and no temporary file is left behind."""

import pytest

from kprpe.io import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text


def test_writes_create_folders_and_replace(tmp_path):
    target = tmp_path / "a" / "b.txt"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "c.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="half way"), atomic_open(target, "w") as handle:
        handle.write("half a fi")
        raise RuntimeError("half way")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_atomic_path_suffix_and_cleanup(tmp_path):
    target = tmp_path / "seq.pkl"
    with atomic_path(target, suffix=".part") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".seq.pkl.") and tmp.name.endswith(".part")
        tmp.write_bytes(b"x")
        assert not target.exists()
    assert target.read_bytes() == b"x" and not tmp.exists()


def test_atomic_open_only_writes(tmp_path):
    with pytest.raises(ValueError, match="mode must start with 'w'"), atomic_open(tmp_path / "d", "a"):
        pass
