"""Atomic file writes, shared by every package and tool of the project.

A file is written to a temporary sibling (same folder, so the final ``os.replace`` is an atomic rename on
one file system) and moved into place only when the write finished: readers never see a torn file, a
crash leaves the previous version intact, and no temporary file is left behind on failure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_path", "atomic_write_bytes", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed.

    ``suffix`` ends the temporary name (``.<name>.<random><suffix>``): pick one that readers of the
    folder ignore. The parent folder is created.

    ::

        with atomic_path("out/metrics.json") as tmp:
            tmp.write_text(text)   # out/metrics.json appears complete, or not at all
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", suffix: str = ".tmp", **open_kwargs: Any
) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, atomically (see :func:`atomic_path`)."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes a new file; mode must start with 'w', got {mode!r}")
    with atomic_path(path, suffix) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, suffix: str = ".tmp") -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb", suffix) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))
