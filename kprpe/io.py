"""Atomic file writes and safe reads of untrusted files, shared by every package and tool of the project.

A file is written to a temporary sibling (same folder, so the final ``os.replace`` is an atomic rename on
one file system) and moved into place only when the write finished: readers never see a torn file, a
crash leaves the previous version intact, and no temporary file is left behind on failure.

Pickles from outside (insightface ``.bin`` verification sets, OpenGait ``.pkl`` sequences, the MNIST pickle)
are read with :func:`safe_pickle_load`, which admits only containers, scalars and numpy arrays: a pickle
that names any other callable is refused before anything is called. ``.npy`` files are read with
:func:`load_npy` (never a pickle).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import contextlib
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "UnsafePickleError",
    "atomic_open",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_npy",
    "safe_pickle_load",
]


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


# ----------------------------------------------------------------------------------------- untrusted reads


class UnsafePickleError(ValueError):
    """A pickle names a global outside :func:`safe_pickle_load`'s allow-list (nothing of it was run)."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocols 0-2 use it for ``bytes`` (``encode(str, 'latin1')``), and nothing else:
    other codecs (``zlib_codec``, ...) would let a pickle run work it has no need for."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode only rebuilds latin-1 bytes, got encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy's array, dtype and scalar reconstructors under the module paths of numpy 1.x and 2.x pickles.

    Both paths resolve to the functions of the numpy that is installed (``numpy.core`` is a deprecated
    alias in numpy 2; importing it would warn).
    """
    core = getattr(np, "_core", None) or np.core
    multiarray, numeric = core.multiarray, core.numeric
    found: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        found[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):  # protocol 5 arrays (out-of-band capable buffers)
            found[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return found


#: (module, name) -> object: everything :func:`safe_pickle_load` lets a pickle name
SAFE_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    **{("builtins", obj.__name__): obj for obj in (set, frozenset, bytes, bytearray, complex)},
    ("_codecs", "encode"): _latin1_encode,
    **_numpy_globals(),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` resolves only :data:`SAFE_PICKLE_GLOBALS`."""

    def __init__(self, file: IO[bytes], where: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (``__builtin__``) as pickle's own find_class maps them for protocols < 3
        mapped = _compat_pickle.NAME_MAPPING.get((module, name))
        key = mapped if mapped else (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        if key not in SAFE_PICKLE_GLOBALS:
            raise UnsafePickleError(
                f"{self.where}: refused to load global {module}.{name} (only containers, numbers, "
                "strings, bytes and numpy arrays are read from a pickle)"
            )
        return SAFE_PICKLE_GLOBALS[key]

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.where}: refused a persistent id (not part of a data pickle)")


def safe_pickle_load(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    encoding: str = "ASCII",
    where: str | None = None,
    what: str = "readable data pickle",
) -> Any:
    """Unpickle an untrusted file: builtin containers, numbers, strings, bytes and numpy arrays only.

    Args:
        source: a path, or a binary file object (e.g. a ``gzip`` stream).
        encoding: how Python 2 ``str`` is read (``"bytes"`` keeps it as bytes, as insightface's ``.bin``
            need; ``"latin1"`` for numpy arrays of Python 2).
        where: names the file in errors (default: the path, or the file object's ``name``).
        what: what the file should have been, for the error of a malformed one.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        UnsafePickleError: the pickle names any other global (a ``ValueError``; nothing was called).
        ValueError: naming the file, for any other malformed, truncated or unreadable pickle.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return safe_pickle_load(handle, encoding=encoding, where=where or os.fspath(source), what=what)
    where = where or str(getattr(source, "name", "<pickle>"))
    try:
        return _RestrictedUnpickler(source, where, encoding).load()
    except UnsafePickleError:
        raise
    # crafted bytes reach the unpickler and numpy's reconstructors with open-ended failure types
    # (UnpicklingError, EOFError, TypeError from a reduce, MemoryError, RecursionError, zlib/gzip errors)
    except Exception as e:
        raise ValueError(f"{where}: not a {what} ({type(e).__name__}: {e})") from None


def load_npy(path: str | os.PathLike[str], what: str = "array") -> np.ndarray:
    """``np.load`` of one ``.npy`` file without pickles; any malformed file is a ``ValueError`` naming it.

    Raises:
        FileNotFoundError: naming ``what`` and the path.
        ValueError: naming the file when it is not a ``.npy`` array (an ``.npz``, a pickle, truncated, ...).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        array = np.load(path, allow_pickle=False)
    # np.load's failures on crafted headers are open-ended (ValueError, EOFError, SyntaxError, MemoryError, ...)
    except Exception as e:
        raise ValueError(f"{path}: not a readable .npy {what} ({type(e).__name__}: {e})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise ValueError(f"{path}: expected a .npy {what}, got an .npz archive")
    return array
