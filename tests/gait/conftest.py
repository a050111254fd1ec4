"""Fixtures shared by the gait tests (a tiny OpenGait pickle root: identities differ in silhouette width, so a model
can tell them apart)."""

import importlib
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kprpe_gait.data.formats import JOINT_PKL_NAME, SIL_PKL_NAME


@pytest.fixture(autouse=True)
def one_thread():
    """Test-sized models gain nothing from intra-op threads, and lose a lot when cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def opengait_module():
    """``load("modeling.modules")``: import one of OpenGait's top-level modules from ``$OPENGAIT_ROOT``.

    Skips with a reason when the variable is unset or OpenGait does not import in this interpreter
    (it needs torchvision, opencv, einops, ...: see ``../shared/tools/opengait-venv.sh``).
    """

    def load(module: str):
        root = os.environ.get("OPENGAIT_ROOT")
        if not root:
            pytest.skip("set OPENGAIT_ROOT to an OpenGait clone to compare against its code")
        package_dir = str(Path(root) / "opengait")
        if package_dir not in sys.path:
            sys.path.insert(0, package_dir)
        try:
            return importlib.import_module(module)
        except ImportError as e:
            pytest.skip(f"OpenGait at {root} does not import in this environment: {e}")

    return load


def write_pickle_root(root: Path, num_ids: int = 6, seqs: int = 3, frames=(8, 14), seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = [f"{i:04d}" for i in range(num_ids)]
    for i, identity in enumerate(ids):
        for s in range(seqs):
            t = int(rng.integers(frames[0], frames[1] + 1))
            sils = np.zeros((t, 64, 64), dtype=np.uint8)
            half = 4 + 2 * i
            sils[:, 8:60, 32 - half : 32 + half] = 255
            for f in range(t):  # a swinging "leg", so frames differ
                sils[f, 44:60, 20 + 3 * (f % 8) : 24 + 3 * (f % 8)] = 255
            joints = np.concatenate(
                [rng.uniform(20, 44, (t, 17, 2)), rng.uniform(0.3, 1.0, (t, 17, 1))], axis=-1
            ).astype(np.float32)
            folder = root / identity / f"cam{s % 2}_video{s}" / "seq0"
            folder.mkdir(parents=True)
            with open(folder / SIL_PKL_NAME, "wb") as f:
                pickle.dump(sils, f)
            with open(folder / JOINT_PKL_NAME, "wb") as f:
                pickle.dump(joints, f)
    half = num_ids // 2
    partition = {
        "TRAIN_SET": ids[:half],
        "TEST_SET": ids[half:],
        "PROBE_SET": [f"{identity}-cam0_video0-seq0" for identity in ids[half:]],
    }
    (root / "partition.json").write_text(json.dumps(partition))
    return partition


@pytest.fixture
def pickle_root(tmp_path):
    root = tmp_path / "pkl"
    root.mkdir()
    write_pickle_root(root)
    return root
