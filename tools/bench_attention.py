"""Benchmark one attention layer with a KP-RPE bias, per backend, against SDPA without bias.

For each shape (face ViT-S and ViT-B layers, SwinGait-2D window layers) and backend it measures
forward and forward+backward time (median over repeats, gradients of q, k, v and the table) and peak
memory, and reports each as a ratio to ``F.scaled_dot_product_attention`` without any bias measured
in the same run. Every measurement runs in a fresh subprocess so that peak memory is its own (CUDA:
``max_memory_allocated``; CPU: the rise of the process's max RSS over its state after setup).

    python tools/bench_attention.py                      # CPU here: float32, small batches
    python tools/bench_attention.py --device cuda        # bf16, the issue's batch sizes
    python tools/bench_attention.py --write              # also update benchmarks/RESULTS.md

Flex attention has no backward on CPU (PyTorch), so its CPU rows show the forward only; the Triton
kernel (``backend='triton'``) is measured on CUDA only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kprpe.benchmark import (  # noqa: E402
    PeakMemory,
    command_line,
    device_label,
    fmt,
    publish,
    ratio,
    run_isolated,
    time_ms,
    versions,
)
from kprpe.core import backend_unavailable, kprpe_attention, product_buckets  # noqa: E402


@dataclass(frozen=True)
class Shape:
    name: str
    heads: int
    grid: tuple[int, int]
    head_dim: int
    batch_cpu: int
    batch_cuda: int


SHAPES = (
    Shape("face ViT-S (H8, N196, d64)", 8, (14, 14), 64, 16, 256),
    Shape("face ViT-B (H16, N196, d32)", 16, (14, 14), 32, 16, 256),
    Shape("SwinGait-2D stage 1 windows (H16, N15, d16)", 16, (3, 5), 16, 1024, 38400),
    Shape("SwinGait-2D stage 2 windows (H32, N15, d16)", 32, (3, 5), 16, 1024, 38400),
)
BACKENDS = ("no bias (SDPA)", "reference", "sdpa", "flex", "triton")


def backends(device: str, only: list[str] | None = None) -> list[str]:
    """The rows measured on ``device``: the baseline and every backend (of ``only``) that can run there."""
    chosen = [b for b in BACKENDS[1:] if only is None or b in only]
    return [BACKENDS[0]] + [b for b in chosen if backend_unavailable(b, device) is None]


def _inputs(shape: Shape, device: str, dtype: torch.dtype, batch: int):
    buckets, k = product_buckets(*shape.grid, device=device)
    n = buckets.shape[0]
    gen = torch.Generator(device=device).manual_seed(0)
    q, kk, v = (
        torch.randn(batch, shape.heads, n, shape.head_dim, device=device, dtype=dtype, generator=gen) for _ in range(3)
    )
    table = 0.1 * torch.randn(batch, shape.heads, n, k, device=device, dtype=dtype, generator=gen)
    return q, kk, v, table, buckets


def _call(backend: str, q, k, v, table, buckets):
    if backend == "no bias (SDPA)":
        return F.scaled_dot_product_attention(q, k, v)
    return kprpe_attention(q, k, v, table, buckets, backend=backend)


def worker(shape_index: int, backend: str, device: str, dtype_name: str, batch: int, repeats: int) -> dict:
    """One measurement in this process: {'fwd_ms', 'fwdbwd_ms', 'peak_mib'} (None where unsupported)."""
    dtype = getattr(torch, dtype_name)
    shape = SHAPES[shape_index]
    q, k, v, table, buckets = _inputs(shape, device, dtype, batch)
    peak = PeakMemory(device)
    with torch.no_grad():
        fwd = time_ms(lambda: _call(backend, q, k, v, table, buckets), device, repeats)
    fwdbwd = None
    can_backward = not (backend == "flex" and device == "cpu")
    if can_backward:
        leaves = [t.detach().requires_grad_() for t in (q, k, v, table)]

        def step():
            out = _call(backend, *leaves, buckets)
            out.backward(torch.ones_like(out))
            for t in leaves:
                t.grad = None

        fwdbwd = time_ms(step, device, repeats)
    return {"fwd_ms": fwd, "fwdbwd_ms": fwdbwd, "peak_mib": peak.mib()}


def run_all(args) -> list[dict]:
    rows = []
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    for index, shape in enumerate(SHAPES):
        batch = args.batch or (shape.batch_cuda if args.device == "cuda" else shape.batch_cpu)
        if shape.grid == (3, 5) and args.windows:
            batch = args.windows
        for backend in backends(args.device, args.backends):
            cmd = [
                __file__, "--worker", str(index), backend, "--device", args.device,
                "--dtype", dtype, "--batch", str(batch), "--repeats", str(args.repeats),
            ]  # fmt: skip
            result = {"fwd_ms": None, "fwdbwd_ms": None, "peak_mib": None, **run_isolated(cmd, REPO)}
            result.update(shape=shape.name, backend=backend, batch=batch, dtype=dtype)
            rows.append(result)
            print(f"{shape.name:45s} {backend:16s} {fmt(result.get('fwd_ms'))} / {fmt(result.get('fwdbwd_ms'))} ms"
                  f"  peak {fmt(result.get('peak_mib'))} MiB" + (f"  [{result['error']}]" if "error" in result else ""),
                  flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict], args) -> str:
    device = args.device
    card = device_label(device)
    lines = [
        f"### Attention layer, {card}, {versions()}, {rows[0]['dtype']}",
        "",
        f"Command: `{args.command}`"
        f" ({time.strftime('%Y-%m-%d')}). Median of {args.repeats} runs after 3 warm-ups; fwd+bwd includes the"
        " gradients of q, k, v and the table. Ratios are to SDPA without bias in the same run (time: higher is"
        " slower; memory: peak above the inputs).",
        "",
        "| shape (batch) | backend | fwd ms | fwd ratio | fwd+bwd ms | fwd+bwd ratio | peak MiB | peak ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shape in SHAPES:
        group = [r for r in rows if r["shape"] == shape.name]
        base = next(r for r in group if r["backend"] == BACKENDS[0])
        for r in group:
            note = " (no CPU backward in PyTorch)" if r["backend"] == "flex" and device == "cpu" else ""
            if "error" in r:
                note = f" (failed: {r['error'][:80]})"
            lines.append(
                f"| {shape.name} ({r['batch']}) | {r['backend']}{note} | {fmt(r['fwd_ms'])} | {ratio(r['fwd_ms'], base['fwd_ms'])} | "
                f"{fmt(r['fwdbwd_ms'])} | {ratio(r['fwdbwd_ms'], base['fwdbwd_ms'])} | {fmt(r['peak_mib'], 1)} | "
                f"{ratio(r['peak_mib'], base['peak_mib'])} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--batch", type=int, default=None, help="batch of the ViT shapes (default: 16 CPU, 256 CUDA)")
    parser.add_argument("--windows", type=int, default=None, help="number of windows of the Swin shapes")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--backends", nargs="+", default=None, choices=BACKENDS[1:], help="only these (and the baseline)"
    )
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--worker", nargs=2, metavar=("SHAPE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        result = worker(int(args.worker[0]), args.worker[1], args.device, args.dtype, args.batch, args.repeats)
        print(json.dumps(result))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    args.command = command_line("tools/bench_attention.py", argv)
    rows = run_all(args)
    key = f"bench_attention:{args.device}:{rows[0]['dtype']}"
    publish(markdown(rows, args), key, REPO / "benchmarks" / "RESULTS.md", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
