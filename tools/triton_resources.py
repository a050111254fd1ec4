"""Compile the fused KP-RPE Triton kernels ahead of time for a GPU architecture, without a GPU, and report
their registers, spills (stack) and shared memory per configuration.

The launches are the real ones: ``triton_kprpe_attention`` runs forward and backward on small CPU
tensors laid out as the models lay them out (q, k, v as views of one qkv projection, tables as views of
``KeypointRPE``'s per-layer output) with the kernels replaced by recorders; each recorded launch is then
compiled for the target with the argument specialisation Triton's JIT would apply (integers equal to 1
become constants, 16-divisible integers and aligned pointers get divisibility hints). Triton's wheel
ships ``ptxas`` and ``cuobjdump``, so this catches, before a GPU is at hand, what the CPU interpreter
cannot: code that does not compile for the real target, and tiles that spill registers to local memory.

    python tools/triton_resources.py                 # sm_90 (H100/H200), the default tile sizes
    python tools/triton_resources.py --sweep         # several tile sizes per case
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels, never the interpreter

import torch  # noqa: E402
import triton  # noqa: E402
from triton._C.libtriton import native_specialize_impl  # noqa: E402
from triton.backends.compiler import BaseBackend, GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kprpe.benchmark import command_line, write_section  # noqa: E402
from kprpe.core import product_buckets, shifted_window_mask  # noqa: E402
from kprpe.core import triton_attention as ta  # noqa: E402
from kprpe.io import atomic_write_text  # noqa: E402

KERNELS = ("_fwd", "_bwd_kv", "_bwd_q_table")


@dataclass(frozen=True)
class Case:
    name: str
    grid: tuple[int, int]
    heads: int
    head_dim: int
    dtype: torch.dtype
    prefix: int = 0  # CLS-like tokens: their extra bucket makes the map non-separable
    shifted_windows: bool = False  # Swin's shift mask on top of the bias


CASES = (
    Case("face ViT-S (N196, H8, d64) bf16", (14, 14), 8, 64, torch.bfloat16),
    Case("face ViT-B (N196, H16, d32) bf16", (14, 14), 16, 32, torch.bfloat16),
    Case("SwinGait window (N15, H16, d16) bf16 + shift mask", (3, 5), 16, 16, torch.bfloat16, shifted_windows=True),
    Case("ViT + CLS (N197, H8, d64) bf16, generic map", (14, 14), 8, 64, torch.bfloat16, prefix=1),
    Case("face ViT-S (N196, H8, d64) fp32", (14, 14), 8, 64, torch.float32),
)
SWEEP = (
    ta.BlockSizes(64, 64, num_warps=4), ta.BlockSizes(64, 64, num_warps=8), ta.BlockSizes(128, 64, num_warps=8),
    ta.BlockSizes(32, 64, num_warps=4), ta.BlockSizes(64, 32, num_warps=4), ta.BlockSizes(32, 32, num_warps=4),
)  # fmt: skip


class _Recorder:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](*args, **kwargs)`` records the call."""

    def __init__(self, name: str, kernel, launches: list) -> None:
        self.name, self.kernel, self.launches = name, kernel, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.name, self.kernel, args, kwargs))

        return launch


def capture_launches(case: Case, blocks: ta.BlockSizes) -> list:
    """The three kernel launches of one forward+backward, as ``(name, kernel, args, kwargs)``."""
    buckets, num_buckets = product_buckets(*case.grid, num_prefix_tokens=case.prefix)
    n, heads, d = buckets.shape[0], case.heads, case.head_dim
    batch = 2
    qkv = torch.zeros(batch, n, 3, heads, d, dtype=case.dtype, requires_grad=True)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, N, d) views, as Attention makes them
    rows = torch.zeros(batch, n, heads * num_buckets, dtype=case.dtype, requires_grad=True)
    table = rows.view(batch, n, heads, num_buckets).permute(0, 2, 1, 3)  # as KeypointRPE.layer_table
    mask = None
    if case.shifted_windows:
        wins = shifted_window_mask((2 * case.grid[0], 2 * case.grid[1]), case.grid, (1, 2))
        mask = wins[:, None].repeat(batch // wins.shape[0] + 1, 1, 1, 1)[:batch].to(case.dtype)
    launches: list = []
    saved = {name: getattr(ta, name) for name in KERNELS}
    interpreted = ta._INTERPRETED
    try:
        for name, kernel in saved.items():
            setattr(ta, name, _Recorder(name, kernel, launches))
        ta._INTERPRETED = True  # let the host code run on CPU tensors; nothing is executed
        out = ta.triton_kprpe_attention(q, k, v, table, buckets, mask, blocks=blocks)
        out.backward(torch.ones_like(out))
    finally:
        for name, kernel in saved.items():
            setattr(ta, name, kernel)
        ta._INTERPRETED = interpreted
    return launches


def compile_launch(kernel, args: tuple, kwargs: dict, arch: int):
    """Compile one recorded launch for ``sm_<arch>`` with the JIT's argument specialisation."""
    options = {key: kwargs.pop(key) for key in ("num_warps", "num_stages") if key in kwargs}
    bound = dict(zip(kernel.arg_names, args))
    bound.update(kwargs)
    signature, constexprs, attrs = {}, {}, {}
    for index, param in enumerate(kernel.params):
        value = bound[param.name]
        if param.is_constexpr:
            signature[param.name], constexprs[(index,)] = "constexpr", value
            continue
        kind, desc = native_specialize_impl(BaseBackend, value, False, True, True)
        if kind == "constexpr":  # an integer equal to 1
            signature[param.name], constexprs[(index,)] = "constexpr", desc
            continue
        signature[param.name] = kind
        if desc:
            attrs[(index,)] = BaseBackend.parse_attr(desc)
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)


