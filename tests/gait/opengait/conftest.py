"""Fixtures of the tests that run a real OpenGait (marked ``opengait``).

They read ``OPENGAIT_ROOT`` (an OpenGait clone) and skip with a reason when it is unset or when the
running interpreter lacks OpenGait's import-time dependencies. The clone itself is never written to:
runs happen in a copy (OpenGait writes ``output/`` into its working directory).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "gait3d"

#: third-party packages OpenGait's model folder imports when ``modeling.models`` is imported
OPENGAIT_IMPORTS = (
    "torchvision",
    "cv2",
    "einops",
    "kornia",
    "sklearn",
    "lightly",
    "imageio",
    "tensorboard",
    "matplotlib",
)


@pytest.fixture(scope="session")
def opengait_root() -> Path:
    value = os.environ.get("OPENGAIT_ROOT")
    if not value:
        pytest.skip("OPENGAIT_ROOT is not set (point it at an OpenGait clone to run the OpenGait tests)")
    root = Path(value).expanduser().resolve()
    if not (root / "opengait" / "main.py").is_file():
        pytest.skip(f"OPENGAIT_ROOT={root} has no opengait/main.py")
    missing = [name for name in OPENGAIT_IMPORTS if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"this interpreter ({sys.executable}) lacks OpenGait's import-time dependencies: {missing}")
    return root


@pytest.fixture(scope="session")
def opengait_copy(opengait_root, tmp_path_factory) -> Path:
    """A private copy of the clone: runs write output/ there, the shim test writes its file there."""
    dst = tmp_path_factory.mktemp("opengait") / "OpenGait"
    shutil.copytree(opengait_root, dst, ignore=shutil.ignore_patterns("output", "__pycache__", ".git"))
    return dst


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory) -> Path:
    """SynthGait ``tiny``: 8 identities (4 train), 3 sequences each, aligned and misaligned test pickles."""
    from kprpe_gait.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synthgait") / "tiny"
    generate(out, SynthConfig.preset("tiny", seed=0), progress=False)
    return out


@pytest.fixture
def smoke_config() -> Callable[..., Path]:
    """``smoke_config(path, base, data_dir, **sections)``: see :func:`write_smoke_config`."""
    return write_smoke_config


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess]:
    """``run_python(args, cwd, **env)``: see :func:`run_python_checked`."""
    return run_python_checked


@pytest.fixture
def kprpe_gait() -> Callable[..., subprocess.CompletedProcess]:
    """``kprpe_gait(args, cwd, **env)``: the installed ``kprpe-gait`` command, as a user runs it (see :func:`run_checked`)."""
    command = console_script("kprpe-gait")
    return lambda args, cwd, **env: run_checked([command, *args], cwd, **env)


def write_smoke_config(
    path: Path, base: str, data_dir: Path, *, dataset_root: str = "pkl", **sections: dict[str, Any]
) -> Path:
    """Write one of our smoke configs with absolute data paths and section overrides (merged one level deep)."""
    cfg = yaml.safe_load((CONFIGS / base).read_text())
    cfg["data_cfg"]["dataset_root"] = str(data_dir / dataset_root)
    cfg["data_cfg"]["dataset_partition"] = str(data_dir / "partition.json")
    cfg["evaluator_cfg"]["partition"] = str(data_dir / "partition.json")
    cfg["evaluator_cfg"]["results_file"] = str(path.with_suffix(".results.json"))
    for name, values in sections.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(cfg[name].get(key), dict):
                cfg[name][key] = {**cfg[name][key], **copy.deepcopy(value)}
            else:
                cfg[name][key] = copy.deepcopy(value)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_python_checked(args: list[str], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``sys.executable args`` and fail with its output when it does not exit with 0."""
    return run_checked([sys.executable, *args], cwd, timeout, **env)


def run_checked(command: list[str], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``command`` (outside any ``torchrun`` of ours) and fail with its output when it does not exit with 0."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}  # fmt: skip
    environment.update(PYTHONUNBUFFERED="1", **env)
    proc = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    if proc.returncode != 0:
        shown = " ".join(command)
        pytest.fail(f"{shown} exited with {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def console_script(name: str) -> str:
    """The installed command ``name`` of this interpreter's environment (e.g. ``kprpe-gait``)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"no '{name}' command beside {sys.executable} or on PATH: install the project (pip install -e .)")
    return found
