"""``kprpe-face demo``: SynthFace -> the same small ViT with five position encodings -> controlled misalignments,
each scored with true and with constant landmarks, and the keypoint-reliance probe.

::

    kprpe-face demo                      # about 20 CPU minutes (five models of 1000 steps, one thread)
    kprpe-face demo --quick              # the same pipeline in seconds (a smoke test)
    kprpe-face demo --seed 1 --out runs/face_demo_seed1
    kprpe-face demo --models none,kprpe,kprpe_const

The protocol is pre-registered in ``benchmarks/face_demo/README.md`` (issue 20); in short:

1. SynthFace (:func:`face.synth.generate`, seeded by ``--seed``) into ``OUT/synthface`` (reused when it is
   already there): aligned training images per identity + landmark CSV, and the test pairs of held-out
   identities as aligned crops, unaligned (detection-box) crops and raw photos with boxes.
2. Train the small ViT (:data:`DEMO_MODEL`: FA's ``vit_tiny`` at patch 16, a 7 x 7 token grid) once per arm of
   :data:`ARMS`, identical except the position encoding and its options, from identical shared initial
   weights (:func:`kprpe.core.decay.position_rng`) and the same data order and augmentation draws:
   ViT, ViT + iRPE, ViT + KP-RPE (the authors' parametrisation), ViT + KP-RPE with a 10x learning rate on
   ``W_L`` (``kprpe_lr_scale``), and the **control**: KP-RPE trained and tested with constant landmarks
   (the ArcFace template for every face: everything KP-RPE can learn without landmark information).
   CosFace (s 16, m 0.1), AdamW + warm-up + cosine, 1000 steps of 32, authors-like geometric augmentation
   (:data:`DEMO_AUGMENT`). Checkpoints and TensorBoard logs go to ``OUT/runs/<arm>/``; a second call reuses
   finished runs.
3. Test sets (:data:`TEST_SETS`): the aligned pairs moved by exact translations of 0.5, 1, 1.5 and 2 tokens
   (a random direction per face), scaled by 0.8 and 0.65, rotated by 20 degrees, and the detection crops;
   each scored with true, constant and shuffled landmarks (:func:`face.eval.keypoint_reliance`), with the
   attention-bias probe; plus the paper's Fig. 5 path.
4. Print the tables; write ``OUT/results.json``, ``OUT/table.md`` and ``OUT/results.png`` (accuracy against
   the translation, true landmarks solid, constant dashed).

Why not the paper's loss at this scale: measured on SynthFace seed 0 (one core, batch 32), AdaFace (s 64,
m 0.4) left the training loss flat and verification at chance after 200 steps (patch 8 and 16, lr 5e-4 and
2e-3); CosFace s 16, m 0.1 learns within the budget. Patch 16 makes a step about 7x cheaper than patch 8.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from kprpe.io import atomic_open, atomic_write_text

__all__ = ["ARMS", "DEMO_AUGMENT", "DEMO_MODEL", "MODELS", "PRESETS", "TEST_SETS", "Arm", "DemoPreset", "format_table",
           "plot_results", "run_demo"]

#: FA's vit_tiny (width 96, depth 4, 4 heads) at patch 16 (a 7 x 7 token grid): 7x cheaper than patch 8 on the CPU
DEMO_MODEL: dict[str, Any] = {"preset": "vit_tiny", "patch_size": 16}
#: the protocol's training augmentation (benchmarks/face_demo/README.md): geometric and authors-like (scale
#: 0.9-1.1, shift +-0.05, rotation at 0.2 up to +-10 degrees, flip), no stretched crop; the photometric, cutout,
#: blur and low-resolution ones are off (SynthFace's photos already carry those nuisances)
DEMO_AUGMENT: dict[str, Any] = {"crop_prob": 0.0, "scale": (0.9, 1.1), "max_shift": 0.05, "rotation_prob": 0.2,
                                "max_rotation": 10.0, "flip_prob": 0.5, "photometric_prob": 0.0, "cutout_prob": 0.0,
                                "blur_prob": 0.0, "low_res_prob": 0.0}  # fmt: skip


@dataclass(frozen=True)
class Arm:
    """One model of the demo: a display name, the backbone's ``rpe`` and :class:`face.train.TrainConfig` options."""

    name: str
    rpe: str
    kprpe_lr_scale: float = 1.0
    keypoints: str = "true"  # "constant": trained and tested with the template (the control)