def resource_usage(cubin: bytes) -> dict:
    """Registers and stack (spill) bytes of a cubin, read by the cuobjdump that ships with Triton."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([str(tool), "--dump-resource-usage", f.name], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
    fields = dict(re.findall(r"(REG|STACK):(\d+)", text.split("Function", 1)[1]))
    return {"registers": int(fields["REG"]), "stack_bytes": int(fields["STACK"])}


@dataclass
class Row:
    case: str
    kernel: str
    blocks: str
    registers: int | None = None
    stack_bytes: int | None = None
    shared_bytes: int | None = None
    error: str | None = None


def measure(arch: int, cases=CASES, sweep: bool = False) -> list[Row]:
    rows = []
    for case in cases:
        tokens = (case.grid[0] * case.grid[1]) + case.prefix
        for blocks in SWEEP if sweep else (ta.BlockSizes.for_shape(tokens, tokens, case.dtype),):
            label = f"{blocks.block_m}x{blocks.block_n}, {blocks.num_warps} warps"
            for name, kernel, args, kwargs in capture_launches(case, blocks):
                row = Row(case.name, name, label)
                try:
                    compiled = compile_launch(kernel, args, dict(kwargs), arch)
                    row.shared_bytes = compiled.metadata.shared
                    usage = resource_usage(compiled.asm["cubin"])
                    row.registers, row.stack_bytes = usage["registers"], usage["stack_bytes"]
                except Exception as e:  # report and go on: one failing configuration should not hide the rest
                    row.error = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
                rows.append(row)
                print(f"{case.name:52s} {name:13s} {label:20s} regs {row.registers} stack {row.stack_bytes} "
                      f"shared {row.shared_bytes}" + (f"  [{row.error}]" if row.error else ""), flush=True)  # fmt: skip
    return rows


def markdown(rows: list[Row], arch: int, command: str) -> str:
    lines = [
        f"### Triton kernels compiled for sm_{arch} (no GPU needed), triton {triton.__version__}",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}). The kernels as `triton_kprpe_attention` launches "
        "them for each case (default tile sizes), compiled ahead of time; registers per thread (255 is the "
        "maximum), bytes spilled to the stack (0 is the goal), shared memory per program.",
        "",
        "| case | kernel | tiles | registers | spill bytes | shared KiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        shared = "n/a" if r.shared_bytes is None else f"{r.shared_bytes / 1024:.0f}"
        status = f" (failed: {r.error[:80]})" if r.error else ""
        lines.append(f"| {r.case} | `{r.kernel}`{status} | {r.blocks} | {r.registers} | {r.stack_bytes} | {shared} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x10 (90: H100/H200)")
    parser.add_argument("--sweep", action="store_true", help="try several tile sizes per case")
    parser.add_argument("--cases", type=int, nargs="+", default=None, help="indices into CASES")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md (default tiles only)")
    args = parser.parse_args(argv)
    cases = [CASES[i] for i in args.cases] if args.cases else CASES
    rows = measure(args.arch, cases, args.sweep)
    if args.json:
        atomic_write_text(args.json, json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    if args.write and not args.sweep:
        command = command_line("tools/triton_resources.py", argv)
        key = f"triton_resources:sm_{args.arch}"
        write_section(markdown(rows, args.arch, command), key, REPO / "benchmarks" / "RESULTS.md")
    failed = [r for r in rows if r.error]
    spilling = [r for r in rows if r.stack_bytes]
    print(f"\nsm_{args.arch}, triton {triton.__version__}: {len(rows) - len(failed)}/{len(rows)} compiled, "
          f"{len(spilling)} spill registers to the stack")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
