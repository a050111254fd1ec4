"""A one-minute tour of ``kprpe.core``: keypoints -> tables -> biased attention, on every backend.

    python -m kprpe.demo [--device cpu|cuda] [--batch 8]

Builds a face-ViT-sized KP-RPE layer (5 landmarks, 14x14 tokens, 8 heads, d 64), checks that every
backend available on the device agrees with ``reference`` (output, and gradients where the backend
has a backward there), and prints each backend's time next to attention without bias.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from kprpe.core import BACKENDS, KeypointRPE, backend_unavailable, kprpe_attention, select_backend


def _timed(fn, device: str, repeats: int = 5) -> float:
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    device, batch, heads, dim = args.device, args.batch, 8, 64
    torch.manual_seed(0)

    rpe = KeypointRPE(num_keypoints=5, grid_size=(14, 14), num_heads=heads, depth=1).to(device)
    torch.nn.init.normal_(rpe.proj.weight, std=0.5)  # a trained-looking W_L instead of the zero init
    landmarks = torch.rand(batch, 5, 2, device=device)  # (x, y) in [0, 1]
    (table,) = rpe(landmarks)  # (B, H, 196, 49)
    q, k, v = (torch.randn(batch, heads, 196, dim, device=device) for _ in range(3))
    print(f"KeypointRPE table {tuple(table.shape)}, bucket map {tuple(rpe.buckets.shape)}, K = {rpe.num_buckets}")
    print(
        f"auto picks {select_backend(q)!r} on {device} for inference, {select_backend(q, needs_grad=True)!r} for training\n"
    )

    def run(backend: str, with_grad: bool):
        leaves = [t.detach().clone().requires_grad_(with_grad) for t in (q, k, v, table)]
        out = kprpe_attention(*leaves, rpe.buckets, backend=backend)
        if not with_grad:
            return out, None
        out.square().sum().backward()
        return out, [t.grad for t in leaves]

    ref_out, ref_grads = run("reference", True)
    baseline = _timed(lambda: F.scaled_dot_product_attention(q, k, v), device)
    print(f"{'backend':10s} {'max |out - ref|':>16s} {'max |grad - ref|':>17s} {'fwd ms':>8s} {'x no-bias':>10s}")
    print(f"{'no bias':10s} {'-':>16s} {'-':>17s} {baseline:8.2f} {1.0:9.2f}x")
    for backend in BACKENDS:
        skip = backend_unavailable(backend, device)
        if skip:
            print(f"{backend:10s} skipped: {skip}")
            continue
        has_backward = not (backend == "flex" and device == "cpu")
        with torch.no_grad():
            out, _ = run(backend, False)
        grad_err = "no CPU backward"
        if has_backward:
            _, grads = run(backend, True)
            grad_err = f"{max((g - r).abs().max().item() for g, r in zip(grads, ref_grads)):.2e}"
        with torch.no_grad():
            ms = _timed(lambda: kprpe_attention(q, k, v, table, rpe.buckets, backend=backend), device)
        err = (out - ref_out).abs().max().item()
        print(f"{backend:10s} {err:16.2e} {grad_err:>17s} {ms:8.2f} {ms / baseline:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
