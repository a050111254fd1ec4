"""Whole-model throughput and peak memory: face ViTs and SwinGait-2D, with and without KP-RPE.

For each model the variants are trained (forward, backward, AdamW step) and evaluated (forward under
``no_grad``) on fixed random inputs, each in a fresh subprocess (so peak memory is its own), and
reported as ratios to the model's baseline measured in the same run:

* face ViT-S / ViT-B (CVLface shapes: 112x112 images, 8x8 patches -> 14x14 tokens, width 512;
  ViT-S 12 blocks x 8 heads (d 64), ViT-B 24 blocks x 16 heads (d 32)); baseline ``none`` (SDPA, no
  bias); variants ``irpe`` (iRPE contextual key bias) and ``kprpe:<backend>`` (multihead KP-RPE, 5
  landmarks) for every attention backend that runs on the device.
* SwinGait-2D (paper widths, 64x44 silhouettes, 17 joints): baseline ``swin`` (Swin's own window
  bias); variants ``none`` and ``kprpe:<backend>``.
* ``face_s`` / ``face_b``: the face package's model exactly as the authors released it
  (:func:`face.models.build_model` ``vit_small`` / ``vit_base``: no qkv bias, ReLU6, flatten-BN head),
  ``model(images, landmarks)``; baseline ``none``, variants ``irpe`` and ``kprpe:<backend>``.
* ``face_swin_s``: the authors' face Swin-S (:func:`face.models.build_model` ``swin_small``); baseline
  ``cpb`` (Swin V2's own position bias), variants ``none`` and ``kprpe:<backend>``.

    python tools/bench_models.py                             # CPU: float32, small batches
    python tools/bench_models.py --device cuda --write       # bf16 autocast, batch 256 / 32x4x30
    python tools/bench_models.py --models vit_s --variants none kprpe:triton kprpe:flex
    python tools/bench_models.py --device cpu --models face_s --eval-only --batch 32 --write   # face inference

Issue targets (CUDA, bf16): KP-RPE ViT-S/B training >= 0.90x, evaluation >= 0.95x, peak memory
<= 1.10x of ``none``; SwinGait-2D + KP-RPE training >= 0.95x of ``swin``. Face inference (issue 11):
KP-RPE ViT-S costs <= 1.15x the time of ``none`` on CPU (batch 32, float32), <= 1.05x on GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from face.models import build_model as build_face_model
from kprpe.benchmark import (
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
from kprpe.core import BACKENDS, VisionTransformer, backend_unavailable
from kprpe.io import atomic_write_text
from kprpe_gait.models import SwinGait2D


@dataclass(frozen=True)
class ModelSpec:
    name: str
    baseline: str
    extra_variants: tuple[str, ...]
    kwargs: dict
    tiny_kwargs: dict  # a few-second configuration with the same structure (tests, smoke runs)


MODELS = {
    "vit_s": ModelSpec(
        "face ViT-S", "none", ("irpe",),
        {"img_size": 112, "patch_size": 8, "embed_dim": 512, "depth": 12, "num_heads": 8},
        {"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2},
    ),
    "vit_b": ModelSpec(
        "face ViT-B", "none", ("irpe",),
        {"img_size": 112, "patch_size": 8, "embed_dim": 512, "depth": 24, "num_heads": 16},
        {"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 4},
    ),
    "face_s": ModelSpec(
        "FaceViT-S", "none", ("irpe",), {"preset": "vit_small"}, {"preset": "vit_tiny", "depth": 2},
    ),
    "face_b": ModelSpec(
        "FaceViT-B", "none", ("irpe",), {"preset": "vit_base"}, {"preset": "vit_tiny", "depth": 2},
    ),
    "face_swin_s": ModelSpec(
        "FaceSwin-S", "cpb", ("none",), {"preset": "swin_small"}, {"preset": "swin_tiny"},
    ),
    "swingait": ModelSpec(
        "SwinGait-2D", "swin", ("none",),
        {},
        {"channels": (8, 16), "layers": (1, 1, 2, 2), "embed_dim": 32, "num_heads": (2, 4), "out_channels": 32},
    ),
}  # fmt: skip


def variants(model: str, device: str) -> tuple[list[str], dict[str, str]]:
    """Variants measured for ``model`` on ``device`` (baseline first), and the skipped ones with why."""
    spec = MODELS[model]
    names = [spec.baseline, *spec.extra_variants, *(f"kprpe:{b}" for b in BACKENDS)]
    skipped = {}
    for name in names:
        if name.startswith("kprpe:"):
            reason = backend_unavailable(name.split(":", 1)[1], device)
            if reason:
                skipped[name] = reason
    return [n for n in names if n not in skipped], skipped


def build(model: str, variant: str, tiny: bool, device: torch.device) -> torch.nn.Module:
    spec = MODELS[model]
    kwargs = dict(spec.tiny_kwargs if tiny else spec.kwargs)
    backend = variant.split(":", 1)[1] if variant.startswith("kprpe:") else "auto"
    if model == "swingait":
        rel_pos = "kprpe" if variant.startswith("kprpe") else variant
        net = SwinGait2D(num_classes=64, rel_pos=rel_pos, backend=backend, **kwargs)
    elif model.startswith("face_"):
        rpe = {"none": "none", "irpe": "irpe", "cpb": "cpb"}.get(variant, "kprpe")
        net = build_face_model({**kwargs, "rpe": rpe, "backend": backend})
        if rpe != "none":  # trained tables are not zero; keep the bias from being a constant
            for name, p in net.named_parameters():
                if name.startswith("kprpe.") or ".rpe." in name and "cpb_mlp" not in name:
                    torch.nn.init.normal_(p, std=0.02)
    else:
        rpe = {"none": "none", "irpe": "contextual"}.get(variant, "kprpe")
        net = VisionTransformer(rpe=rpe, backend=backend, **kwargs)
    return net.to(device)


def make_inputs(model: str, batch: int, gait_batch: tuple[int, int, int], tiny: bool, device: torch.device):
    """``(args, items)``: the forward's inputs and how many images / frames they hold."""
    gen = torch.Generator().manual_seed(0)
    if model == "swingait":
        p, k, frames = gait_batch
        sils = (torch.rand(p * k, frames, 64, 44, generator=gen) > 0.5).float()
        joints = torch.cat([torch.rand(p * k, frames, 17, 2, generator=gen), torch.ones(p * k, frames, 17, 1)], -1)
        return (sils.to(device), joints.to(device)), p * k * frames
    size = (MODELS[model].tiny_kwargs if tiny else MODELS[model].kwargs).get("img_size", 112)
    images = torch.randn(batch, 3, size, size, generator=gen)
    landmarks = torch.rand(batch, 5, 2, generator=gen)
    return (images.to(device), landmarks.to(device)), batch