#: arm -> what differs; everything else is the preset's
ARMS: dict[str, Arm] = {
    "none": Arm("ViT", "none"),
    "irpe": Arm("ViT + iRPE", "irpe"),
    "kprpe": Arm("ViT + KP-RPE", "kprpe"),
    "kprpe_lr10": Arm("ViT + KP-RPE, W_L lr x10", "kprpe", kprpe_lr_scale=10.0),
    "kprpe_const": Arm("KP-RPE, constant landmarks (control)", "kprpe", keypoints="constant"),
}
#: arm -> display name
MODELS: dict[str, str] = {key: arm.name for key, arm in ARMS.items()}
#: test set -> (translation in tokens, scale, rotation in degrees); "unaligned" is the detection crops
TEST_SETS: dict[str, tuple[float, float, float] | None] = {
    "aligned": (0.0, 1.0, 0.0),
    "shift0.5": (0.5, 1.0, 0.0),
    "shift1": (1.0, 1.0, 0.0),
    "shift1.5": (1.5, 1.0, 0.0),
    "shift2": (2.0, 1.0, 0.0),
    "scale0.8": (0.0, 0.8, 0.0),
    "scale0.65": (0.0, 0.65, 0.0),
    "rot20": (0.0, 1.0, 20.0),
    "unaligned": None,
}
#: the set the summary's reliance columns read (a 2-token shift: translation is what a linear W_L can follow)
PROBE_SET = "shift2"
#: the TAR@FAR point of the table: the smallest FAR the demo's test pairs resolve
TABLE_FAR = "1e-02"


