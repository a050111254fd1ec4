"""Reading OpenGait's pickle layout: one sequence per ``<root>/<id>/<type>/<view>/`` folder.

Each folder holds ``00-sils.pkl`` (T, H, W) uint8 and ``01-joints.pkl`` (T, J, 3) float32 in pixels of
that frame (:mod:`kprpe_gait.data.formats`). Both must hold the same frames; anything else is an error
that names the file.

Silhouette-only data (``GaitDataset(..., joints=False)``: OpenGait's GREW / HID / MGR pickles, one
``<name>.pkl`` per folder) is read as OpenGait reads it with ``data_in_use: [true, ...]``: the first
``.pkl`` of the folder by file name (``00-sils.pkl`` when present); no joint file is needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kprpe_gait.data.formats import JOINT_PKL_NAME, NUM_JOINTS, PARTITION_KEYS, SIL_PKL_NAME, probe_key
from kprpe_gait.data.io import load_array_pickle

__all__ = ["GaitDataset", "SequenceKey", "read_partition"]


@dataclass(frozen=True, order=True)
class SequenceKey:
    """``(identity, type, view)`` of a sequence folder (Gait3D: id, camera/video, sequence)."""

    identity: str
    seq_type: str
    view: str

    @property
    def probe_key(self) -> str:
        """Gait3D's ``"id-type-view"`` string (the form of ``PROBE_SET``)."""
        return probe_key(self.identity, self.seq_type, self.view)


def read_partition(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """A Gait3D-style partition JSON: ``TRAIN_SET``, ``TEST_SET`` and ``PROBE_SET`` lists of strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no partition file at {path}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError, which do not name the file
        raise ValueError(f"partition {path}: not UTF-8 JSON ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"partition {path}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in PARTITION_KEYS if k not in data]
    if missing:
        raise ValueError(f"partition {path} lacks {missing}; expected keys {list(PARTITION_KEYS)}")
    for key in PARTITION_KEYS:
        if not isinstance(data[key], list) or not all(isinstance(v, (str, int)) for v in data[key]):
            raise ValueError(f"partition {path}: {key} must be a list of names, got {str(data[key])[:80]}")
    return {k: [str(v) for v in data[k]] for k in PARTITION_KEYS}


def _first_pickle(folder: Path) -> Path:
    """The silhouette file of a silhouette-only folder: the first ``.pkl`` by name (OpenGait's index 0)."""
    pickles = sorted(p for p in folder.iterdir() if p.suffix == ".pkl" and p.is_file())
    if not pickles:
        raise FileNotFoundError(f"no .pkl file in the sequence folder {folder}")
    return pickles[0]


def _load_pickle(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}")
    return load_array_pickle(path)


class GaitDataset:
    """The sequences of some identities under an OpenGait pickle root, loaded on first use and kept.

    Args:
        root: folder with ``<id>/<type>/<view>/`` sequence folders.
        ids: identities to use (all found when ``None``); a listed identity without sequences is an error.
        num_joints: joints per frame the files must hold.
        cache: keep loaded arrays in memory.
        joints: ``False``: silhouettes only (module docstring); :meth:`load` then returns ``(sils, None)``.

    Attributes:
        keys: :class:`SequenceKey` of every sequence, sorted.
        label_set: sorted identities; ``label_index[identity]`` is the class index used in training.
        indices_by_label: sequence indices of each identity.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        ids: Iterable[str] | None = None,
        num_joints: int = NUM_JOINTS,
        cache: bool = True,
        joints: bool = True,
    ) -> None:
        self.root = Path(root)
        self.joints = joints
        if not self.root.is_dir():
            raise FileNotFoundError(f"no dataset folder at {self.root}")
        wanted = None if ids is None else sorted({str(i) for i in ids})
        identities = wanted if wanted is not None else sorted(p.name for p in self.root.iterdir() if p.is_dir())
        keys = []
        for identity in identities:
            for seq_type in sorted(p for p in (self.root / identity).glob("*") if p.is_dir()):
                for view in sorted(p for p in seq_type.iterdir() if p.is_dir()):
                    keys.append(SequenceKey(identity, seq_type.name, view.name))
        found = {k.identity for k in keys}
        if wanted is not None and set(wanted) - found:
            absent = sorted(set(wanted) - found)
            raise ValueError(f"{len(absent)} requested identities have no sequences under {self.root}: {absent[:10]}")
        if not keys:
            raise ValueError(f"no sequence folders <id>/<type>/<view>/ under {self.root}")
        self.keys = sorted(keys)
        self.num_joints = num_joints
        self.label_set = sorted(found)
        self.label_index = {label: i for i, label in enumerate(self.label_set)}
        self.labels = [k.identity for k in self.keys]
        self.indices_by_label: dict[str, list[int]] = {label: [] for label in self.label_set}
        for i, k in enumerate(self.keys):
            self.indices_by_label[k.identity].append(i)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.keys)

    def folder(self, index: int) -> Path:
        k = self.keys[index]
        return self.root / k.identity / k.seq_type / k.view

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(sils (T, H, W) uint8, joints (T, J, 3) float32)`` of sequence ``index`` (joints ``None``
        when the dataset reads silhouettes only)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        folder = self.folder(index)
        sil_path = folder / SIL_PKL_NAME if self.joints else _first_pickle(folder)
        sils = _load_pickle(sil_path)
        if sils.ndim != 3 or sils.shape[0] == 0:
            raise ValueError(f"{sil_path}: expected (T, H, W) silhouettes with T > 0, got {sils.shape}")
        if not self.joints:
            if self._cache is not None:
                self._cache[index] = (sils, None)
            return sils, None
        joints = _load_pickle(folder / JOINT_PKL_NAME).astype(np.float32, copy=False)
        if joints.ndim != 3 or joints.shape[1:] != (self.num_joints, 3):
            raise ValueError(
                f"{folder / JOINT_PKL_NAME}: expected (T, {self.num_joints}, 3) joints, got {joints.shape}"
            )
        if joints.shape[0] != sils.shape[0]:
            raise ValueError(
                f"{folder}: {sils.shape[0]} silhouette frames but {joints.shape[0]} joint frames "
                "(mismatched frame counts)"
            )
        if self._cache is not None:
            self._cache[index] = (sils, joints)
        return sils, joints

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, sequences={len(self)}, identities={len(self.label_set)})"
        )
