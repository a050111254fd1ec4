import pickle
from collections import Counter

import numpy as np
import pytest

from kprpe_gait.data.formats import JOINT_PKL_NAME
from kprpe_gait.train import GaitDataset, TripletSampler, network_inputs, read_partition, sample_ordered_frames


def test_dataset_reads_the_layout(pickle_root):
    partition = read_partition(pickle_root / "partition.json")
    ds = GaitDataset(pickle_root, ids=partition["TRAIN_SET"])
    assert ds.label_set == ["0000", "0001", "0002"] and len(ds) == 9
    assert ds.keys == sorted(ds.keys) and ds.keys[0].probe_key == "0000-cam0_video0-seq0"
    sils, joints = ds.load(4)
    assert sils.dtype == np.uint8 and sils.shape[1:] == (64, 64) and joints.shape == (len(sils), 17, 3)
    assert all(ds.labels[i] == label for label, idx in ds.indices_by_label.items() for i in idx)
    assert len(GaitDataset(pickle_root)) == 18  # every identity folder


def test_dataset_errors_name_the_problem(pickle_root):
    with pytest.raises(ValueError, match=r"have no sequences.*\['9999'\]"):
        GaitDataset(pickle_root, ids=["0000", "9999"])
    with pytest.raises(FileNotFoundError, match="no dataset folder"):
        GaitDataset(pickle_root / "absent")
    ds = GaitDataset(pickle_root, ids=["0001"])
    path = ds.folder(0) / JOINT_PKL_NAME
    with open(path, "wb") as f:
        pickle.dump(np.zeros((3, 17, 3), np.float32), f)
    with pytest.raises(ValueError, match="mismatched frame counts"):
        ds.load(0)
    with open(path, "wb") as f:
        pickle.dump(np.zeros((3, 5, 3), np.float32), f)
    with pytest.raises(ValueError, match=r"expected \(T, 17, 3\) joints"):
        ds.load(0)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="01-joints.pkl"):
        ds.load(0)
    with pytest.raises(FileNotFoundError, match="no partition"):
        read_partition(pickle_root / "nope.json")


def test_triplet_sampler_draws_p_identities_times_k_sequences():
    by_label = {"a": [0, 1, 2, 3], "b": [4, 5], "c": [6, 7, 8], "d": [9]}
    labels = {i: k for k, v in by_label.items() for i in v}
    sampler = TripletSampler(by_label, (3, 3), np.random.default_rng(0))
    for _ in range(50):
        batch = sampler.next_batch()
        assert len(batch) == 9
        blocks = [batch[i : i + 3] for i in range(0, 9, 3)]
        ids = [labels[b[0]] for b in blocks]
        assert len(set(ids)) == 3  # distinct identities
        for block, identity in zip(blocks, ids):
            assert all(labels[i] == identity for i in block)
            if len(by_label[identity]) >= 3:
                assert len(set(block)) == 3  # without replacement when possible
    again = TripletSampler(by_label, (3, 3), np.random.default_rng(0))
    first = TripletSampler(by_label, (3, 3), np.random.default_rng(0))
    assert [again.next_batch() for _ in range(5)] == [first.next_batch() for _ in range(5)]
    with pytest.raises(ValueError, match="at least one sequence"):
        TripletSampler({"a": []}, (2, 2), np.random.default_rng(0))


def test_sampler_covers_identities_uniformly():
    by_label = {str(i): [i] for i in range(4)}
    sampler = TripletSampler(by_label, (2, 2), np.random.default_rng(1))
    counts = Counter(i for _ in range(400) for i in sampler.next_batch()[::2])
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 150


def test_ordered_frames_follow_opengait_fixed_ordered():
    rng = np.random.default_rng(0)
    for _ in range(100):
        idx = sample_ordered_frames(50, 30, 4, rng)
        assert len(idx) == 30 and len(set(idx)) == 30 and (np.diff(idx) > 0).all()
        assert idx[-1] - idx[0] < 34  # inside one window of frames + skip
    short = sample_ordered_frames(7, 30, 4, rng)  # tiled sequence: every frame, in cycles
    assert len(short) == 30 and set(short) == set(range(7)) and short.max() < 7
    with pytest.raises(ValueError, match="empty"):
        sample_ordered_frames(0, 30, 4, rng)


def test_network_inputs_scale_cut_and_normalise():
    sils = np.zeros((2, 64, 64), np.uint8)
    sils[:, :, 30:34] = 255
    joints = np.array([[[32.0, 16.0, 0.9]] * 17] * 2, np.float32)
    out, j = network_inputs(sils, joints, cut=10)
    assert out.shape == (2, 64, 44) and out.max() == 1.0 and out.dtype == np.float32
    np.testing.assert_allclose(j[0, 0], [22 / 44, 16 / 64, 0.9])


def test_malicious_pickle_is_refused_before_running(pickle_root, malicious_pickles):
    marker, pickles = malicious_pickles
    data = GaitDataset(pickle_root, cache=False)
    for name, payload in pickles.items():
        (data.folder(0) / JOINT_PKL_NAME).write_bytes(payload)
        with pytest.raises(ValueError, match=f"{JOINT_PKL_NAME}: refused to load global"):
            data.load(0)
        assert not marker.exists(), name
