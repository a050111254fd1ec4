"""Fixtures of the gait data-tool tests: hand-made Gait3D raw sequences and one tiny SynthGait set."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

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


@pytest.fixture(scope="session")
def opengait_pretreatment() -> ModuleType:
    """OpenGait's own ``datasets/pretreatment.py`` (from ``$OPENGAIT_ROOT``), loaded as a module.

    Skips with a reason when the variable is unset or the file is missing.
    """
    value = os.environ.get("OPENGAIT_ROOT")
    if not value:
        pytest.skip("set OPENGAIT_ROOT to an OpenGait clone to compare against its datasets/pretreatment.py")
    path = Path(value).expanduser().resolve() / "datasets" / "pretreatment.py"
    if not path.is_file():
        pytest.skip(f"OPENGAIT_ROOT={value} has no datasets/pretreatment.py")
    spec = importlib.util.spec_from_file_location("opengait_datasets_pretreatment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