@dataclass(frozen=True)
class DemoPreset:
    """Everything the demo decides; the models differ only in what their :data:`ARMS` entry says.

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


def _train_config(preset: DemoPreset, arm: str, files: dict[str, Path], out: Path, seed: int, threads: int):
    from face.train import TrainConfig

    spec = ARMS[arm]
    return TrainConfig(
        train=str(files["train"]),
        train_landmarks=str(files["train_landmarks"]),
        out_dir=str(out / "runs" / arm),
        model={**preset.model, "rpe": spec.rpe},
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
        kprpe_lr_scale=spec.kprpe_lr_scale,
        keypoints=spec.keypoints,
    )


def test_sets(files: dict[str, Path], patch_size: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor, Any]]:
    """:data:`TEST_SETS` as ``{name: (images (2N, 3, H, W) uint8, keypoints (2N, 5, 3) in [0, 1], issame)}``:
    the aligned pairs warped by :func:`face.eval.warp_pairs` (directions and signs seeded by ``seed``, the same
    for every arm), and the detection crops with their landmarks."""
    from face.align import normalise_landmarks
    from face.data import read_verification_bin
    from face.eval.reliance import warp_pairs

    out: dict[str, tuple[torch.Tensor, torch.Tensor, Any]] = {}
    for split in ("aligned", "unaligned"):
        pairs = read_verification_bin(files[split])
        images = torch.stack(list(pairs.images()))
        if pairs.landmarks is None:
            raise ValueError(f"{pairs.path}: the demo needs the landmark sidecar")
        keypoints = normalise_landmarks(torch.as_tensor(pairs.landmarks), tuple(images.shape[-2:]))
        if split == "unaligned":
            out[split] = (images, keypoints, pairs.issame)
            continue
        for name, geometry in TEST_SETS.items():
            if geometry is not None:
                tokens, scale, rotation = geometry
                warped, moved = warp_pairs(images, keypoints, tokens * patch_size, scale, rotation, seed)
                out[name] = (warped, moved, pairs.issame)
    return {name: out[name] for name in TEST_SETS}


def _evaluate_arm(backbone, sets: dict, raw, preset: DemoPreset, seed: int) -> dict[str, Any]:
    from face.eval import evaluate_path
    from face.eval.reliance import keypoint_reliance

    entry: dict[str, Any] = {"sets": {}}
    for name, (images, keypoints, issame) in sets.items():
        probe = keypoint_reliance(backbone, images, keypoints, issame, batch_size=preset.eval_batch_size,
                                  device="cpu", seed=seed)  # fmt: skip
        entry["sets"][name] = probe
    entry["path"] = evaluate_path(backbone, raw, steps=preset.path_steps, flip=preset.path_flip,
                                  batch_size=preset.eval_batch_size, device="cpu")  # fmt: skip
    entry["path"]["tar_at_far"] = [{f: p["tar"] for f, p in row.items()} for row in entry["path"]["tar_at_far"]]
    return entry


def run_demo(
    out: str | Path = "runs/face_demo",
    preset: DemoPreset | str = "default",
    seed: int = 0,
    models: tuple[str, ...] = tuple(ARMS),
    threads: int = 0,
    progress: bool = True,
) -> dict:
    """Run the demo (see the module docstring); returns the results dict also written to ``OUT/results.json``."""
    from face.data import read_verification_bin
    from face.eval.reliance import ConstantLandmarks
    from face.synth import generate, synth_config
    from face.train import Trainer

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown demo preset {preset!r}; choose one of {', '.join(PRESETS)}")
        name, preset = preset, PRESETS[preset]
    else:
        name = "custom"
    unknown = [m for m in models if m not in ARMS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(ARMS)}")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    start, cpu_start = time.perf_counter(), time.process_time()
    synth = synth_config(preset.synth, seed=seed, **preset.synth_overrides)
    files = generate(synth, out / "synthface", progress=progress)
    manifest = json.loads(Path(files["manifest"]).read_text())
    synth_seconds = time.perf_counter() - start
    patch = int(preset.model.get("patch_size", 8))
    sets = test_sets(files, patch, seed)
    raw = read_verification_bin(files["raw"])

    results: dict[str, Any] = {
        "preset": name,
        "settings": asdict(preset),
        "seed": seed,
        "threads": torch.get_num_threads(),
        "patch_size": patch,
        "test_sets": {k: (None if v is None else dict(zip(("tokens", "scale", "rotation"), v)))
                      for k, v in TEST_SETS.items()},  # fmt: skip
        "probe_set": PROBE_SET,
        "synthface": {
            "config": synth.to_dict(),
            "counts": manifest.get("counts", {}),
            "seconds": round(synth_seconds, 1),
        },
        "models": {},
    }
    for arm in models:
        spec = ARMS[arm]
        config = _train_config(preset, arm, files, out, seed, threads)
        trainer = Trainer(config, progress=progress)
        begun, cpu = time.perf_counter(), time.process_time()
        backbone = trainer.train()
        train_seconds, train_cpu = time.perf_counter() - begun, time.process_time() - cpu
        begun, cpu = time.perf_counter(), time.process_time()
        model = ConstantLandmarks(backbone) if spec.keypoints == "constant" else backbone
        entry: dict[str, Any] = {"name": spec.name, "rpe": spec.rpe, **asdict(spec)}
        entry.update(_evaluate_arm(model, sets, raw, preset, seed))
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
            scalars = {f"test/{s}/accuracy": e["accuracy"]["true"] for s, e in entry["sets"].items()}
            scalars[f"test/{PROBE_SET}/keypoint_bias"] = entry["sets"][PROBE_SET]["keypoint_bias"]
            trainer.log.log(scalars, trainer.step, keep=False)
        trainer.close()
        results["models"][arm] = entry
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["cpu_seconds"] = round(time.process_time() - cpu_start, 1)  # wall time on a shared machine says less
    table = format_table(results)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "table.md", table + "\n")
    plot_results(results, out / "results.png")
    return results


def format_table(results: dict) -> str:
    """Markdown: accuracy (true landmarks) on every test set, the control's constant-landmark view, and the
    reliance probe on :data:`PROBE_SET`; then the true-minus-constant accuracy per set."""
    models = results["models"]
    if not models:
        return ""
    probe = results.get("probe_set", PROBE_SET)
    names = list(next(iter(models.values()))["sets"])
    header = ["model"] + [f"{n} acc" for n in names]
    header += [f"{probe} true-const", f"{probe} shuffled", "keypoint bias / logit spread", "cos(true, const)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in models.values():
        sets = entry["sets"]
        cells = [entry["name"]] + [f"{100 * sets[n]['accuracy']['true']:.2f}" for n in names]
        p = sets[probe]
        cells += [
            f"{100 * (p['accuracy']['true'] - p['accuracy']['constant']):+.2f}",
            f"{100 * p['accuracy']['shuffled']:.2f}",
            f"{p['keypoint_bias']:.3f} / {p['logit_spread']:.2f}",
            f"{p['embedding_cosine']['mean']:.4f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_results(results: dict, path: str | Path) -> None:
    """Accuracy against the translation in tokens, one colour per model: true landmarks solid, constant dashed
    (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shifts = [(n, g[0]) for n, g in TEST_SETS.items() if g is not None and g[1] == 1.0 and g[2] == 0.0]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for index, entry in enumerate(results["models"].values()):
        colour = f"C{index}"
        xs = [t for n, t in shifts if n in entry["sets"]]
        for mode, style in (("true", "-"), ("constant", "--")):
            ys = [100 * entry["sets"][n]["accuracy"][mode] for n, _ in shifts if n in entry["sets"]]
            ax.plot(xs, ys, style, color=colour, marker="o", label=entry["name"] if mode == "true" else None)
    ax.set_xlabel("translation of the aligned test crops (tokens)")
    ax.set_ylabel("verification accuracy (%)")
    ax.set_title(f"SynthFace, seed {results.get('seed', 0)}: true landmarks solid, constant dashed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_open(path, "wb", suffix=".png.tmp") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def with_overrides(preset: DemoPreset, **overrides: Any) -> DemoPreset:
    """``preset`` with the non-``None`` ``overrides`` replaced."""
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})
