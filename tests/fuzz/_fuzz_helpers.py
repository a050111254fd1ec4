"""Mutations of valid seed files, and the property every reader of outside data must keep.

Property (:func:`check_reader`): on any mutated or truncated input a reader returns (and then its result
is used the way callers use it) or raises ``ValueError`` (or a subclass) whose message names the file;
never another exception type, never more than :data:`TIME_LIMIT_S` seconds, never a file left behind.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: reader name -> inputs tried in this session (printed by the conftest's terminal summary)
INPUTS: Counter[str] = Counter()
#: a reader taking longer than this on a few-kB input is a hang
TIME_LIMIT_S = 5.0

#: seeded and derandomized: the same inputs every run, so the suite cannot flake; no example database
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # timed by check_reader instead: a deadline miss is reported as flaky, not as a hang
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: byte strings that break parsers more often than random bytes do
_SPECIAL = [b"\x00", b"\xff", b"\xff\xfe", b"\n", b",", b"\t", b" ", b"-1", b"0", b"nan", b"inf", b"1e309",
            b"99999999999999999999", b"\x80", b"{", b"[", b'"', b":", b"- ", b"\xe9"]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """One of ``seeds``, unchanged or with up to four edits (flip, overwrite, insert, delete, truncate)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "special"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "special":
            special = draw(st.sampled_from(_SPECIAL))
            data[pos : pos + draw(st.integers(0, len(special)))] = special
    return bytes(data)


def snapshot(folder: Path) -> set[str]:
    """Every path under ``folder`` (files and folders), relative."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def check_reader(name: str, read: Callable[[], Any], folder: Path, files: Iterable[str | Path]) -> Any:
    """Run ``read()`` under the fuzz property (see the module docstring); the result, or ``None`` on a
    ``ValueError``. ``files``: the paths one of which a message must name."""
    INPUTS[name] += 1
    before = snapshot(folder)
    start = time.monotonic()
    result = None
    try:
        result = read()
    except ValueError as err:
        message = str(err)
        assert any(str(f) in message or Path(f).name in message for f in files), f"names no file: {message}"
    elapsed = time.monotonic() - start
    assert elapsed < TIME_LIMIT_S, f"{name} took {elapsed:.1f} s"
    assert snapshot(folder) == before, f"{name} left files: {snapshot(folder) ^ before}"
    return result
