"""Fixtures of the gait data-tool tests: hand-made Gait3D raw sequences and one tiny SynthGait set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _gait_data_helpers import TINY
from PIL import Image

from kprpe_gait.data.io import format_pose_line
from kprpe_gait.data.synth import generate

RawWriter = Callable[..., None]


@pytest.fixture
def write_raw(tmp_path: Path) -> RawWriter:
    """``write_raw(key, frame, sil=None, pose=None, name=None)`` writes one frame of a raw Gait3D
    sequence under ``tmp_path/Gait3D`` (``2D_Silhouettes`` / ``2D_Poses``); ``name`` overrides the file
    stem (default ``human_crop_f<frame>``, unpadded)."""
    root = tmp_path / "Gait3D"

    def write(
        key: tuple[str, str, str],
        frame: int,
        sil: np.ndarray | None = None,
        pose: np.ndarray | None = None,
        name: str | None = None,
    ) -> None:
        stem = name or f"human_crop_f{frame}"
        if sil is not None:
            path = root.joinpath("2D_Silhouettes", *key, f"{stem}.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(sil).save(path)
        if pose is not None:
            path = root.joinpath("2D_Poses", *key, f"{stem}.txt")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(format_pose_line(pose, (311, 438)))

    write.root = root  # type: ignore[attr-defined]
    return write


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny SynthGait set shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate(out, TINY, workers=1, progress=False)
    return out
