"""Session-wide test setup.

Without CUDA, Triton kernels (``kprpe.core.triton_attention``) can only run in Triton's CPU interpreter,
which must be chosen before ``triton`` is first imported; PyTorch itself never uses Triton on CPU.
"""

import os

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
