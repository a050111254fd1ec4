"""Issue 20's keypoint-reliance study: run the gait diagnosis arm and summarise the face / gait demos over seeds.

::

    # the diagnosis arm: Swin bias and KP-RPE under the demo's OLD recipe (no scale/translation augmentation)
    python tools/keypoint_study.py gait-old-recipe runs/gait_old/seed0 --seed 0 [--data runs/gait/seed0/synthgait-small]
    # paired summaries (mean +- std over seeds of per-seed differences; how many seeds are positive)
    python tools/keypoint_study.py face runs/face/seed0 runs/face/seed1 runs/face/seed2 [--write benchmarks/face_demo]
    python tools/keypoint_study.py gait runs/gait/seed0 runs/gait/seed1 runs/gait/seed2 [--write benchmarks/gait_demo]

The protocols are pre-registered in ``benchmarks/face_demo/README.md`` and ``benchmarks/gait_demo/README.md``.
Each demo run's ``results.json`` holds every number; this script only pairs them by seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: the gait demo's recipe before issue 20 (OpenGait's SwinGait transform: no scale / translation)
OLD_GAIT_AUGMENT = {"perspective_prob": 0.2, "flip_prob": 0.2, "rotate_prob": 0.2}
#: face: (arm, reference arm) pairs of the paired table
FACE_PAIRS = (("kprpe", "kprpe_const"), ("kprpe_lr10", "kprpe_const"), ("kprpe", "none"), ("kprpe_lr10", "none"),
              ("kprpe", "irpe"), ("kprpe_lr10", "irpe"), ("kprpe_lr10", "kprpe"), ("kprpe_const", "none"))  # fmt: skip
#: gait: (arm, reference arm)
GAIT_PAIRS = (("kprpe", "kprpe_const"), ("kprpe", "swin"), ("kprpe_const", "swin"))


def _load(dirs: list[str]) -> list[dict]:
    runs = []
    for folder in dirs:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise SystemExit(f"{path} not found: run the demo for that seed first")
        runs.append(json.loads(path.read_text()))
    return runs


def _paired(values: list[float]) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    positive = sum(v > 0 for v in values)
    return f"{mean:+.1f} ± {spread:.1f} ({positive}/{len(values)})"


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f}"


def face_summary(runs: list[dict]) -> str:
    """Markdown: mean accuracy per arm and set, the paired differences, and the reliance figures."""
    arms = [a for a in runs[0]["models"] if all(a in r["models"] for r in runs)]
    sets = list(runs[0]["models"][arms[0]]["sets"])
    probe = runs[0].get("probe_set", "shift2")
    seeds = [r["seed"] for r in runs]
    out = [f"Seeds {seeds}; accuracy in % with true landmarks (the control: the template), mean over seeds.", ""]
    out += ["| arm | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for arm in arms:
        cells = [_mean([100 * r["models"][arm]["sets"][s]["accuracy"]["true"] for r in runs]) for s in sets]
        out.append(f"| {runs[0]['models'][arm]['name']} | " + " | ".join(cells) + " |")
    out += ["", "Paired differences of accuracy (points; mean ± std over seeds, seeds positive):", ""]
    out += ["| difference | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for arm, ref in FACE_PAIRS:
        if arm in arms and ref in arms:
            cells = [_paired([100 * (r["models"][arm]["sets"][s]["accuracy"]["true"]
                                     - r["models"][ref]["sets"][s]["accuracy"]["true"]) for r in runs])
                     for s in sets]  # fmt: skip
            out.append(f"| {arm} - {ref} | " + " | ".join(cells) + " |")
    out += ["", "True-minus-constant landmark accuracy per arm (points; mean ± std, seeds positive):", ""]
    out += ["| arm | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for arm in arms:
        cells = [_paired([100 * (r["models"][arm]["sets"][s]["accuracy"]["true"]
                                 - r["models"][arm]["sets"][s]["accuracy"]["constant"]) for r in runs])
                 for s in sets]  # fmt: skip
        out.append(f"| {arm} | " + " | ".join(cells) + " |")
    out += ["", f"Reliance probe on `{probe}` (mean over seeds): keypoint part of the bias (mean over layers) / "
            "logit spread, embedding cosine true vs constant, accuracy with shuffled landmarks:", ""]  # fmt: skip
    out += ["| arm | keypoint bias | logit spread | cos(true, const) | acc true | acc constant | acc shuffled |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm in arms:
        rows = [r["models"][arm]["sets"][probe] for r in runs]
        out.append(
            f"| {arm} | {statistics.fmean(p['keypoint_bias'] for p in rows):.3f} | "
            f"{statistics.fmean(p['logit_spread'] for p in rows):.2f} | "
            f"{statistics.fmean(p['embedding_cosine']['mean'] for p in rows):.4f} | "
            + " | ".join(_mean([100 * p["accuracy"][m] for p in rows]) for m in ("true", "constant", "shuffled"))
            + " |"
        )
    return "\n".join(out)


def gait_summary(runs: list[dict]) -> str:
    """Markdown: mean Rank-1 / mAP per arm and split, paired differences, and the reliance figures."""
    arms = [a for a in runs[0]["results"] if all(a in r["results"] for r in runs)]
    splits = list(runs[0]["results"][arms[0]])
    seeds = [r["seed"] for r in runs]
    from kprpe_gait.demo import MODELS

    out = [f"Seeds {seeds}; Rank-1 / mAP in %, mean over seeds.", ""]
    out += ["| arm | " + " | ".join(f"R1 {s} | mAP {s}" for s in splits) + " |", "|---|" + "---|---|" * len(splits)]
    for arm in arms:
        cells = [f"{_mean([r['results'][arm][s][m] for r in runs])}" for s in splits for m in ("Rank-1", "mAP")]
        out.append(f"| {MODELS.get(arm, (arm,))[0]} | " + " | ".join(cells) + " |")
    out += ["", "Paired differences (points; mean ± std over seeds, seeds positive):", ""]
    out += ["| difference | " + " | ".join(f"R1 {s} | mAP {s}" for s in splits) + " |",
            "|---|" + "---|---|" * len(splits)]  # fmt: skip
    for arm, ref in GAIT_PAIRS:
        if arm in arms and ref in arms:
            cells = [_paired([r["results"][arm][s][m] - r["results"][ref][s][m] for r in runs])
                     for s in splits for m in ("Rank-1", "mAP")]  # fmt: skip
            out.append(f"| {arm} - {ref} | " + " | ".join(cells) + " |")
    out += ["", "Reliance probe (mean over seeds): mAP with own / mean-pose / shuffled joints, embedding change "
            "own -> mean pose, keypoint part of the bias / logit spread:", ""]  # fmt: skip
    out += ["| arm | split | mAP own | mAP mean pose | mAP shuffled | embedding change | keypoint bias | logit spread |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm in arms:
        for split, probe in runs[0]["reliance"][arm].items():
            if "mean_pose" not in probe["metrics"]:
                continue
            rows = [r["reliance"][arm][split] for r in runs]
            maps = [_mean([p["metrics"][m]["mAP"] for p in rows]) for m in ("own", "mean_pose", "shuffled")]
            out.append(f"| {arm} | {split} | " + " | ".join(maps) + f" | {statistics.fmean(p['embedding_change'] for p in rows):.4f}"
                       f" | {statistics.fmean(p['keypoint_bias'] for p in rows):.3f}"
                       f" | {statistics.fmean(p['logit_spread'] for p in rows):.2f} |")  # fmt: skip
    return "\n".join(out)


def face_diagnose(folder: str, seed: int) -> str:
    """Post-hoc (not pre-registered): how far a translation moves each arm's embedding, against how far
    replacing the landmarks moves it. Cosine of the (unflipped) embeddings of the aligned test crops and of
    the same crops translated by 0.5 / 1 / 2 tokens; and, on the 1-token set, true vs constant landmarks."""
    from face.demo import ARMS, PRESETS, test_sets
    from face.eval import embed
    from face.eval.reliance import ConstantLandmarks, constant_landmarks
    from face.models import load_pretrained

    root = Path(folder)
    files = {"aligned": root / "synthface" / "test" / "aligned.bin",
             "unaligned": root / "synthface" / "test" / "unaligned.bin"}  # fmt: skip
    patch = int(PRESETS["default"].model["patch_size"])
    sets = test_sets(files, patch, seed)
    out = ["| arm | cos(aligned, shift 0.5) | cos(aligned, shift 1) | cos(aligned, shift 2) | shift 1: cos(true, constant) |",
           "|---|---|---|---|---|"]  # fmt: skip
    for arm, spec in ARMS.items():
        model_dir = root / "runs" / arm / "model"
        if not model_dir.is_dir():
            continue
        model = load_pretrained(model_dir)
        model = ConstantLandmarks(model) if spec.keypoints == "constant" else model
        images, points, _ = sets["aligned"]
        base = embed(model, images, points, flip=False)
        cells = []
        for name in ("shift0.5", "shift1", "shift2"):
            moved, moved_points, _ = sets[name]
            cells.append(f"{float((base * embed(model, moved, moved_points, flip=False)).sum(-1).mean()):.3f}")
        moved, moved_points, _ = sets["shift1"]  # where the landmarks really differ from the template
        true = embed(model, moved, moved_points, flip=False)
        const = embed(model, moved, constant_landmarks(len(moved)), flip=False)
        cells.append(f"{float((true * const).sum(-1).mean()):.4f}")
        out.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def run_old_recipe(out: str, seed: int, data: str | None, threads: int) -> None:
    from kprpe_gait.demo import PRESETS, format_reliance, format_table, run_demo

    preset = replace(PRESETS["default"], augment=dict(OLD_GAIT_AUGMENT), models=("swin", "kprpe"))
    summary = run_demo(out, preset, seed, data, threads, progress=False)
    print(format_table(summary))
    print(format_reliance(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    old = sub.add_parser("gait-old-recipe", help="Swin bias and KP-RPE under the demo's old recipe")
    old.add_argument("out")
    old.add_argument("--seed", type=int, default=0)
    old.add_argument("--data", default=None, help="an existing SynthGait folder")
    old.add_argument("--threads", type=int, default=1)
    diagnose = sub.add_parser("face-diagnose", help="post hoc: embedding movement under translation vs landmarks")
    diagnose.add_argument("run")
    diagnose.add_argument("--seed", type=int, default=0)
    for name in ("face", "gait"):
        summary = sub.add_parser(name, help=f"paired summary of {name} demo runs (one folder per seed)")
        summary.add_argument("runs", nargs="+")
        summary.add_argument("--write", default=None, help="also write <folder>/keypoint_study.md")
    args = parser.parse_args(argv)
    if args.command == "gait-old-recipe":
        run_old_recipe(args.out, args.seed, args.data, args.threads)
        return 0
    if args.command == "face-diagnose":
        print(face_diagnose(args.run, args.seed))
        return 0
    runs = _load(args.runs)
    text = face_summary(runs) if args.command == "face" else gait_summary(runs)
    print(text)
    if args.write:
        (Path(args.write) / "keypoint_study.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
