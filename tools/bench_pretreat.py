"""Gait3D pretreatment: ``kprpe-gait pretreat-gait3d`` (silhouettes and joints) against OpenGait's own
``datasets/pretreatment.py`` (silhouettes only) on the same raw SynthGait frames, in one run.

    python tools/bench_pretreat.py --opengait-root /path/to/OpenGait                  # 1 and 2 workers
    python tools/bench_pretreat.py --opengait-root R --workers 1 2 4 --repeats 5 --write

Both tools run as users run them, each in a fresh process writing into an empty folder, in alternation
(OpenGait then ours, then ours then OpenGait, ...), so slow drifts of a machine shared with other jobs hit
both alike. Reported are medians over the repetitions of the wall time and of the CPU time (user + system
of the process and of its worker processes): on a shared machine the wall time includes waiting for a
core, the CPU time does not. Throughput is raw silhouette frames per second.

Then the outputs of the last repetition are compared: every frame that both tools keep must be
byte-identical (parity), and OpenGait's real output is fed to ``--from-pickles`` with every written row
checked against the truth from the raw frames (sequences written, mispaired rows, joint error).
``--write`` stores the tables as a section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kprpe.benchmark import command_line, publish
from kprpe_gait.data.crop import crop_silhouette
from kprpe_gait.data.formats import SIL_PKL_NAME
from kprpe_gait.data.io import (
    frame_number,
    list_sequence_folders,
    load_array_pickle,
    load_sequence,
    read_silhouette_png,
)
from kprpe_gait.data.pretreat import POSE_DIR_NAME, SIL_DIR_NAME, list_files, pretreat_frames
from kprpe_gait.data.recover import convert_opengait_pickles, joint_errors
from kprpe_gait.data.synth import SynthConfig, generate

SECTION = "bench_pretreat"
TOOLS = ("opengait", "ours")
LABELS = {
    "opengait": "OpenGait `datasets/pretreatment.py` (silhouettes)",
    "ours": "`kprpe-gait pretreat-gait3d` (silhouettes + joints)",
}


@dataclass
class Timing:
    wall_s: float
    cpu_s: float


def tool_command(tool: str, raw: Path, out: Path, workers: int, opengait_root: Path) -> list[str]:
    """The command line of one run of ``tool`` on ``raw`` (SynthGait's raw layout) into ``out``."""
    if tool == "opengait":
        script = opengait_root / "datasets" / "pretreatment.py"
        log = out.parent / f"{out.name}.log"
        return [sys.executable, str(script), "-i", str(raw / SIL_DIR_NAME), "-o", str(out), "-n", str(workers),
                "-l", str(log)]  # fmt: skip
    return [sys.executable, "-m", "kprpe_gait.cli", "pretreat-gait3d", "--root", str(raw), "--out", str(out),
            "--workers", str(workers), "--quiet"]  # fmt: skip


def timed_run(cmd: list[str], out: Path) -> Timing:
    """Run ``cmd`` (into an emptied ``out``) and return its wall time and the CPU time of it and its children."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def measure(raw: Path, work: Path, workers: list[int], repeats: int, opengait_root: Path) -> dict:
    """``{workers: {tool: [Timing, ...]}}``, the tools alternating within each repetition."""
    results = {w: {t: [] for t in TOOLS} for w in workers}
    for rep in range(repeats):
        for w in workers:
            order = TOOLS if rep % 2 == 0 else TOOLS[::-1]
            for tool in order:
                timing = timed_run(
                    tool_command(tool, raw, work / f"{tool}-{w}", w, opengait_root), work / f"{tool}-{w}"
                )
                results[w][tool].append(timing)
                print(
                    f"  rep {rep + 1}/{repeats} workers {w} {tool}: wall {timing.wall_s:.2f} s, cpu {timing.cpu_s:.2f} s"
                )
    return results


def parity(raw: Path, opengait_out: Path, ours_out: Path) -> dict:
    """Frame-by-frame comparison of OpenGait's pickles with ours.

    OpenGait's rows are its kept frames in string order of the file names; the frame each row holds is
    found by replaying the two drop rules on the PNGs (a sequence where that count differs from
    OpenGait's is counted in ``drop_mismatch``). Our rows are the frames of :func:`pretreat_frames`.
    """
    stats = {"sequences": 0, "frames_in": 0, "kept_opengait": 0, "kept_ours": 0, "compared": 0, "identical": 0,
             "pixels": 0, "pixels_identical": 0, "drop_mismatch": 0}  # fmt: skip
    for key in list_sequence_folders(raw / SIL_DIR_NAME):
        pngs = list_files(raw.joinpath(SIL_DIR_NAME, *key), ".png")
        stats["sequences"] += 1
        stats["frames_in"] += len(pngs)
        og_path = opengait_out.joinpath(*key, f"{key[2]}.pkl")
        theirs = np.zeros((0, 64, 64), np.uint8)
        if og_path.exists():
            theirs = load_array_pickle(og_path)
        stats["kept_opengait"] += len(theirs)
        kept = [p for p in pngs if crop_silhouette(read_silhouette_png(p)).dropped is None]
        if len(kept) != len(theirs):
            stats["drop_mismatch"] += 1
            continue
        by_number = dict(zip([frame_number(p) for p in kept], theirs))
        folder = ours_out.joinpath(*key)
        if not (folder / SIL_PKL_NAME).exists():
            continue
        sils, _ = load_sequence(folder)
        frames = pretreat_frames(pngs, list_files(raw.joinpath(POSE_DIR_NAME, *key), ".txt")).frames
        stats["kept_ours"] += len(sils)
        for number, sil in zip(frames, sils):
            other = by_number[number]
            stats["compared"] += 1
            stats["identical"] += int(np.array_equal(sil, other))
            stats["pixels"] += sil.size
            stats["pixels_identical"] += int((sil == other).sum())
    return stats


def truth_by_silhouette(raw: Path, key: tuple[str, str, str]) -> dict[bytes, list[tuple[int, np.ndarray]]]:
    """The true frames of a sequence from its raw files: silhouette bytes -> ``[(frame, joints)]``."""
    seq = pretreat_frames(
        list_files(raw.joinpath(SIL_DIR_NAME, *key), ".png"), list_files(raw.joinpath(POSE_DIR_NAME, *key), ".txt")
    )
    truth: dict[bytes, list[tuple[int, np.ndarray]]] = {}
    for frame, sil, joints in zip(seq.frames, seq.sils, seq.joints):
        truth.setdefault(sil.tobytes(), []).append((frame, joints))
    return truth


def pairing_check(raw: Path, opengait_out: Path, out: Path, workers: int) -> dict:
    """``--from-pickles`` on OpenGait's real pickles of ``raw``, every written row checked against the truth.

    A row is mispaired when its joints are not those of its silhouette's frame (the confidences, copied
    verbatim from the pose file, tell the frames apart); the joint error is measured on the others.
    """
    summary = convert_opengait_pickles(opengait_out, raw / POSE_DIR_NAME, out, workers=workers, progress=False)
    stats = {"sequences": summary.sequences, "written": summary.written, "rows": 0, "mispaired": 0,
             "mispaired_sequences": 0, "dropped": dict(summary.dropped), "errors": []}  # fmt: skip
    for key in list_sequence_folders(out):
        sils, joints = load_sequence(out.joinpath(*key))
        truth = truth_by_silhouette(raw, key)
        bad = 0
        for sil, row in zip(sils, joints):
            candidates = truth.get(sil.tobytes(), [])
            right = [t for _, t in candidates if np.array_equal(t[:, 2], row[:, 2])]
            if not right:
                bad += 1
                continue
            stats["errors"].append(joint_errors(row[None], right[0][None], min_conf=0.3))
        stats["rows"] += len(sils)
        stats["mispaired"] += bad
        stats["mispaired_sequences"] += int(bad > 0)
    errors = np.concatenate(stats.pop("errors")) if stats["rows"] else np.zeros(0)
    stats["error_mean"] = float(errors.mean()) if errors.size else float("nan")
    stats["error_median"] = float(np.median(errors)) if errors.size else float("nan")
    stats["error_p99"] = float(np.percentile(errors, 99)) if errors.size else float("nan")
    return stats


def pairing_table(stats: dict) -> str:
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(stats["dropped"].items()))
    return (
        "\n`--from-pickles` on OpenGait's output of the same raw frames (its own drops, pose files missing "
        "for some frames), every written row checked against the raw frames:\n\n"
        "| sequences | written | rows written | mispaired rows | sequences with a mispaired row | "
        "joint error px (mean / median / 99th pct.) | frames and poses left out |\n|---|---|---|---|---|---|---|\n"
        f"| {stats['sequences']} | {stats['written']} ({100 * stats['written'] / max(stats['sequences'], 1):.0f} %) "
        f"| {stats['rows']} | {stats['mispaired']} | {stats['mispaired_sequences']} | {stats['error_mean']:.2f} / "
        f"{stats['error_median']:.2f} / {stats['error_p99']:.2f} | {dropped} |\n"
    )


def speed_table(results: dict, frames: int, sequences: int, repeats: int, command: str) -> str:
    cpu_name = platform.processor() or platform.machine()
    lines = [
        "### Gait3D pretreatment: throughput against OpenGait's `datasets/pretreatment.py`\n",
        (
            f"{sequences} SynthGait sequences, {frames} raw silhouettes (and their pose files); {cpu_name}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}; median of {repeats} alternating "
            f"repetitions; {datetime.date.today().isoformat()}. `{command}`\n"
        ),
        "| workers | tool | wall s | CPU s | frames/s (wall) | vs OpenGait (wall) | vs OpenGait (CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for w, by_tool in results.items():
        base = by_tool["opengait"]
        base_wall = statistics.median(t.wall_s for t in base)
        base_cpu = statistics.median(t.cpu_s for t in base)
        for tool in TOOLS:
            wall = statistics.median(t.wall_s for t in by_tool[tool])
            cpu = statistics.median(t.cpu_s for t in by_tool[tool])
            lines.append(
                f"| {w} | {LABELS[tool]} | {wall:.2f} | {cpu:.2f} | {frames / wall:.0f} | "
                f"{base_wall / wall:.2f}x | {base_cpu / cpu:.2f}x |"
            )
    return "\n".join(lines) + "\n"


def parity_table(stats: dict) -> str:
    pct = 100 * stats["pixels_identical"] / max(stats["pixels"], 1)
    return (
        "\n| parity | frames |\n|---|---|\n"
        f"| raw silhouettes | {stats['frames_in']} |\n"
        f"| kept by OpenGait | {stats['kept_opengait']} |\n"
        f"| kept by ours (frames with a pose file) | {stats['kept_ours']} |\n"
        f"| kept by both, compared | {stats['compared']} |\n"
        f"| byte-identical | {stats['identical']} ({pct:.3f} % of pixels identical) |\n"
        f"| sequences where the drop decisions differ | {stats['drop_mismatch']} |\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--opengait-root", type=Path, required=True, help="an OpenGait clone (datasets/pretreatment.py)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repetitions (default: 3)")
    parser.add_argument("--ids", type=int, default=20, help="SynthGait identities, 5 sequences each (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="keep the generated SynthGait here (reused when it exists)")
    parser.add_argument("--write", action="store_true", help=f"store the tables as section {SECTION} of RESULTS.md")
    args = parser.parse_args(argv)
    script = args.opengait_root / "datasets" / "pretreatment.py"
    if not script.is_file():
        parser.error(f"{script} not found: --opengait-root must be an OpenGait clone")

    with tempfile.TemporaryDirectory(prefix="bench_pretreat_") as tmp:
        data = args.data or Path(tmp) / "synthgait"
        cfg = SynthConfig.preset("small", num_ids=args.ids, num_train_ids=args.ids // 2, seed=args.seed)
        print(f"SynthGait ({args.ids} ids) in {data} ...")
        generate(data, cfg, workers=max(args.workers), progress=False)
        raw = data / "raw"
        frames = sum(
            len(list_files(raw.joinpath(SIL_DIR_NAME, *k), ".png")) for k in list_sequence_folders(raw / SIL_DIR_NAME)
        )
        sequences = len(list_sequence_folders(raw / SIL_DIR_NAME))
        work = Path(tmp) / "runs"
        work.mkdir()
        results = measure(raw, work, args.workers, args.repeats, args.opengait_root)
        w = args.workers[0]
        stats = parity(raw, work / f"opengait-{w}", work / f"ours-{w}")
        table = speed_table(results, frames, sequences, args.repeats, command_line("tools/bench_pretreat.py", argv))
        table += parity_table(stats)
        table += pairing_table(pairing_check(raw, work / f"opengait-{w}", work / "from-pickles", w))
    publish(table, SECTION, REPO / "benchmarks" / "RESULTS.md", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
