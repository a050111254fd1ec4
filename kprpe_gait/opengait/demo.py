"""The SynthGait demo through OpenGait's own trainer (``kprpe-gait demo --opengait-root R``).

For SwinGait-2D (Swin's window bias) and SwinGait-2D + KP-RPE, each in a process of its own,
through ``python -m kprpe_gait.opengait.launcher`` (``--cpu`` when there is no GPU):

1. ``main.py --phase train`` for ``iters`` iterations from the SynthGait smoke configs
   (``configs/gait3d/synthgait_smoke*.yaml``) pointed at ``data_dir``;
2. ``main.py --phase test`` on the aligned test split (``data_dir/pkl``);
3. ``main.py --phase test`` on the misaligned one (``data_dir/pkl-misaligned``), same checkpoint.

OpenGait writes checkpoints and TensorBoard logs under ``R/output/SynthGait/<model>/<save_name>/``
as for any OpenGait run; ``out_dir`` gets the configs, one log per run, the metrics as JSON and
``opengait_demo.json`` (the returned dict, shaped like :func:`kprpe_gait.demo.run_demo`'s, so
:func:`kprpe_gait.demo.format_table` prints it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from kprpe.io import atomic_write_text

from .registry import write_json_atomic
from .runtime import resolve_root

__all__ = ["MODELS", "SPLITS", "run_opengait_demo"]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "gait3d"
#: short name -> (OpenGait model class, smoke config)
MODELS = {"swin": ("SwinGait2D", "synthgait_smoke.yaml"), "kprpe": ("SwinGait2DKPRPE", "synthgait_smoke_kprpe.yaml")}
#: test split -> pickle folder of a SynthGait directory
SPLITS = {"aligned": "pkl", "misaligned": "pkl-misaligned"}
_PREFIX = "scalar/test_accuracy/"


def _check_data(data_dir: Path) -> None:
    needed = [data_dir / "partition.json", *(data_dir / folder for folder in SPLITS.values())]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{data_dir} is not a SynthGait directory (missing {', '.join(missing)}); "
            f"make one with: kprpe-gait synth --out {data_dir} --size small"
        )


def _write_config(
    base: str, path: Path, data_dir: Path, split: str, results_file: Path, save_name: str, iters: int,
    batch: tuple[int, int], frames: int, config_dir: Path,
) -> Path:  # fmt: skip
    cfg = yaml.safe_load((config_dir / base).read_text())
    cfg["data_cfg"].update(
        dataset_root=str(data_dir / SPLITS[split]), dataset_partition=str(data_dir / "partition.json")
    )
    evaluator = cfg["evaluator_cfg"]
    evaluator.update(partition=str(data_dir / "partition.json"), results_file=str(results_file),
                     restore_hint=iters, save_name=save_name)  # fmt: skip
    trainer = cfg["trainer_cfg"]
    trainer.update(
        total_iter=iters, save_iter=iters, save_name=save_name, log_iter=max(1, min(trainer["log_iter"], iters))
    )
    trainer["sampler"].update(batch_size=list(batch), frames_num_fixed=frames)
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def _run(command: list[str], log: Path, env: dict[str, str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        proc = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env, text=True, check=False)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise RuntimeError(f"OpenGait run failed (exit {proc.returncode}); log {log}, last lines:\n{tail}")


def run_opengait_demo(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    opengait_root: str | os.PathLike[str],
    iters: int = 200,
    *,
    batch: tuple[int, int] = (4, 2),
    frames: int = 10,
    cpu: bool | None = None,
    models: tuple[str, ...] = ("swin", "kprpe"),
    tag: str = "demo",
    python: str | None = None,
    progress: bool = True,
    config_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train and test SwinGait-2D with and without KP-RPE on SynthGait through OpenGait's ``main.py``.

    Args:
        data_dir: a SynthGait directory (``pkl/``, ``pkl-misaligned/``, ``partition.json``).
        out_dir: where configs, logs and results go.
        opengait_root: an OpenGait clone.
        iters: training iterations per model (one checkpoint, at the end).
        batch: ``(identities, sequences per identity)`` per training batch.
        frames: frames per training sequence.
        cpu: run OpenGait on the CPU; ``None``: when CUDA is unavailable.
        models: which of :data:`MODELS` to run.
        tag: OpenGait ``save_name`` prefix (``<tag>_<model>``): runs with another tag keep their own
            checkpoints under ``R/output/``.
        python: interpreter for the OpenGait processes (default: this one); it needs OpenGait's
            import-time dependencies and this package.
        progress: show a progress bar over the runs.
        config_dir: where the smoke configs are read from (default: this repository's ``configs/gait3d``).

    Returns:
        ``{"runner": "opengait", "device", "iters", "data_dir", "opengait_root",
        "results": {model: {split: {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}}},
        "checkpoints": {model: path}, "configs": {model: {split: path}}, "logs": {model: {phase: path}}}``
        (metrics in percent), also written to ``out_dir/opengait_demo.json``.
    """
    import torch

    root = resolve_root(opengait_root)
    data_dir = Path(data_dir).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().resolve()
    config_dir = CONFIG_DIR if config_dir is None else Path(config_dir)
    _check_data(data_dir)
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {sorted(MODELS)}")
    absent = [str(config_dir / MODELS[m][1]) for m in models if not (config_dir / MODELS[m][1]).is_file()]
    if absent:
        raise FileNotFoundError(
            f"smoke configs not found: {', '.join(absent)} (they ship in the source tree's configs/gait3d; "
            "pass config_dir=)"
        )
    cpu = (not torch.cuda.is_available()) if cpu is None else cpu

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    launcher = [python or sys.executable, "-m", "kprpe_gait.opengait.launcher", "--opengait-root", str(root)]
    launcher += ["--cpu"] if cpu else []
    summary: dict[str, Any] = {
        "runner": "opengait", "device": "cpu" if cpu else "cuda", "iters": iters, "data_dir": str(data_dir),
        "opengait_root": str(root), "results": {}, "checkpoints": {}, "configs": {}, "logs": {},
    }  # fmt: skip
    runs = [(m, phase) for m in models for phase in ("train", *SPLITS)]
    bar = tqdm(runs, desc="OpenGait demo", unit="run", disable=not progress)
    for model, phase in bar:
        model_name, base = MODELS[model]
        save_name = f"{tag}_{model}"
        split = "aligned" if phase == "train" else phase
        bar.set_postfix_str(f"{model} {phase}")
        results_file = out_dir / "results" / f"{model}-{split}.json"
        cfg = _write_config(base, out_dir / "configs" / f"{model}-{split}.yaml", data_dir, split, results_file,
                            save_name, iters, batch, frames, config_dir)  # fmt: skip
        summary["configs"].setdefault(model, {})[split] = str(cfg)
        log = out_dir / "logs" / f"{model}-{phase}.log"
        summary["logs"].setdefault(model, {})[phase] = str(log)
        if phase != "train":
            results_file.parent.mkdir(parents=True, exist_ok=True)
            results_file.unlink(missing_ok=True)
        _run([*launcher, "--", "--cfgs", str(cfg), "--phase", "train" if phase == "train" else "test"], log, env)
        if phase == "train":
            ckpt = (
                root / "output" / "SynthGait" / model_name / save_name / "checkpoints" / f"{save_name}-{iters:05d}.pt"
            )
            if not ckpt.is_file():
                raise RuntimeError(f"training finished without writing {ckpt}; see {log}")
            summary["checkpoints"][model] = str(ckpt)
            continue
        if not results_file.is_file():
            raise RuntimeError(f"the test run wrote no metrics to {results_file}; see {log}")
        metrics = json.loads(results_file.read_text())
        summary["results"].setdefault(model, {})[phase] = {k.removeprefix(_PREFIX): v for k, v in metrics.items()}
    write_json_atomic(out_dir / "opengait_demo.json", summary)
    return summary
