"""``kprpe-gait demo``: SynthGait -> SwinGait-2D with and without KP-RPE -> aligned / misaligned results.

::

    kprpe-gait demo                         # about ten minutes on a 2-core CPU
    kprpe-gait demo --quick                 # the same pipeline in well under a minute (a smoke test)
    kprpe-gait demo --opengait-root R       # the same through OpenGait's main.py (the plugin)
    kprpe-gait demo --models kprpe --kprpe-grid window   # only the KP-RPE model, window-sized grid

Steps (everything under ``--out``, default ``runs/demo``):

1. SynthGait (:func:`kprpe_gait.data.synth.generate`) into ``OUT/synthgait-<size>`` (reused when it is
   already there): ``pkl/`` (aligned), ``pkl-misaligned/`` (the test sequences after a random
   similarity, per-frame jitter and crop errors, joints moved with the silhouettes), ``partition.json``.
2. Train SwinGait-2D (Swin's window bias) and SwinGait-2D + KP-RPE with :class:`kprpe_gait.train.Trainer`
   on the aligned ``TRAIN_SET``, same data order, budget and recipe (OpenGait's SwinGait semantics:
   P x K batches, ordered frames, joint-aware augmentation, triplet + CE, AdamW, SGDR). Checkpoints go
   to ``OUT/runs/<model>/``, TensorBoard logs to ``OUT/tb/<model>/``. A second run resumes / reuses them.
3. Test both on the aligned and the misaligned test split with Gait3D's protocol (``PROBE_SET``
   probes against every other test sequence, :func:`kprpe_gait.eval.evaluate_gait3d`).
4. Print a markdown table, write ``OUT/results.json`` and ``OUT/results.png``.

The demo's network is a narrow SwinGait-2D (:data:`DEMO_MODEL`): the architecture of the full model
(conv stem 1 + 4 BasicBlocks, 15x10 tokens, 4 + 2 Swin blocks with 3x5 shifted windows, Linear between
the stages, 15 horizontal bins, separate FCs and BNNecks) with 8x fewer channels, so that both models
train on a CPU in minutes. ``configs/gait3d/`` holds the full-size paper recipe.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kprpe.io import atomic_open

__all__ = ["ARMS", "DEMO_MODEL", "MODELS", "PRESETS", "SPLITS", "DemoPreset", "GaitArm", "format_reliance", "format_table",
           "plot_results", "run_demo", "token_pixels"]

#: narrow SwinGait-2D of the demo (full size: channels (64, 128), embed_dim 256, heads (16, 32), out 256)
DEMO_MODEL: dict[str, Any] = {
    "channels": (8, 16),
    "layers": (1, 4, 4, 2),
    "embed_dim": 32,
    "num_heads": (2, 4),
    "out_channels": 32,
    "drop_path_rate": 0.1,
}


@dataclass(frozen=True)
class GaitArm:
    """One model of the demo: a display name, ``rel_pos`` and :class:`kprpe_gait.train.TrainConfig` options."""

    name: str
    rel_pos: str
    kprpe_lr_scale: float = 1.0
    joints: str = "true"  # "constant": trained and tested with the training set's mean pose (the control)


#: arm -> what differs; everything else is the preset's
ARMS: dict[str, GaitArm] = {
    "swin": GaitArm("SwinGait-2D", "swin"),
    "kprpe": GaitArm("SwinGait-2D + KP-RPE", "kprpe"),
    "kprpe_const": GaitArm("KP-RPE, mean pose (control)", "kprpe", joints="constant"),
}
#: short name -> (display name, rel_pos)
MODELS: dict[str, tuple[str, str]] = {key: (arm.name, arm.rel_pos) for key, arm in ARMS.items()}
#: test split -> (pickle folder, translation in tokens of the aligned sequences)
SPLITS: dict[str, tuple[str, float]] = {
    "aligned": ("pkl", 0.0),
    "misaligned": ("pkl-misaligned", 0.0),
    "shift1": ("pkl", 1.0),
    "shift2": ("pkl", 2.0),
}
#: splits scored with the mean pose and shuffled joints too (the reliance probe)
PROBE_SPLITS = ("misaligned", "shift2")
METRICS = ("Rank-1", "Rank-5", "mAP", "mINP")
#: the metrics of the printed table
TABLE_METRICS = ("Rank-1", "mAP")
_PREFIX = "scalar/test_accuracy/"


@dataclass(frozen=True)
class DemoPreset:
    """Everything the demo decides; both models get exactly the same settings except ``rel_pos``."""

    size: str = "small"
    model: dict[str, Any] = field(default_factory=lambda: dict(DEMO_MODEL))
    iterations: int = 250
    batch_size: tuple[int, int] = (8, 2)
    frames: int = 10
    frames_skip: int = 4
    lr: float = 2e-3
    stem_lr_scale: float = 1.0  # from scratch (OpenGait's 0.1 assumes a stem and heads trained before)
    sgdr_cycle: int = 250  # one cosine cycle over the whole run
    cut: int = 10
    # OpenGait's SwinGait recipe (perspective, flip, rotation at 0.2) plus scale and translation at 0.5, sized to
    # SynthGait's documented misalignment (MisalignConfig: scale x[1/1.15, 1.15], shift +-4 px of 64): without
    # them nothing in training moves the person in the frame (benchmarks/gait_demo/README.md, issue 20)
    augment: dict[str, Any] = field(
        default_factory=lambda: {"perspective_prob": 0.2, "flip_prob": 0.2, "rotate_prob": 0.2, "affine_prob": 0.5,
                                 "scale_range": (0.87, 1.15), "max_translate": 0.0625}  # fmt: skip
    )
    eval_frames: int = 30
    log_every: int = 10
    kprpe_grid: str = "stage"  # the frame of KP-RPE's grid M: stage | window (kprpe.core.windows)
    models: tuple[str, ...] = tuple(ARMS)  # which of ARMS to train


PRESETS: dict[str, DemoPreset] = {
    "default": DemoPreset(),
    "quick": DemoPreset(
        size="tiny",
        model={
            "channels": (4, 8),
            "layers": (1, 1, 2, 2),
            "embed_dim": 8,
            "num_heads": (2, 2),
            "out_channels": 8,
            "drop_path_rate": 0.0,
        },
        iterations=3,
        batch_size=(2, 2),
        frames=4,
        sgdr_cycle=3,
        eval_frames=8,
        log_every=1,
    ),
}


# ------------------------------------------------------------------------------------------- running
def _run_name(preset: DemoPreset, model: str) -> str:
    kprpe = ARMS[model].rel_pos == "kprpe"
    return model if not kprpe or preset.kprpe_grid == "stage" else f"{model}-{preset.kprpe_grid}"


def _train_config(preset: DemoPreset, model: str, data_dir: Path, out_dir: Path, seed: int, threads: int):
    from kprpe_gait.train import TrainConfig

    arm, run = ARMS[model], _run_name(preset, model)
    return TrainConfig(
        dataset_root=str(data_dir / "pkl"),
        partition=str(data_dir / "partition.json"),
        out_dir=str(out_dir / "runs" / run),
        log_dir=str(out_dir / "tb" / run),
        model={
            **preset.model,
            "rel_pos": arm.rel_pos,
            **({"kprpe_grid": preset.kprpe_grid} if arm.rel_pos == "kprpe" else {}),
        },
        iterations=preset.iterations,
        batch_size=preset.batch_size,
        frames=preset.frames,
        frames_skip=preset.frames_skip,
        lr=preset.lr,
        stem_lr_scale=preset.stem_lr_scale,
        sgdr_cycle=preset.sgdr_cycle,
        augment=dict(preset.augment),
        cut=preset.cut,
        log_every=preset.log_every,
        save_every=-(-preset.iterations // 3),  # three checkpoints, the last at the end
        seed=seed,
        threads=threads,
        kprpe_lr_scale=arm.kprpe_lr_scale,
        joints=arm.joints,
    )


def token_pixels(preset: DemoPreset, frame_width: int = 64) -> float:
    """Width in stored pixels of one token of the demo network (the cut frame over the token grid's width)."""
    grid = preset.model.get("token_grid", (15, 10))
    return (frame_width - 2 * preset.cut) / int(grid[1])


def _evaluate(net, data_dir: Path, split: str, preset: DemoPreset, pose, seed: int, progress: bool) -> dict:
    """One split through :func:`kprpe_gait.eval.joint_reliance` (own joints only unless a probe split)."""
    from kprpe_gait.eval.reliance import JOINT_MODES, joint_reliance, translate_transform

    folder, tokens = SPLITS[split]
    transform = translate_transform(tokens * token_pixels(preset), seed) if tokens else None
    return joint_reliance(
        net, data_dir / folder, data_dir / "partition.json", pose, transform=transform, max_frames=preset.eval_frames,
        cut=preset.cut, seed=seed, progress=progress, modes=JOINT_MODES if split in PROBE_SPLITS else ("own",),
    )  # fmt: skip


def run_demo(
    out_dir: str | os.PathLike[str] = "runs/demo",
    preset: DemoPreset | str = "default",
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    threads: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate SynthGait, train and test every arm with the compact trainer (module docstring).

    Args:
        out_dir: where data (unless ``data_dir``), checkpoints, logs and results go.
        preset: a :data:`PRESETS` name or a :class:`DemoPreset`.
        seed: seeds SynthGait and every training run (the same seed for all arms: paired runs).
        data_dir: an existing SynthGait folder to use instead of generating one.
        threads: ``torch.set_num_threads`` (``0``: PyTorch's default).
        progress: tqdm bars.

    Returns:
        the summary written to ``out_dir/results.json`` (see :func:`format_table` for its shape).
    """
    from kprpe_gait.data.synth import SynthConfig, generate
    from kprpe_gait.eval.reliance import ConstantJoints
    from kprpe_gait.train import Trainer, mean_pose, read_partition

    preset = PRESETS[preset] if isinstance(preset, str) else preset
    out_dir = Path(out_dir)
    data_dir = Path(data_dir) if data_dir is not None else out_dir / f"synthgait-{preset.size}"
    start = time.perf_counter()
    generate(
        data_dir, SynthConfig.preset(preset.size, seed=seed), workers=min(4, os.cpu_count() or 1), progress=progress
    )
    timings: dict[str, float] = {"synthgait_s": time.perf_counter() - start}
    pose = mean_pose(data_dir / "pkl", read_partition(data_dir / "partition.json")["TRAIN_SET"], cut=preset.cut)

    summary: dict[str, Any] = {
        "runner": "compact", "device": "cpu", "seed": seed, "data_dir": str(data_dir), "iters": preset.iterations,
        "preset": _jsonable(asdict(preset)), "results": {}, "reliance": {}, "checkpoints": {}, "train": {},
        "timings": timings, "token_pixels": token_pixels(preset),
    }  # fmt: skip
    for model in preset.models:
        trainer = Trainer(_train_config(preset, model, data_dir, out_dir, seed, threads), progress=progress)
        start = time.perf_counter()
        done_before = trainer.iteration
        net = trainer.train()
        seconds = time.perf_counter() - start
        timings[f"train_{model}_s"] = seconds
        steps = trainer.iteration - done_before
        frames = preset.batch_size[0] * preset.batch_size[1] * preset.frames
        summary["train"][model] = {
            "iterations": trainer.iteration,
            "final_loss": trainer.history[-1]["loss"] if trainer.history else None,
            "frames_per_s": frames * steps / seconds if steps else None,
            "parameters": sum(p.numel() for p in net.parameters()),
        }
        summary["checkpoints"][model] = str(trainer.checkpoint_dir / f"iter-{trainer.iteration:05d}.pt")
        tested = ConstantJoints(net, pose) if ARMS[model].joints == "constant" else net
        start = time.perf_counter()
        for split in SPLITS:
            probe = _evaluate(tested, data_dir, split, preset, pose, seed, progress)
            metrics = probe["metrics"]["own"]
            summary["results"].setdefault(model, {})[split] = metrics
            summary["reliance"].setdefault(model, {})[split] = probe
            trainer.log_scalars({f"test/{split}/{k}": v for k, v in metrics.items()})
        timings[f"test_{model}_s"] = time.perf_counter() - start
        trainer.close()
    timings["total_s"] = sum(timings.values())
    write_results(summary, out_dir)
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------- reporting
def format_table(summary: dict[str, Any], metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """Markdown table: one row per model, ``metric split`` columns in percent (``-`` where not measured).

    ``summary["results"]`` is ``{model: {split: {"Rank-1": ..., "Rank-5": ..., "mAP": ..., "mINP": ...}}}``
    (both runners produce it).
    """
    splits = [s for s in SPLITS if any(s in r for r in summary["results"].values())]
    header = ["model"] + [f"{m} {s}" for s in splits for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, results in summary["results"].items():
        name = MODELS[model][0] if model in MODELS else model
        cells = [f"{results[s][m]:.2f}" if s in results and m in results[s] else "-" for s in splits for m in metrics]
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines)


def format_reliance(summary: dict[str, Any]) -> str:
    """Markdown: per model and probe split, mAP with own / mean-pose / shuffled joints, the embedding change
    own -> mean pose, and the keypoint part of the attention bias against the logits' spread."""
    header = "| model | split | mAP own | mAP mean pose | mAP shuffled | embedding change | keypoint bias / logit spread |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for model, splits in summary.get("reliance", {}).items():
        name = MODELS[model][0] if model in MODELS else model
        for split, probe in splits.items():
            if "mean_pose" not in probe["metrics"]:
                continue
            maps = [f"{probe['metrics'][m]['mAP']:.2f}" for m in ("own", "mean_pose", "shuffled")]
            lines.append(f"| {name} | {split} | " + " | ".join(maps) + f" | {probe['embedding_change']:.4f} | "
                         f"{probe['keypoint_bias']:.3f} / {probe['logit_spread']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def plot_results(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Bar chart (one panel per metric; aligned / misaligned bars per model), written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    models = list(summary["results"])
    splits = [s for s in SPLITS if any(s in r for r in summary["results"].values())]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.4), sharey=True)
    width = 0.8 / len(models)
    for ax, metric in zip(axes, METRICS):
        for i, model in enumerate(models):
            values = [summary["results"][model].get(s, {}).get(metric, float("nan")) for s in splits]
            xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(splits))]
            bars = ax.bar(xs, values, width, label=MODELS[model][0] if model in MODELS else model)
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(range(len(splits)), splits)
        ax.set_title(metric)
        ax.set_ylim(0, 105)
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"SynthGait test, {summary.get('runner', '')} runner, {summary.get('iters', '?')} iterations", fontsize=9
    )
    fig.tight_layout()
    try:
        with atomic_open(path) as f:
            fig.savefig(f, format="png", dpi=120)
    finally:
        plt.close(fig)
    return path


def write_results(summary: dict[str, Any], out_dir: str | os.PathLike[str]) -> None:
    """``out_dir/results.json`` and ``out_dir/results.png``, both written atomically."""
    out_dir = Path(out_dir)
    with atomic_open(out_dir / "results.json", "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    plot_results(summary, out_dir / "results.png")


# ------------------------------------------------------------------------------------------- CLI
# The command-line glue is kprpe_gait.commands.demo (one module per sub-command, as face.commands); these
# names stay importable from here for code written before the move.
from kprpe_gait.commands import demo as _cli  # noqa: E402

add_arguments, run, _run_opengait = _cli.add_arguments, _cli.run, _cli._run_opengait
