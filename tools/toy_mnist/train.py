"""Data preparation, one training run and its evaluation.

A run trains one variant with one seed and reports its accuracy on the centred MNIST test digits, on
the affine test set and on its re-centred twin. Two training sets (``TrainConfig.train_set``):

* ``"centred"``: the digits centred on the 40x40 canvas, no augmentation at all (the paper's Fig. 1
  setting as we read it);
* ``"translated"``: AffNIST's training convention (Sabour et al., 2017, Sec. 5.2): every digit placed
  at a random position on the canvas (the whole 28x28 image at one of 13 x 13 integer offsets), drawn
  afresh every epoch; its keypoints move with it. Only rotation, shear and scale stay unseen.

The seed sets the weights, the batch order and the placements; the training subset and the affine set
are fixed by ``data_seed`` / ``affine_seed``. The batch order and placements depend on the seed alone
(:func:`batch_plan`), so two variants run with the same seed see exactly the same batches: their
difference is a paired comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import AffineRanges, MnistSplits, affine_test_set, center_on_canvas, random_shifts, shift_canvases
from .keypoints import box_keypoints, draw_keypoints
from .models import VARIANTS, ModelConfig, build_model

__all__ = [
    "TRAIN_SETS",
    "EvalSet",
    "PreparedData",
    "TrainConfig",
    "batch_plan",
    "evaluate",
    "place_batch",
    "prepare_data",
    "train_run",
]

#: the training sets a run can use (see the module docstring).
TRAIN_SETS = ("centred", "translated")


@dataclass(frozen=True)
class TrainConfig:
    """Training budget and data sizes (the defaults are the full study's)."""

    train_size: int = 16000
    epochs: int = 4
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    test_size: int | None = None  # None: all 10k test digits, for both test sets
    data_seed: int = 0
    affine_seed: int = 0
    keypoint_threshold: float = 0.5
    eval_batch_size: int = 500
    train_set: str = "centred"

    def __post_init__(self) -> None:
        if self.train_set not in TRAIN_SETS:
            raise ValueError(f"train_set must be one of {TRAIN_SETS}, got {self.train_set!r}")
        for name in ("train_size", "epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.test_size is not None and self.test_size < 1:
            raise ValueError(f"test_size must be >= 1 or None, got {self.test_size}")
        if not 0 <= self.warmup_frac < 1:
            raise ValueError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalSet:
    """Images ``(N, 1, 40, 40)`` float32, labels ``(N,)`` int64, keypoints ``(N, 5, 2)`` from the images."""

    images: torch.Tensor
    labels: torch.Tensor
    keypoints: torch.Tensor

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.labels.shape != (n,) or self.keypoints.shape[:1] != (n,):
            raise ValueError(
                f"mismatched set: {n} images, labels {tuple(self.labels.shape)}, keypoints {tuple(self.keypoints.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class PreparedData:
    train: EvalSet
    mnist_test: EvalSet
    affine_test: EvalSet
    affine_centred: EvalSet  # the same linear maps, digit re-centred: no translation


def _make_set(canvases: torch.Tensor, labels: np.ndarray | torch.Tensor, threshold: float) -> EvalSet:
    return EvalSet(
        images=canvases[:, None].contiguous(),
        labels=torch.as_tensor(labels, dtype=torch.int64),
        keypoints=box_keypoints(canvases, threshold),
    )


def prepare_data(
    mnist: MnistSplits,
    config: TrainConfig,
    ranges: AffineRanges = AffineRanges(),
    cache_dir: str | None = None,
) -> PreparedData:
    """Centred training subset, centred test digits, the affine test set and its re-centred twin, each
    with keypoints."""
    if config.train_size > len(mnist.train_labels):
        raise ValueError(f"train_size {config.train_size} > {len(mnist.train_labels)} MNIST training digits")
    gen = torch.Generator().manual_seed(config.data_seed)
    pick = torch.randperm(len(mnist.train_labels), generator=gen)[: config.train_size].sort().values.numpy()
    test_n = config.test_size or len(mnist.test_labels)
    affine = affine_test_set(mnist, config.affine_seed, ranges, cache_dir, limit=test_n)
    centred = affine_test_set(mnist, config.affine_seed, ranges, cache_dir, limit=test_n, translate=False)
    thr = config.keypoint_threshold
    return PreparedData(
        train=_make_set(center_on_canvas(mnist.train_images[pick]), mnist.train_labels[pick], thr),
        mnist_test=_make_set(center_on_canvas(mnist.test_images[:test_n]), mnist.test_labels[:test_n], thr),
        affine_test=_make_set(affine.images, affine.labels, thr),
        affine_centred=_make_set(centred.images, centred.labels, thr),
    )


def _inputs(variant: str, images: torch.Tensor, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    spec = VARIANTS[variant]
    if spec.draw_keypoints:
        images = draw_keypoints(images, keypoints)
    return images, keypoints if spec.uses_keypoints else None


@torch.inference_mode()
def evaluate(model: nn.Module, variant: str, data: EvalSet, batch_size: int = 500) -> float:
    """Top-1 accuracy (%) of ``model`` on ``data``."""
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        images, keypoints = _inputs(variant, data.images[sl], data.keypoints[sl])
        correct += (model(images, keypoints).argmax(-1) == data.labels[sl]).sum().item()
    return 100.0 * correct / len(data)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    skip = model.no_weight_decay()
    decay = [p for n, p in model.named_parameters() if n not in skip]
    no_decay = [p for n, p in model.named_parameters() if n in skip]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def batch_plan(seed: int, n: int, config: TrainConfig) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The batches of a run: ``(indices (b,), shifts (b, 2) or None)`` for every step, epoch by epoch.

    A function of ``seed``, ``n`` and ``config`` only (never of the variant): the order comes from a
    generator seeded with ``seed`` (the same stream as before the translated set existed, so centred
    runs are unchanged), the placements of the translated set from a second, independent one.
    """
    order_gen = torch.Generator().manual_seed(seed)
    place_gen = torch.Generator().manual_seed(10_000 + seed)
    for _ in range(config.epochs):
        shifts = random_shifts(n, place_gen) if config.train_set == "translated" else None
        for idx in torch.randperm(n, generator=order_gen).split(config.batch_size):
            yield idx, (None if shifts is None else shifts[idx])


def place_batch(
    images: torch.Tensor, keypoints: torch.Tensor, shifts: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move ``images (B, 1, S, S)`` by ``shifts (B, 2)`` whole pixels and their box keypoints
    ``(B, K, 2)`` (normalised ``(x, y)``) with them; ``shifts=None`` returns the inputs.

    Box corners lie on pixel edges, so shifting them by ``shift / S`` equals recomputing them from the
    moved image (tested).
    """
    if shifts is None:
        return images, keypoints
    size = images.shape[-1]
    return shift_canvases(images, shifts), keypoints + shifts[:, None, :].to(keypoints.dtype) / size


def train_run(
    variant: str,
    seed: int,
    data: PreparedData,
    model_config: ModelConfig = ModelConfig(),
    config: TrainConfig = TrainConfig(),
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``variant`` with ``seed`` and evaluate it.

    Returns:
        ``{"variant", "seed", "mnist_acc", "affine_acc", "affine_centred_acc", "params", "train_s",
        "eval_s", "final_loss"}`` (accuracies in %, times in seconds).
    """
    torch.manual_seed(seed)
    model = build_model(variant, model_config)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, total, int(config.warmup_frac * total))
    )
    start = time.perf_counter()
    loss_ema = float("nan")
    bar = tqdm(total=total, desc=f"{variant} seed {seed}", leave=False, disable=not progress, unit="step")
    model.train()
    for idx, shifts in batch_plan(seed, len(data.train), config):
        placed = place_batch(data.train.images[idx], data.train.keypoints[idx], shifts)
        images, keypoints = _inputs(variant, *placed)
        loss = F.cross_entropy(model(images, keypoints), data.train.labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        loss_ema = loss.item() if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * loss.item()
        bar.update()
        bar.set_postfix(loss=f"{loss_ema:.3f}")
    bar.close()
    if not math.isfinite(loss_ema):
        raise FloatingPointError(f"{variant} seed {seed}: training diverged (loss {loss_ema})")
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    mnist_acc = evaluate(model, variant, data.mnist_test, config.eval_batch_size)
    affine_acc = evaluate(model, variant, data.affine_test, config.eval_batch_size)
    centred_acc = evaluate(model, variant, data.affine_centred, config.eval_batch_size)
    return {
        "variant": variant,
        "seed": seed,
        "mnist_acc": mnist_acc,
        "affine_acc": affine_acc,
        "affine_centred_acc": centred_acc,
        "params": sum(p.numel() for p in model.parameters()),
        "train_s": round(train_s, 2),
        "eval_s": round(time.perf_counter() - start, 2),
        "final_loss": round(loss_ema, 4),
    }
