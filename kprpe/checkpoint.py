"""Atomic checkpoints: written to a temporary file in the destination folder, then ``os.replace``-d.

A reader never sees a half-written file, and a crash while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from kprpe.io import atomic_open

__all__ = ["checkpoint_name", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

_NAME = re.compile(r"^iter-(\d+)\.pt$")


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically (temporary ``*.ckpt.tmp`` file, then rename)."""
    path = Path(path)
    with atomic_open(path, "wb", suffix=".ckpt.tmp") as f:
        torch.save(state, f)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint on the CPU (tensors, numbers, strings and dicts only: ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """The ``iter-NNNNN.pt`` with the highest iteration in ``folder`` (``None`` when there is none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None


def checkpoint_name(iteration: int) -> str:
    return f"iter-{iteration:05d}.pt"
