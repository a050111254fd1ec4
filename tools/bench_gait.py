"""Training throughput of SwinGait-2D with Swin's window bias vs with window KP-RPE (and no bias).

One training step = forward of ``P x K`` sequences of ``frames`` silhouettes (64x44) and joints,
triplet + cross-entropy losses, backward, AdamW step: exactly what the compact trainer and OpenGait
do per iteration. The models are timed in alternation (round-robin over repeats), so slow drifts of a
shared machine hit all of them alike, and the KP-RPE / Swin ratio comes from the same run. Besides wall
time the CPU time of this process is shown: on a machine shared with other jobs the wall time
includes waiting for a core.

    python tools/bench_gait.py                                  # CPU: demo-width model, small batch
    python tools/bench_gait.py --width full --batch 4 2         # CPU, the paper's widths
    python tools/bench_gait.py --device cuda --width full --amp # GPU: paper widths, 32 x 4 x 30, bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kprpe_gait.demo import DEMO_MODEL
from kprpe_gait.models import SwinGait2D
from kprpe_gait.train import CrossEntropyLoss, TripletLoss

WIDTHS = {"demo": DEMO_MODEL, "full": {}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(net: SwinGait2D, batch: tuple[int, int], frames: int, device: torch.device, amp: bool):
    """A closure running one full training step on fixed random inputs."""
    p, k = batch
    gen = torch.Generator().manual_seed(0)
    sils = (torch.rand(p * k, frames, 64, 44, generator=gen) > 0.5).float().to(device)
    joints = torch.cat([torch.rand(p * k, frames, 17, 2, generator=gen), torch.ones(p * k, frames, 17, 1)], -1).to(
        device
    )
    labels = torch.arange(p).repeat_interleave(k).to(device)
    optimizer = torch.optim.AdamW(net.param_groups(3e-4, 0.02))
    triplet, softmax = TripletLoss(0.2), CrossEntropyLoss(16.0)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = net(sils, joints)
        loss = triplet(out["embeddings"].float(), labels)[0] + softmax(out["logits"].float(), labels)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--width", choices=sorted(WIDTHS), default=None, help="demo (CPU default) or full (CUDA default)"
    )
    parser.add_argument("--batch", type=int, nargs=2, default=None, metavar=("P", "K"), help="CPU 4 2, CUDA 32 4")
    parser.add_argument("--frames", type=int, default=None, help="frames per sequence (CPU 10, CUDA 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--models", nargs="+", default=["swin", "kprpe", "none"], choices=["swin", "kprpe", "none"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    width = args.width or ("full" if cuda else "demo")
    batch = tuple(args.batch or ((32, 4) if cuda else (4, 2)))
    frames = args.frames or (30 if cuda else 10)

    steps, times, cpu_times = {}, {m: [] for m in args.models}, {m: [] for m in args.models}
    for model in args.models:
        torch.manual_seed(0)
        net = SwinGait2D(max(batch[0], 2), rel_pos=model, **WIDTHS[width]).to(device).train()
        steps[model] = make_step(net, batch, frames, device, args.amp)
        for _ in range(args.warmup):
            steps[model]()
    _sync(device)
    for _ in range(args.repeats):
        for model in args.models:
            start, cpu_start = time.perf_counter(), time.process_time()
            steps[model]()
            _sync(device)
            times[model].append(time.perf_counter() - start)
            cpu_times[model].append(time.process_time() - cpu_start)

    seqs = batch[0] * batch[1]
    rows = {}
    for model in args.models:
        median = statistics.median(times[model])
        rows[model] = {
            "step_ms": 1000 * median,
            "process_cpu_ms": 1000 * statistics.median(cpu_times[model]),
            "sequences_per_s": seqs / median,
            "frames_per_s": seqs * frames / median,
        }
    reference = rows.get("swin")
    device_name = (
        torch.cuda.get_device_name(device)
        if cuda
        else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    )
    print(f"SwinGait-2D training throughput ({width} width, batch {batch[0]}x{batch[1]}x{frames} frames, 64x44, "
          f"{'bf16 autocast' if args.amp else 'fp32'}, {device_name}, torch {torch.__version__}, "
          f"median of {args.repeats})\n")  # fmt: skip
    print(
        "| model | step ms (wall) | process CPU ms | sequences/s | frames/s | vs Swin bias (wall) "
        "| vs Swin bias (CPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    for model, row in rows.items():
        ratio = row["frames_per_s"] / reference["frames_per_s"] if reference else float("nan")
        cpu_ratio = reference["process_cpu_ms"] / row["process_cpu_ms"] if reference else float("nan")
        row["ratio_vs_swin"], row["cpu_ratio_vs_swin"] = ratio, cpu_ratio
        print(f"| {model} | {row['step_ms']:.0f} | {row['process_cpu_ms']:.0f} | {row['sequences_per_s']:.2f} | "
              f"{row['frames_per_s']:.1f} | {ratio:.2f}x | {cpu_ratio:.2f}x |")  # fmt: skip
    if args.json is not None:
        payload = {"device": device_name, "width": width, "batch": batch, "frames": frames, "amp": args.amp,
                   "torch": torch.__version__, "results": rows}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
