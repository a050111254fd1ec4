"""Results of the study: the JSON file (written after every run), the markdown table and the bar chart."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kprpe.io import atomic_write_bytes, atomic_write_text

from .models import VARIANTS

__all__ = [
    "PAIRS",
    "PAPER",
    "atomic_write_json",
    "bar_chart",
    "markdown_table",
    "paired_differences",
    "paired_table",
    "sample_grid",
    "summarize",
]

#: the paired comparisons the study reports: (variant, baseline), same seed = same batches.
PAIRS = (
    ("kprpe_multihead", "rpe"),
    ("kprpe_multihead", "irpe"),
    ("kprpe_multihead", "abs_pe"),
    ("kprpe_only", "rpe_only"),
)
#: the accuracy columns of a run, with their table names.
METRICS = (("mnist_acc", "MNIST test"), ("affine_acc", "affine test"), ("affine_centred_acc", "re-centred"))

#: the only numbers the paper states for Fig. 1 (Abs-PE; the other bars are given as a chart only).
PAPER = {"abs_pe": {"mnist_acc": 98.1, "affine_acc": 77.27}}


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant (in :data:`VARIANTS` order): seeds, mean and sample std of the three accuracies,
    params, mean training seconds per run."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_variant.setdefault(run["variant"], []).append(run)
    rows = []
    for name in [v for v in VARIANTS if v in by_variant]:
        group = by_variant[name]
        mnist, mnist_sd = _mean_std([r["mnist_acc"] for r in group])
        affine, affine_sd = _mean_std([r["affine_acc"] for r in group])
        centred, centred_sd = _mean_std([r["affine_centred_acc"] for r in group])
        rows.append(
            {
                "variant": name,
                "label": VARIANTS[name].label,
                "seeds": sorted(r["seed"] for r in group),
                "mnist_mean": mnist,
                "mnist_std": mnist_sd,
                "affine_mean": affine,
                "affine_std": affine_sd,
                "centred_mean": centred,
                "centred_std": centred_sd,
                "params": group[0]["params"],
                "train_s": statistics.fmean(r["train_s"] for r in group),
            }
        )
    return rows


def paired_differences(runs: Iterable[dict[str, Any]], variant: str, baseline: str) -> dict[str, Any] | None:
    """Per-seed accuracy differences ``variant - baseline`` over the seeds both have.

    Returns ``None`` when they share no seed, else ``{"variant", "baseline", "seeds", and per metric
    key: {"diffs", "mean", "std", "wins"}}`` (points of accuracy; ``std`` is the sample std of the
    differences, 0 for one seed; ``wins`` counts seeds where ``variant`` is strictly better).
    """
    by_key = {(r["variant"], r["seed"]): r for r in runs}
    seeds = sorted(s for v, s in by_key if v == variant and (baseline, s) in by_key)
    if not seeds:
        return None
    out: dict[str, Any] = {"variant": variant, "baseline": baseline, "seeds": seeds}
    for key, _ in METRICS:
        diffs = [by_key[(variant, s)][key] - by_key[(baseline, s)][key] for s in seeds]
        mean, std = _mean_std(diffs)
        out[key] = {"diffs": diffs, "mean": mean, "std": std, "wins": sum(d > 0 for d in diffs)}
    return out


def paired_table(runs: Iterable[dict[str, Any]], pairs: Iterable[tuple[str, str]] = PAIRS) -> str:
    """Markdown table of :func:`paired_differences` for ``pairs`` (those with a common seed): mean
    difference ± sample std over seeds, and the number of seeds the first variant wins."""
    runs = list(runs)
    lines = [
        "| Paired comparison (same seed, same batches) | "
        + " | ".join(f"{name}: mean diff ± std (wins)" for _, name in METRICS)
        + " | Seeds |",
        "|---|" + "---:|" * (len(METRICS) + 1),
    ]
    for variant, baseline in pairs:
        diff = paired_differences(runs, variant, baseline)
        if diff is None:
            continue
        n = len(diff["seeds"])
        cells = [f"{diff[key]['mean']:+.2f} ± {diff[key]['std']:.2f} ({diff[key]['wins']}/{n})" for key, _ in METRICS]
        lines.append(f"| {VARIANTS[variant].label} - {VARIANTS[baseline].label} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def _pm(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def markdown_table(summary: list[dict[str, Any]]) -> str:
    """A markdown table of :func:`summarize` rows (accuracy in %, mean ± sample std over seeds)."""
    lines = [
        "| Position encoding | MNIST test (%) | Affine test (%) | Affine, re-centred (%) | Params "
        "| Train time / run (s) | Seeds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary:
        n = len(row["seeds"])
        lines.append(
            f"| {row['label']} | {_pm(row['mnist_mean'], row['mnist_std'], n)} | "
            f"{_pm(row['affine_mean'], row['affine_std'], n)} | {_pm(row['centred_mean'], row['centred_std'], n)} | "
            f"{row['params']:,} | {row['train_s']:.0f} | {n} |"
        )
    return "\n".join(lines) + "\n"


def bar_chart(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    """Grouped bars (MNIST test, affine test, re-centred affine test; error bars = sample std over
    seeds), with the paper's Abs-PE numbers marked; written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["label"] for row in summary]
    xs = range(len(summary))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(summary)), 4.6))
    groups = (
        (-width, "mnist", "MNIST test (centred)", "#9aa5b1"),
        (0.0, "affine", "affine test", "#2f6db5"),
        (width, "centred", "affine, re-centred", "#e08a3c"),
    )
    for offset, key, name, colour in groups:
        means = [row[f"{key}_mean"] for row in summary]
        stds = [row[f"{key}_std"] for row in summary]
        bars = ax.bar([x + offset for x in xs], means, width, yerr=stds, capsize=3, label=name, color=colour)
        ax.bar_label(bars, labels=[f"{m:.0f}" for m in means], fontsize=6, padding=1)
    for i, row in enumerate(summary):
        ref = PAPER.get(row["variant"])
        if ref:
            ax.plot([i - width, i], [ref["mnist_acc"], ref["affine_acc"]], "k*", markersize=9, label="paper (Abs-PE)")
    ax.set_xticks(list(xs), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    low = min(min(row["affine_mean"] - row["affine_std"], row["centred_mean"] - row["centred_std"]) for row in summary)
    ax.set_ylim(max(0.0, 10 * (low // 10) - 10), 102)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def sample_grid(rows: list[tuple[str, Any]], path: Path, count: int = 12) -> None:
    """The first ``count`` images of each named set (an :class:`~.train.EvalSet`) with their keypoints
    overlaid (corners red, centre yellow), one row per set; written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), count, figsize=(count * 0.9, len(rows) * 1.05), squeeze=False)
    for r, (name, data) in enumerate(rows):
        for c in range(count):
            ax = axes[r, c]
            image = data.images[c, 0].numpy()
            height, width = image.shape
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, width, height, 0))
            kps = data.keypoints[c].numpy()
            ax.scatter(kps[:4, 0] * width, kps[:4, 1] * height, s=6, c="red")
            ax.scatter(kps[4:, 0] * width, kps[4:, 1] * height, s=6, c="yellow")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
