import struct

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from face.data.recordio import (
    MAGIC,
    RecordFaceDataset,
    RecordIOReader,
    RecordIOWriter,
    pack_record,
    unpack_record,
    write_face_recordio,
)


def _faces(count: int = 6, size: int = 24) -> list[tuple[torch.Tensor, int]]:
    g = torch.Generator().manual_seed(0)
    # smooth images so JPEG round trips closely
    base = torch.rand(count, 3, 4, 4, generator=g) * 255
    images = torch.nn.functional.interpolate(base, (size, size), mode="bilinear").round().to(torch.uint8)
    return [(images[i], i // 2) for i in range(count)]  # labels 0,0,1,1,2,2


def test_record_bytes_match_the_mxnet_layout(tmp_path):
    """A record written by hand from the format description reads back; the writer writes the same bytes."""
    payload = b"abcdefg"  # 7 bytes -> 1 byte padding
    body = struct.pack("<IfQQ", 0, 3.0, 5, 0) + payload  # IRHeader: flag 0, label 3.0, id 5
    record = struct.pack("<II", 0xCED7230A, len(body)) + body + b"\0" * ((-len(body)) % 4)
    (tmp_path / "h.rec").write_bytes(record)
    (tmp_path / "h.idx").write_text("7\t0\n")
    with RecordIOReader(tmp_path / "h.rec") as reader:
        header, rest = unpack_record(reader.read(7))
    assert (header.flag, header.label, header.id, rest) == (0, 3.0, 5, payload)
    with RecordIOWriter(tmp_path / "w.rec") as writer:
        writer.write(7, pack_record(3.0, payload, id=5))
    assert (tmp_path / "w.rec").read_bytes() == record
    assert (tmp_path / "w.idx").read_text() == "7\t0\n"


def test_payload_containing_the_magic_is_split_and_joined(tmp_path):
    magic = struct.pack("<I", MAGIC)
    payload = b"1234" + magic + b"56785678" + magic + b"xy"  # magic at aligned offsets 4 and 16
    with RecordIOWriter(tmp_path / "s.rec") as writer:
        writer.write(0, payload)
        writer.write(1, b"tail")
    raw = (tmp_path / "s.rec").read_bytes()
    flags = []
    position = 0
    while position < len(raw):
        magic_word, lrecord = struct.unpack("<II", raw[position : position + 8])
        assert magic_word == MAGIC
        length = lrecord & ((1 << 29) - 1)
        flags.append(lrecord >> 29)
        position += 8 + length + (-length) % 4
    assert flags == [1, 2, 3, 0]  # three parts, then the next whole record
    with RecordIOReader(tmp_path / "s.rec") as reader:
        assert reader.read(0) == payload and reader.read(1) == b"tail"


def test_face_recordio_round_trip_with_header_record_and_landmarks(tmp_path):
    faces = _faces()
    assert write_face_recordio(tmp_path / "train.rec", faces) == 6
    landmarks = np.random.default_rng(0).uniform(0, 24, (6, 5, 3)).astype(np.float32)
    np.save(tmp_path / "train.landmarks.npy", landmarks)
    data = RecordFaceDataset(tmp_path / "train.rec")
    assert len(data) == 6 and data.keys == [1, 2, 3, 4, 5, 6]
    header, _ = unpack_record(data.reader.read(0))
    assert header.flag == 2 and header.label.tolist() == [7.0, 10.0]  # images 1..6, identity records 7..9
    ranges = [unpack_record(data.reader.read(k))[0].label.tolist() for k in (7, 8, 9)]
    assert ranges == [[1.0, 3.0], [3.0, 5.0], [5.0, 7.0]]
    assert data.labels.tolist() == [label for _, label in faces]
    for i, (image, label) in enumerate(faces):
        got, points, got_label = data[i]
        assert got_label == label and got.shape == (3, 24, 24) and got.dtype == torch.uint8
        assert (got.int() - image.int()).abs().float().mean() < 3  # JPEG quality 95
        np.testing.assert_array_equal(points.numpy(), landmarks[i])


def test_label_arrays_take_the_first_value_and_no_header_means_every_key(tmp_path):
    from face.data.images import encode_image

    jpeg = encode_image(_faces(1)[0][0], "jpeg")
    with RecordIOWriter(tmp_path / "a.rec") as writer:
        writer.write(3, pack_record([4.0, 9.0], jpeg))
        writer.write(8, pack_record(2.0, jpeg))
    data = RecordFaceDataset(tmp_path / "a.rec")
    assert data.keys == [3, 8] and [data.label(0), data.label(1)] == [4, 2] and data.labels.tolist() == [4, 2]
    assert torch.isnan(data[0][1][:, :2]).all() and (data[0][1][:, 2] == 0).all()  # no landmarks: missing


def test_loader_workers_open_their_own_handles(tmp_path):
    write_face_recordio(tmp_path / "train.rec", _faces())
    data = RecordFaceDataset(tmp_path / "train.rec")
    data[0]  # the parent opens a handle before the workers start
    loader = DataLoader(data, batch_size=2, num_workers=2)
    labels = torch.cat([batch[2] for batch in loader])
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_corrupt_and_absent_files_are_named(tmp_path):
    write_face_recordio(tmp_path / "train.rec", _faces())
    with pytest.raises(FileNotFoundError, match="nothere.idx"):
        RecordIOReader(tmp_path / "train.rec", tmp_path / "nothere.idx")
    offsets = dict(line.split("\t") for line in (tmp_path / "train.idx").read_text().split("\n") if line)
    raw = bytearray((tmp_path / "train.rec").read_bytes())
    raw[int(offsets["3"])] ^= 0xFF  # break the magic of record 3
    start = int(offsets["5"]) + 8 + 24 + 2  # inside record 5's JPEG
    raw[start : start + 64] = bytes(64)
    (tmp_path / "train.rec").write_bytes(bytes(raw))
    data = RecordFaceDataset(tmp_path / "train.rec")
    with pytest.raises(ValueError, match=r"train.rec: record 3 \(byte \d+\): corrupt record \(magic"):
        data[2]
    with pytest.raises(ValueError, match="train.rec: record 5: not a decodable image"):
        data[4]
    (tmp_path / "train.rec").write_bytes(bytes(raw[: int(offsets["6"]) + 20]))
    with pytest.raises(ValueError, match="record 6 .*truncated"):
        RecordIOReader(tmp_path / "train.rec").read(6)
    (tmp_path / "bad.idx").write_text("1 0\n")
    with pytest.raises(ValueError, match="bad.idx:1: expected 'key<TAB>offset'"):
        RecordIOReader(tmp_path / "train.rec", tmp_path / "bad.idx")
