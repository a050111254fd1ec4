import pickle
import struct

import numpy as np
import pytest
import torch

from face.data.images import encode_image
from face.data.verification import read_verification_bin, sidecar_path, write_verification_bin


def _images(count: int, size: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, size, size), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def _python2_pickle(entries: list[bytes], issame: list[bool]) -> bytes:
    """A protocol-2 pickle as Python 2 writes a ``.bin``: the images as ``str`` (BINSTRING opcodes)."""
    out = b"\x80\x02]("  # PROTO 2, EMPTY_LIST, MARK
    for entry in entries:
        out += b"T" + struct.pack("<i", len(entry)) + entry  # BINSTRING
    out += b"e]("  # APPENDS, EMPTY_LIST, MARK
    out += b"".join(b"\x88" if same else b"\x89" for same in issame)  # NEWTRUE / NEWFALSE
    return out + b"e\x86."  # APPENDS, TUPLE2, STOP


def test_reads_python2_bins_and_numpy_entries(tmp_path):
    images = _images(4)
    entries = [encode_image(image) for image in images]
    (tmp_path / "py2.bin").write_bytes(_python2_pickle(entries, [True, False]))
    pairs = read_verification_bin(tmp_path / "py2.bin")
    assert len(pairs) == 2 and pairs.issame.tolist() == [True, False]
    for i in range(4):
        assert torch.equal(pairs.image(i), images[i])  # PNG: lossless
    with open(tmp_path / "np.bin", "wb") as f:
        pickle.dump(([np.frombuffer(e, np.uint8) for e in entries], [1, 0]), f)
    assert torch.equal(torch.stack(read_verification_bin(tmp_path / "np.bin").images()[:]), images)


def test_write_then_read_with_sidecars(tmp_path):
    images = _images(4)
    landmarks = np.random.default_rng(0).uniform(0, 16, (4, 5, 2))
    boxes = np.tile([[1.0, 2.0, 15.0, 16.0]], (4, 1))
    written = write_verification_bin(tmp_path / "set.bin", images, [False, True], landmarks, boxes)
    assert written == [tmp_path / "set.bin", tmp_path / "set.landmarks.npy", tmp_path / "set.boxes.npy"]
    pairs = read_verification_bin(tmp_path / "set.bin")
    np.testing.assert_allclose(pairs.landmarks[..., :2], landmarks, rtol=1e-6)
    assert (pairs.landmarks[..., 2] == 1).all() and pairs.boxes.shape == (4, 4)
    with open(tmp_path / "set.bin", "rb") as f:  # the standard layout readers elsewhere expect
        entries, issame = pickle.load(f, encoding="bytes")
    assert isinstance(entries[0], bytes) and issame == [False, True]
    write_verification_bin(tmp_path / "set.bin", images, [False, True])  # rewritten without sidecars
    assert not sidecar_path(tmp_path / "set.bin", "landmarks").exists()
    assert read_verification_bin(tmp_path / "set.bin").landmarks is None


def test_bad_bins_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        read_verification_bin(tmp_path / "absent.bin")
    (tmp_path / "junk.bin").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.bin: not a verification .bin pickle"):
        read_verification_bin(tmp_path / "junk.bin")
    entries = [encode_image(image) for image in _images(4)]
    entries[3] = entries[3][:40]  # truncated PNG
    with open(tmp_path / "cut.bin", "wb") as f:
        pickle.dump((entries, [True, True]), f)
    pairs = read_verification_bin(tmp_path / "cut.bin")
    pairs.image(2)
    with pytest.raises(ValueError, match="cut.bin entry 3: not a decodable image"):
        pairs.check()
    with open(tmp_path / "odd.bin", "wb") as f:
        pickle.dump((entries[:3], [True, True]), f)
    with pytest.raises(ValueError, match="odd.bin: 3 images for 2 pairs"):
        read_verification_bin(tmp_path / "odd.bin")
    np.save(tmp_path / "cut.landmarks.npy", np.zeros((3, 5, 3)))
    with pytest.raises(ValueError, match=r"cut\.landmarks\.npy: landmarks must be \(4, 5, 3\)"):  # the sidecar is named
        read_verification_bin(tmp_path / "cut.bin")


def test_malicious_bins_are_refused_before_running(tmp_path, malicious_pickles):
    marker, pickles = malicious_pickles
    path = tmp_path / "evil.bin"
    for name, data in pickles.items():
        path.write_bytes(data)
        with pytest.raises(ValueError, match=r"evil\.bin: refused to load global"):
            read_verification_bin(path)
        assert not marker.exists(), name


def test_issame_must_be_booleans(tmp_path):
    path = tmp_path / "odd.bin"
    path.write_bytes(pickle.dumps(([b"a", b"b"], ["yes"]), protocol=2))
    with pytest.raises(ValueError, match=r"odd\.bin: issame must be a list of booleans"):
        read_verification_bin(path)
