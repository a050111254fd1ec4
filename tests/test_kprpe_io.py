"""kprpe.io: files appear complete or not at all, no temporary file is left behind, and untrusted pickles
and ``.npy`` files are read without running anything."""

import gzip
import io
import pickle

import numpy as np
import pytest

from kprpe.io import (
    UnsafePickleError,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    load_npy,
    safe_pickle_load,
)


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


DATA = (
    [b"\xff\xd8jpeg", b"", bytearray(b"x")],
    [True, False, True],
    {"a": (1, 2.5, None, "text", 3 + 4j), "b": {1, 2}, "c": frozenset({3})},
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.float32(1.5),
    np.zeros(2, dtype=[("x", "<f4"), ("y", "<i8")]),
    np.array([1, "a", None], dtype=object),
)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_pickle_reads_containers_scalars_and_arrays(tmp_path, protocol):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(DATA, protocol=protocol))
    loaded = safe_pickle_load(path)
    for got, want in zip(loaded, DATA):
        assert type(got) is type(want)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        else:
            assert got == want


def test_safe_pickle_reads_numpy_1_module_paths_and_python_2_strings():
    numpy2 = pickle.dumps(np.arange(5, dtype=np.int16), protocol=2)
    numpy1 = numpy2.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in numpy1
    assert np.array_equal(safe_pickle_load(io.BytesIO(numpy1)), np.arange(5))
    # Python 2's pickle.dump(("ab", [True]), f, 2): str is SHORT_BINSTRING, read back as bytes
    python2 = b"\x80\x02U\x02abq\x00]q\x01\x88a\x86q\x02."
    assert safe_pickle_load(io.BytesIO(python2), encoding="bytes") == (b"ab", [True])


def test_safe_pickle_reads_a_gzip_stream_and_names_it(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump((np.ones(3), np.zeros(2)), handle, protocol=2)
    with gzip.open(path, "rb") as handle:
        first, _ = safe_pickle_load(handle, encoding="latin1", where=str(path))
    assert first.tolist() == [1, 1, 1]
    path.write_bytes(path.read_bytes()[:-12])  # truncated stream: a gzip error inside the unpickler
    with gzip.open(path, "rb") as handle, pytest.raises(ValueError, match="mnist.pkl.gz: not a readable"):
        safe_pickle_load(handle, where=str(path))


def test_malicious_pickles_are_refused_unrun(tmp_path, malicious_pickles):
    marker, pickles = malicious_pickles
    for name, data in pickles.items():
        path = tmp_path / "evil.pkl"
        path.write_bytes(data)
        with pytest.raises(UnsafePickleError, match=r"evil\.pkl: refused to load global") as info:
            safe_pickle_load(path, encoding="bytes")
        assert not marker.exists(), name
        assert isinstance(info.value, ValueError)


def test_refusal_names_the_global(tmp_path):
    path = tmp_path / "evil.bin"
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # protocol 0, os.system('true')
    with pytest.raises(ValueError, match=r"evil\.bin: refused to load global os\.system"):
        safe_pickle_load(path)


def test_codecs_encode_rebuilds_latin1_bytes_only():
    good = pickle.dumps(b"\x00\xff", protocol=2)
    assert b"_codecs" in good and safe_pickle_load(io.BytesIO(good)) == b"\x00\xff"
    bad = good.replace(b"latin1", b"rot_13")
    with pytest.raises(ValueError, match="latin-1"):
        safe_pickle_load(io.BytesIO(bad), where="x.pkl")


def test_safe_pickle_wraps_malformed_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        safe_pickle_load(tmp_path / "absent.pkl")
    for data in (b"", b"\x80\x05", b"junk", pickle.dumps(np.arange(9))[:-3], b"\x80\x04h\x07."):
        with pytest.raises(ValueError, match="m.pkl: not a readable data pickle"):
            safe_pickle_load(io.BytesIO(data), where="m.pkl")


def test_load_npy_reads_arrays_and_refuses_pickles(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.eye(2, dtype=np.float32))
    assert load_npy(path).tolist() == [[1, 0], [0, 1]]
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="a.npy: not a readable .npy"):
        load_npy(path)
    np.savez(tmp_path / "b.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="b.npz: expected a .npy"):
        load_npy(tmp_path / "b.npz")
    with pytest.raises(FileNotFoundError, match="landmarks .*c.npy not found"):
        load_npy(tmp_path / "c.npy", "landmarks")
