"""Session-wide test setup.

Without CUDA, Triton kernels (``kprpe.core.triton_attention``) can only run in Triton's CPU interpreter,
which must be chosen before ``triton`` is first imported; PyTorch itself never uses Triton on CPU.

Tests marked ``opengait`` need an OpenGait clone at ``$OPENGAIT_ROOT`` and skip without one. With
``KPRPE_REQUIRE_OPENGAIT=1`` (CI, where the clone is there) such a skip is an error instead, so a
broken environment cannot pass as a green run. Some tests import OpenGait's modules straight from the
clone: their bytecode goes to a cache outside it (``PYTHONPYCACHEPREFIX``, inherited by subprocesses),
so the tests never write into ``$OPENGAIT_ROOT``.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


class _Call:
    """Pickles as ``func(*args)``: what a malicious pickle makes the unpickler run."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _malicious_pickles(marker) -> dict:
    """``name -> pickle bytes`` whose unpickling would create the file ``marker`` (none must run).

    Built with ``pickle.dumps`` of reduce tuples, so nothing runs while building them; each hides its
    call at another place or behind another callable that an unpickler could be talked into.
    """
    import builtins
    import os
    import pathlib
    import pickle
    import subprocess

    import numpy as np

    marker = str(marker)
    touch = f"open({marker!r}, 'w').close()"
    return {
        "os.system": pickle.dumps(_Call(os.system, f"touch {marker}")),
        "subprocess": pickle.dumps(_Call(subprocess.call, ["touch", marker])),
        "builtins.eval": pickle.dumps(_Call(builtins.eval, touch)),
        "builtins.exec, protocol 0": pickle.dumps(_Call(builtins.exec, touch), protocol=0),
        "builtins.open": pickle.dumps(_Call(builtins.open, marker, "w")),
        "pathlib.Path.touch": pickle.dumps(_Call(pathlib.Path.touch, pathlib.Path(marker))),
        "inside a valid (images, issame) pair": pickle.dumps(([b"x", b"y"], [_Call(os.system, f"touch {marker}")])),
        "in a numpy object array": pickle.dumps(np.array([_Call(builtins.eval, touch)], dtype=object)),
        "Python 2 names (__builtin__.eval)": pickle.dumps(_Call(builtins.eval, touch), protocol=2),
    }


@pytest.fixture
def malicious_pickles(tmp_path):
    """``(marker path, {name: pickle bytes})``: each pickle would create ``marker`` if it ran."""
    marker = tmp_path / "payload-ran"
    return marker, _malicious_pickles(marker)

REQUIRE_OPENGAIT = os.environ.get("KPRPE_REQUIRE_OPENGAIT") == "1"

#: fixtures that read ``$OPENGAIT_ROOT`` (and skip without it): a test using one is an ``opengait`` test
OPENGAIT_FIXTURES = frozenset({"opengait_module", "opengait_root", "opengait_copy", "opengait_pretreatment"})

if os.environ.get("OPENGAIT_ROOT"):
    _user = os.getuid() if hasattr(os, "getuid") else "user"
    sys.pycache_prefix = os.environ.setdefault(
        "PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / f"kprpe-pycache-{_user}")
    )


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an OpenGait fixture ``opengait``, so ``-m opengait`` cannot miss one."""
    for item in items:
        if OPENGAIT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.opengait)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under ``KPRPE_REQUIRE_OPENGAIT=1`` a skipped ``opengait`` test is reported as failed."""
    outcome = yield
    report = outcome.get_result()
    required = item.get_closest_marker("opengait") is not None and item.get_closest_marker("opengait_fork") is None
    if REQUIRE_OPENGAIT and report.skipped and required:
        report.outcome = "failed"
        report.longrepr = (
            f"KPRPE_REQUIRE_OPENGAIT=1, but this OpenGait test was skipped: {_skip_reason(report)} "
            f"(OPENGAIT_ROOT={os.environ.get('OPENGAIT_ROOT')!r}, python {sys.executable})"
        )
