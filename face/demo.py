"""``kprpe-face demo``: SynthFace -> the same small ViT with ``rpe`` none / iRPE / KP-RPE -> aligned, unaligned
and Fig. 5 path verification.

::

    kprpe-face demo                      # about 9 CPU minutes (measured: 520-550 CPU s per seed, one thread)
    kprpe-face demo --quick              # the same pipeline in seconds (a smoke test)
    kprpe-face demo --seed 1 --out runs/face_demo_seed1

Steps (everything under ``--out``, default ``runs/face_demo``):

1. SynthFace (:func:`face.synth.generate`, seeded by ``--seed``) into ``OUT/synthface`` (reused when it is
   already there): aligned training images per identity + landmark CSV, and the test pairs of held-out
   identities as aligned crops, unaligned (detection-box) crops and raw photos with boxes.
2. Train the small ViT (:data:`DEMO_MODEL`: FA's ``vit_tiny`` at patch 16) three times, identical except
   ``rpe``, with :class:`face.train.Trainer` on the aligned training set: CosFace head (s 16, m 0.1), the
   geometric augmentations with landmarks moved along (:data:`DEMO_AUGMENT`), AdamW + warm-up + cosine, the
   same data order and seeds, 1000 steps of 32. Checkpoints and TensorBoard logs go to ``OUT/runs/<rpe>/``;
   a second call reuses finished runs.

Why not the paper's recipe at this scale: measured on SynthFace seed 0 (one core, batch 32), AdaFace
(s 64, m 0.4) left the training loss flat and verification at chance after 200 steps (patch 8 and 16, lr
5e-4 and 2e-3), as did AdaFace at s 16 after 50 steps; CosFace s 16, m 0.1 without the photometric
augmentations reached 81 % aligned accuracy after 40 steps. Patch 16 makes a step about 7x cheaper than
patch 8 (0.13 vs 0.88 CPU seconds for a batch of 32), which buys the steps the three models need.
3. Evaluate each (:mod:`face.eval`, flip TTA): 10-fold verification accuracy and TAR@FAR on the aligned and
   the unaligned pairs, and accuracy along the Fig. 5 path from the detection crop (``t = 0``) to the
   aligned crop (``t = 1``) of the raw photos.
4. Print a markdown table; write ``OUT/results.json``, ``OUT/table.md`` and ``OUT/results.png``
   (path accuracy vs ``t``, one line per model).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from kprpe.io import atomic_open, atomic_write_text

__all__ = ["DEMO_AUGMENT", "DEMO_MODEL", "MODELS", "PRESETS", "DemoPreset", "format_table", "plot_results", "run_demo"]

#: rpe -> display name
MODELS: dict[str, str] = {"none": "ViT", "irpe": "ViT + iRPE", "kprpe": "ViT + KP-RPE"}
#: FA's vit_tiny (width 96, depth 4, 4 heads) at patch 16 (a 7 x 7 token grid): 7x cheaper than patch 8 on the CPU
DEMO_MODEL: dict[str, Any] = {"preset": "vit_tiny", "patch_size": 16}
#: the authors' geometric augmentations (landmarks moved along; rotation more often); the photometric, cutout,
#: blur and low-resolution ones are off: SynthFace's photos already carry those nuisances, and they slow learning
DEMO_AUGMENT: dict[str, Any] = {"rotation_prob": 0.5, "photometric_prob": 0.0, "cutout_prob": 0.0, "blur_prob": 0.0,
                                "low_res_prob": 0.0}  # fmt: skip
#: the TAR@FAR point of the table: the smallest FAR the demo's test pairs resolve
TABLE_FAR = "1e-02"


@dataclass(frozen=True)
class DemoPreset:
    """Everything the demo decides; the three models differ only in ``rpe``.

    Attributes:
        synth: :data:`face.synth.PRESETS` name; ``synth_overrides`` change its sizes.
        model: :func:`face.models.build_model` config without ``rpe``.
        head: margin head (:func:`face.heads.build_head`).
        augment: :class:`face.train.AugmentConfig` keys (``{}``: the authors' recipe).
        iterations, batch_size, lr, min_lr, warmup_steps, weight_decay: the optimisation.
        path_steps: points on the Fig. 5 path (``t = 0 .. 1``).
        path_flip: flip TTA on the path too (doubles its cost).
        eval_batch_size: faces per forward pass when evaluating.
    """

    synth: str = "demo"
    synth_overrides: dict[str, Any] = field(default_factory=lambda: {"ids": 150, "pairs": 300})
    model: dict[str, Any] = field(default_factory=lambda: dict(DEMO_MODEL))
    head: dict[str, Any] = field(default_factory=lambda: {"name": "cosface", "scale": 16.0, "margin": 0.1})
    augment: dict[str, Any] = field(default_factory=lambda: dict(DEMO_AUGMENT))
    iterations: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 30
    weight_decay: float = 0.05
    path_steps: int = 5
    path_flip: bool = False
    eval_batch_size: int = 64


PRESETS: dict[str, DemoPreset] = {
    "default": DemoPreset(),
    "quick": DemoPreset(
        synth="tiny",
        synth_overrides={},
        model={"preset": "vit_tiny", "patch_size": 16, "depth": 1, "embed_dim": 32, "num_heads": 2, "output_dim": 32},
        iterations=2,
        batch_size=8,
        warmup_steps=1,
        path_steps=2,
        eval_batch_size=40,
    ),
}


def _train_config(preset: DemoPreset, rpe: str, files: dict[str, Path], out: Path, seed: int, threads: int):
    from face.train import TrainConfig

    return TrainConfig(
        train=str(files["train"]),
        train_landmarks=str(files["train_landmarks"]),
        out_dir=str(out / "runs" / rpe),
        model={**preset.model, "rpe": rpe},
        head=dict(preset.head),
        augment=dict(preset.augment),
        iterations=preset.iterations,
        batch_size=preset.batch_size,
        lr=preset.lr,
        min_lr=preset.min_lr,
        warmup_steps=preset.warmup_steps,
        weight_decay=preset.weight_decay,
        device="cpu",
        amp=False,
        seed=seed,
        log_every=max(1, min(10, preset.iterations // 10)),
        save_every=max(1, preset.iterations // 3),
        threads=threads,
    )


def _summary(metrics: dict) -> dict:
    """The parts of :func:`face.eval.evaluate_verification`'s result the demo keeps."""
    return {
        "accuracy": metrics["accuracy"],
        "accuracy_std": metrics["accuracy_std"],
        "tar_at_far": {far: point["tar"] for far, point in metrics["tar_at_far"].items()},
        "tar_resolved": {far: point["resolved"] for far, point in metrics["tar_at_far"].items()},
        "pairs": metrics["pairs"],
    }


def run_demo(
    out: str | Path = "runs/face_demo",
    preset: DemoPreset | str = "default",
    seed: int = 0,
    models: tuple[str, ...] = tuple(MODELS),
    threads: int = 0,
    progress: bool = True,
) -> dict:
    """Run the demo (see the module docstring); returns the results dict also written to ``OUT/results.json``."""
    from face.data import read_verification_bin
    from face.eval import evaluate_path, evaluate_verification
    from face.synth import generate, synth_config
    from face.train import Trainer

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown demo preset {preset!r}; choose one of {', '.join(PRESETS)}")
        name, preset = preset, PRESETS[preset]
    else:
        name = "custom"
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    start, cpu_start = time.perf_counter(), time.process_time()
    synth = synth_config(preset.synth, seed=seed, **preset.synth_overrides)
    files = generate(synth, out / "synthface", progress=progress)
    manifest = json.loads(Path(files["manifest"]).read_text())
    synth_seconds = time.perf_counter() - start
    test_sets = {split: read_verification_bin(files[split]) for split in ("aligned", "unaligned", "raw")}

    results: dict[str, Any] = {
        "preset": name,
        "settings": asdict(preset),
        "seed": seed,
        "threads": torch.get_num_threads(),
        "synthface": {
            "config": synth.to_dict(),
            "counts": manifest.get("counts", {}),
            "seconds": round(synth_seconds, 1),
        },
        "models": {},
    }
    for rpe in models:
        config = _train_config(preset, rpe, files, out, seed, threads)
        trainer = Trainer(config, progress=progress)
        begun, cpu = time.perf_counter(), time.process_time()
        backbone = trainer.train()
        train_seconds, train_cpu = time.perf_counter() - begun, time.process_time() - cpu
        begun, cpu = time.perf_counter(), time.process_time()
        kwargs = {"batch_size": preset.eval_batch_size, "device": "cpu"}
        entry: dict[str, Any] = {"name": MODELS[rpe], "rpe": rpe}
        for split in ("aligned", "unaligned"):
            entry[split] = _summary(evaluate_verification(backbone, test_sets[split], **kwargs))
        entry["path"] = evaluate_path(backbone, test_sets["raw"], steps=preset.path_steps, flip=preset.path_flip,
                                      **kwargs)  # fmt: skip
        entry["path"]["tar_at_far"] = [{f: p["tar"] for f, p in row.items()} for row in entry["path"]["tar_at_far"]]
        losses = [row["loss"] for row in trainer.history if "loss" in row]
        entry.update(
            parameters=sum(p.numel() for p in backbone.parameters()),
            final_loss=losses[-1] if losses else None,
            train_seconds=round(train_seconds, 1),
            train_cpu_seconds=round(train_cpu, 1),
            eval_seconds=round(time.perf_counter() - begun, 1),
            eval_cpu_seconds=round(time.process_time() - cpu, 1),
        )
        if trainer.log is not None:
            scalars = {f"test/{split}/accuracy": entry[split]["accuracy"] for split in ("aligned", "unaligned")}
            scalars.update(
                {f"test/path/accuracy_t{t:.2f}": a for t, a in zip(entry["path"]["t"], entry["path"]["accuracy"])}
            )
            trainer.log.log(scalars, trainer.step, keep=False)
        trainer.close()
        results["models"][rpe] = entry
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["cpu_seconds"] = round(time.process_time() - cpu_start, 1)  # wall time on a shared machine says less
    table = format_table(results)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "table.md", table + "\n")
    plot_results(results, out / "results.png")
    return results


