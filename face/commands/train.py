"""``kprpe-face train``: train a face recognition model from a YAML recipe.

::

    kprpe-face train --config configs/face/vit_small_kprpe_webface4m.yaml
    torchrun --nproc_per_node 8 -m face.cli train --config configs/face/vit_small_kprpe_webface4m.yaml

The recipe's keys are :class:`face.train.TrainConfig`'s (unknown keys are an error naming them); command-line
options override a few. A second call with the same ``out_dir`` resumes from its latest checkpoint.
"""

from __future__ import annotations

import argparse

HELP = "train a face model (margin head, landmark-aware augmentation, DDP, resume) from a YAML recipe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML recipe (keys of face.train.TrainConfig)")
    parser.add_argument("--out-dir", help="override out_dir")
    parser.add_argument("--iterations", type=int, help="override iterations")
    parser.add_argument("--device", help="override device (auto, cpu, cuda)")
    parser.add_argument("--no-resume", action="store_true", help="refuse to start when out_dir has checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from face.train import TrainConfig, Trainer
    from kprpe.checkpoint import latest_checkpoint

    config = TrainConfig.from_yaml(args.config, out_dir=args.out_dir, iterations=args.iterations, device=args.device)
    if args.no_resume and (found := latest_checkpoint(f"{config.out_dir}/checkpoints")) is not None:
        raise ValueError(f"{config.out_dir} already holds checkpoint {found}; remove it or drop --no-resume")
    trainer = Trainer(config, progress=not args.no_progress)
    try:
        trainer.train()
    finally:
        trainer.close()
    if trainer.rank == 0:
        last = trainer.history[-1] if trainer.history else {}
        print(f"trained {trainer.step} steps into {config.out_dir}; last logged: "
              + ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "step"))  # fmt: skip
    return 0
