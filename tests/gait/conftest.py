"""Fixtures shared by the gait tests."""

import importlib
import os
import sys
from pathlib import Path

import pytest
import torch


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