def _loss(out) -> torch.Tensor:
    if isinstance(out, dict):  # SwinGait-2D: embeddings and logits
        return out["embeddings"].float().square().mean() + out["logits"].float().logsumexp(-1).mean()
    return out.float().square().mean()


def worker(model: str, variant: str, device_name: str, amp: bool, batch: int, gait_batch, repeats: int,
           warmup: int, tiny: bool) -> dict:  # fmt: skip
    """One measurement in this process: training and evaluation items/s and peak training memory."""
    device = torch.device(device_name)
    torch.manual_seed(0)
    net = build(model, variant, tiny, device)
    inputs, items = make_inputs(model, batch, gait_batch, tiny, device)
    needs_keypoints = model == "swingait" or not variant.startswith(("none", "irpe"))
    args = inputs if needs_keypoints else inputs[:1]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    result: dict = {"items": items}

    def train_step() -> None:
        with autocast:
            loss = _loss(net(*args))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.no_grad(), autocast:
            net(*args)

    train_unavailable = variant == "kprpe:flex" and device.type == "cpu"
    peak = PeakMemory(device)
    if train_unavailable:
        result["train_per_s"] = None
    else:
        net.train()
        result["train_per_s"] = items / time_ms(train_step, device, repeats, warmup) * 1e3
    result["peak_mib"] = None if train_unavailable else peak.mib()
    net.eval()
    result["eval_per_s"] = items / time_ms(eval_step, device, repeats, warmup) * 1e3
    return result


