"""Small helpers shared by the benchmark tools (``tools/bench_*.py``): timing, peak memory, isolated
measurements in subprocesses, and the marked sections of ``benchmarks/RESULTS.md``.

Speed is always reported as a ratio to a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .io import atomic_write_text

__all__ = [
    "PeakMemory",
    "command_line",
    "device_label",
    "fmt",
    "publish",
    "ratio",
    "run_isolated",
    "sync",
    "time_ms",
    "versions",
    "write_section",
]


def sync(device: torch.device | str) -> None:
    """Wait for queued CUDA work (no-op on CPU) so wall-clock times cover the work itself."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], object], device: torch.device | str, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


class PeakMemory:
    """Peak memory above the state at construction, in MiB.

    CUDA: ``max_memory_allocated`` (reset here). CPU: the rise of this process's max RSS, which only
    means something in a fresh process (hence :func:`run_isolated`).
    """

    def __init__(self, device: torch.device | str) -> None:
        self.cuda = torch.device(device).type == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def mib(self) -> float:
        if self.cuda:
            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.base) / 1024  # KiB on Linux


def run_isolated(cmd: list[str], repo: Path) -> dict:
    """Run a worker command that prints one JSON object on its last stdout line; return that object.

    A failing worker gives ``{"error": <its last stderr line>}`` instead of raising, so one broken
    configuration does not lose the rest of a benchmark run.
    """
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        return {"error": lines[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_label(device: torch.device | str) -> str:
    """The card's name on CUDA, the CPU and its core count otherwise."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def versions() -> str:
    """``torch X`` plus ``triton Y`` where Triton is installed (the fused kernel's compiler)."""
    text = f"torch {torch.__version__}"
    try:
        import triton
    except ImportError:
        return text
    return f"{text}, triton {triton.__version__}"


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "n/a"
    return f"{value / base:.2f}x"


def command_line(script: str, argv: list[str] | None) -> str:
    """The command a tool was run with, for its results table: ``python <script> <arguments>``."""
    return " ".join(["python", script, *(argv if argv is not None else sys.argv[1:])])


def publish(table: str, key: str, path: Path, write: bool) -> None:
    """Print a results table; with ``write``, also store it as section ``key`` of ``path``."""
    print()
    print(table)
    if write:
        write_section(table, key, path)
        print(f"wrote section {key} of {path}")


def write_section(section: str, key: str, path: Path) -> None:
    """Replace (or append) the section marked ``<!-- key -->`` in ``path``, atomically."""
    begin, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    header = "# Benchmarks\n\nMeasured results; each section says how it was made.\n"
    text = path.read_text() if path.exists() else header
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        tail = tail.lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")  # one blank line before the next section
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic_write_text(path, text)