def format_table(results: dict) -> str:
    """A markdown table: accuracy and TAR@FAR on aligned / unaligned pairs, path accuracy at each ``t``."""
    models = results["models"]
    if not models:
        return ""
    ts = next(iter(models.values()))["path"]["t"]
    header = ["model", "aligned acc", f"aligned TAR@{TABLE_FAR}", "unaligned acc", f"unaligned TAR@{TABLE_FAR}"]
    header += [f"path t={t:g}" for t in ts]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in models.values():
        cells = [entry["name"]]
        for split in ("aligned", "unaligned"):
            m = entry[split]
            cells += [
                f"{100 * m['accuracy']:.2f} ± {100 * m['accuracy_std']:.2f}",
                f"{100 * m['tar_at_far'][TABLE_FAR]:.2f}",
            ]
        cells += [f"{100 * a:.2f}" for a in entry["path"]["accuracy"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_results(results: dict, path: str | Path) -> None:
    """Verification accuracy along the Fig. 5 path, one line per model (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for entry in results["models"].values():
        path_result = entry["path"]
        ax.plot(path_result["t"], [100 * a for a in path_result["accuracy"]], marker="o", label=entry["name"])
    ax.set_xlabel("t (0 = detection crop, 1 = aligned crop)")
    ax.set_ylabel("verification accuracy (%)")
    ax.set_title(f"SynthFace, Fig. 5 path (seed {results.get('seed', 0)})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb", suffix=".png.tmp") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def with_overrides(preset: DemoPreset, **overrides: Any) -> DemoPreset:
    """``preset`` with the non-``None`` ``overrides`` replaced."""
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})