def eval_worker(model: str, names: list[str], device_name: str, amp: bool, batch: int, gait_batch, repeats: int,
                warmup: int, tiny: bool) -> list[dict]:  # fmt: skip
    """Inference of every variant in one process, one step of each in turn (``--eval-only``).

    Interleaving makes load from other work on a shared machine fall on all variants alike, so the ratios
    hold even where the absolute numbers drift; the median step of each variant is reported.
    """
    device = torch.device(device_name)
    torch.manual_seed(0)
    inputs, items = make_inputs(model, batch, gait_batch, tiny, device)
    nets = {name: build(model, name, tiny, device).eval() for name in names}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def step(name: str) -> None:
        needs_keypoints = model == "swingait" or not name.startswith(("none", "irpe"))
        with torch.no_grad(), autocast:
            nets[name](*(inputs if needs_keypoints else inputs[:1]))

    for _ in range(warmup):
        for name in names:
            step(name)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(max(1, repeats)):
        for name in names:
            times[name].append(time_ms(lambda name=name: step(name), device, repeats=1, warmup=0))
    return [
        {"items": items, "train_per_s": None, "peak_mib": None, "eval_per_s": items / statistics.median(t) * 1e3}
        for t in times.values()
    ]


def _measure(args, model: str, names: list[str]) -> Iterator[dict]:
    """One isolated worker per variant (training + inference), or one for all (``--eval-only``, interleaved)."""
    common = [
        "--device", args.device, "--batch", str(args.batch), "--gait-batch", *map(str, args.gait_batch),
        "--repeats", str(args.repeats), "--warmup", str(args.warmup), *(["--amp"] if args.amp else []),
        *(["--tiny"] if args.tiny else []),
    ]  # fmt: skip
    empty = {"train_per_s": None, "eval_per_s": None, "peak_mib": None}
    if args.eval_only:
        out = run_isolated([__file__, "--worker", model, ",".join(names), "--eval-only", *common], REPO)
        results = out if isinstance(out, list) else [out] * len(names)  # an error dict applies to every row
        yield from ({**empty, **r} for r in results)
        return
    for name in names:  # one at a time, so that a run cut short still records what it measured
        yield {**empty, **run_isolated([__file__, "--worker", model, name, *common], REPO)}


def run_all(args) -> tuple[list[dict], dict[str, dict[str, str]]]:
    rows, skipped = [], {}
    for model in args.models:
        names, skipped[model] = variants(model, args.device)
        if args.variants:  # the baseline first, then in the order asked for
            names = [names[0]] + [n for n in args.variants if n in names[1:]]
        for variant, result in zip(names, _measure(args, model, names)):
            result.update(model=model, variant=variant)
            rows.append(result)
            if args.json is not None:  # after every row: a run cut short still leaves what it measured
                atomic_write_text(args.json, json.dumps({"rows": rows, "skipped": skipped}, indent=2) + "\n")
            print(f"{MODELS[model].name:12s} {variant:18s} train {fmt(result['train_per_s'], 1)}/s "
                  f"eval {fmt(result['eval_per_s'], 1)}/s peak {fmt(result['peak_mib'], 0)} MiB"
                  + (f"  [{result['error']}]" if "error" in result else ""), flush=True)  # fmt: skip
    return rows, skipped


def markdown(rows: list[dict], skipped: dict[str, dict[str, str]], args, command: str) -> str:
    precision = "bf16 autocast" if args.amp else "float32"
    shape = "tiny smoke-test models" if args.tiny else "full-size models"
    p, k, frames = args.gait_batch
    lines = [
        f"### Whole models, {device_label(args.device)}, {versions()}, {precision}",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}), {shape}. Face ViTs: batch {args.batch} images; "
        f"SwinGait-2D: {p} x {k} sequences x {frames} frames. Median of {args.repeats} steps after {args.warmup} "
        "warm-up step(s); a training step is forward, backward and an AdamW step. Ratios are to the first row of each "
        "model in the same run (throughput: lower is slower; memory: peak of training above the model's start)."
        + (
            " Inference only (`--eval-only`): no training step; all variants in one process, one step of each in "
            "turn, so that load from other work falls on all alike; the time a variant costs is 1 / its eval ratio."
            if args.eval_only
            else ""
        ),
        "",
        "| model | variant | train items/s | train ratio | eval items/s | eval ratio | peak train MiB | peak ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in args.models:
        group = [r for r in rows if r["model"] == model]
        if not group:
            continue
        base = group[0]
        for r in group:
            note = f" (failed: {r['error'][:80]})" if "error" in r else ""
            if r["variant"] == "kprpe:flex" and args.device == "cpu":
                note = " (no CPU backward in PyTorch)"
            lines.append(
                f"| {MODELS[model].name} | {r['variant']}{note} | {fmt(r['train_per_s'], 1)} | "
                f"{ratio(r['train_per_s'], base['train_per_s'])} | {fmt(r['eval_per_s'], 1)} | "
                f"{ratio(r['eval_per_s'], base['eval_per_s'])} | {fmt(r['peak_mib'], 0)} | "
                f"{ratio(r['peak_mib'], base['peak_mib'])} |"
            )
        for variant, reason in skipped.get(model, {}).items():
            lines.append(f"| {MODELS[model].name} | {variant} (not run: {reason}) | | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--variants", nargs="+", default=None, help="measure only these (the baseline always runs)")
    parser.add_argument("--batch", type=int, default=None, help="face ViT images per step (CPU 8, CUDA 256)")
    parser.add_argument("--gait-batch", type=int, nargs=3, default=None, metavar=("P", "K", "FRAMES"),
                        help="SwinGait-2D sequences P x K of FRAMES frames (CPU 2 2 5, CUDA 32 4 30)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (CPU 3, CUDA 20)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (CPU 1, CUDA 5)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16 autocast (default on CUDA)")  # fmt: skip
    parser.add_argument("--tiny", action="store_true", help="tiny models of the same structure (smoke test)")
    parser.add_argument("--eval-only", action="store_true",
                        help="inference only, all variants interleaved in one process (no training step)")  # fmt: skip
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    args.batch = args.batch or (256 if cuda else 8)
    args.gait_batch = tuple(args.gait_batch or ((32, 4, 30) if cuda else (2, 2, 5)))
    args.repeats = args.repeats or (20 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    args.amp = cuda if args.amp is None else args.amp
    if args.worker and args.eval_only:
        model, names = args.worker
        result = eval_worker(model, names.split(","), args.device, args.amp, args.batch, args.gait_batch,
                             args.repeats, args.warmup, args.tiny)  # fmt: skip
        print(json.dumps(result))
        return 0
    if args.worker:
        result = worker(*args.worker, args.device, args.amp, args.batch, args.gait_batch, args.repeats,
                        args.warmup, args.tiny)  # fmt: skip
        print(json.dumps(result))
        return 0
    rows, skipped = run_all(args)
    table = markdown(rows, skipped, args, command_line("tools/bench_models.py", argv))
    key = f"bench_models:{args.device}:{'bf16' if args.amp else 'fp32'}{':tiny' if args.tiny else ''}"
    if args.eval_only:  # its own section: an inference-only run does not replace the training table
        key += ":eval:" + "+".join(args.models)
    publish(table, key, REPO / "benchmarks" / "RESULTS.md", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
