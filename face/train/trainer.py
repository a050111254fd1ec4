"""Face recognition training: backbone + margin head, DDP-ready, resumable exactly.

Per step: the batch of step ``s`` (a seeded permutation per epoch, split across processes) is read,
aligned or resized to ``image_size``, augmented with landmarks moved along (:class:`FaceAugment`),
normalised (images ``(x / 255 - 0.5) / 0.5``, landmarks to ``[0, 1]`` of the input), embedded by the
backbone (bfloat16 autocast on CUDA when ``amp``), classified by the margin head (:mod:`face.heads`,
PartialFC sampling when ``sample_rate < 1``), and the cross-entropy is minimised with AdamW (no decay on
biases / norms), gradient clipping, and a warm-up + cosine learning rate (:func:`kprpe.optim.warmup_cosine`).

Exact resume: every random draw of step ``s`` (data order, augmentation, drop-path, class sampling) comes
from generators seeded by ``(seed, rank, s)`` and the learning rate is a function of ``s``, so a run
resumed from ``out_dir/checkpoints/iter-NNNNN.pt`` (weights, head statistics, optimiser, history) takes
the very steps an uninterrupted run takes.

Distributed: launched by ``torchrun --nproc_per_node N -m face.cli train --config C`` (``WORLD_SIZE`` > 1),
the process group uses NCCL on CUDA and gloo on CPU; the model is wrapped in ``DistributedDataParallel``
whenever a process group is initialised (also one the caller set up); rank 0 logs, validates and saves.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from face.align import align_faces, normalise_landmarks, transform_points
from face.eval.reliance import constant_landmarks
from face.heads import MarginHead, build_head
from face.train.augment import FaceAugment
from face.train.config import TrainConfig
from kprpe.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
from kprpe.core import KeypointRPE
from kprpe.io import atomic_write_text
from kprpe.optim import scale_lr_of, set_learning_rate, warmup_cosine, weight_decay_groups
from kprpe.scalars import ScalarLog
from kprpe.seeding import step_seed

__all__ = ["FaceRecognizer", "FaceTrainSet", "StepBatchSampler", "Trainer", "model_inputs"]

# streams of kprpe.seeding.step_seed
_AUGMENT, _GLOBAL, _ORDER = 0, 1, 2

# Landmarks moved further than this outside [0, 1] by an augmentation are treated as missing.
_LANDMARK_RANGE = (-0.5, 1.5)


class FaceTrainSet(Dataset):
    """A face dataset's items brought to ``(3, size, size)``: aligned to the template or resized.

    Args:
        base: yields ``(image (3, H, W) uint8, landmarks (5, 3) pixel, label)`` (:mod:`face.data`).
        size: output side.
        align: warp to the ArcFace template from the landmarks (a face needs two valid ones).
    """

    def __init__(self, base: Dataset, size: int = 112, align: bool = False) -> None:
        self.base, self.size, self.align = base, size, align

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, landmarks, label = self.base[index]
        landmarks = landmarks.float()
        size = self.size
        if self.align:
            try:
                out = align_faces(image[None].float(), landmarks[None], size=(size, size))
            except ValueError as e:
                raise ValueError(f"training sample {index}: {e}") from None
            moved = transform_points(landmarks[None].double(), out.matrices.double())[0].float()
            moved[..., :2] = torch.where(landmarks[:, 2:] > 0, moved[..., :2], torch.nan)
            image = out.images[0].round().clamp(0, 255).to(torch.uint8)
            return image, moved, int(label)
        height, width = image.shape[-2:]
        if (height, width) != (size, size):
            image = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)  # fmt: skip
            scale = torch.tensor([size / width, size / height])
            landmarks = torch.cat([(landmarks[:, :2] + 0.5) * scale - 0.5, landmarks[:, 2:]], -1)
        return image, landmarks, int(label)


class StepBatchSampler(Sampler[list[int]]):
    """Index batches of steps ``start, start + 1, ..., total - 1`` for process ``rank`` of ``world``.

    Epoch ``e`` is ``torch.randperm(n)`` seeded by ``(seed, e)``; each step takes the next
    ``batch * world`` indices (the remainder of an epoch is dropped) and this process its ``rank``-th slice,
    so step ``s``'s batch depends on ``s`` only, not on how the run got there.
    """

    def __init__(self, n: int, batch: int, start: int, total: int, seed: int = 0, rank: int = 0, world: int = 1):
        if n < batch * world:
            raise ValueError(f"{n} training faces are fewer than one global batch ({batch} x {world} processes)")
        self.n, self.batch, self.start, self.total = n, batch, start, total
        self.seed, self.rank, self.world = seed, rank, world
        self.steps_per_epoch = n // (batch * world)

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def batch_of(self, step: int, order: torch.Tensor | None = None) -> list[int]:
        epoch, k = divmod(step, self.steps_per_epoch)
        if order is None:
            order = self.epoch_order(epoch)
        first = (k * self.world + self.rank) * self.batch
        return order[first : first + self.batch].tolist()

    def epoch_order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(
            self.n, generator=torch.Generator().manual_seed(step_seed(self.seed, 0, epoch, stream=_ORDER))
        )

    def __iter__(self):
        epoch, order = -1, None
        for step in range(self.start, self.total):
            if step // self.steps_per_epoch != epoch:
                epoch = step // self.steps_per_epoch
                order = self.epoch_order(epoch)
            yield self.batch_of(step, order)


def model_inputs(images: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, S, S)`` float in ``[0, 1]`` + pixel landmarks -> the model's ``[-1, 1]`` images and ``(B, 5, 3)``
    keypoints in ``[0, 1]`` (points moved far outside the image become missing)."""
    keypoints = normalise_landmarks(landmarks, tuple(images.shape[-2:]))
    low, high = _LANDMARK_RANGE
    outside = ((keypoints[..., :2] < low) | (keypoints[..., :2] > high)).any(-1, keepdim=True)
    keypoints = torch.where(outside, torch.tensor([math.nan, math.nan, 0.0], dtype=keypoints.dtype), keypoints)
    return (images - 0.5) / 0.5, keypoints.to(images.dtype)


class FaceRecognizer(nn.Module):
    """Backbone + margin head in one module (one DDP wrapper): ``forward -> (loss, logits, targets)``."""

    def __init__(self, backbone: nn.Module, head: MarginHead, amp: bool = False) -> None:
        super().__init__()
        self.backbone, self.head, self.amp = backbone, head, amp

    def forward(self, images: torch.Tensor, keypoints: torch.Tensor, labels: torch.Tensor):
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=self.amp):
            embeddings = self.backbone(images, keypoints)
        logits, targets, _ = self.head(embeddings.float(), labels)
        return F.cross_entropy(logits, targets), logits, targets


def _distributed() -> tuple[int, int, int]:
    """``(rank, world, local_rank)`` of an initialised process group, else from torchrun's environment
    (``(0, 1, 0)`` when absent)."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), local


class Trainer:
    """Runs a :class:`TrainConfig`; resumes from ``out_dir/checkpoints`` when a checkpoint is there.

    Args:
        config: the recipe.
        backbone: a module ``(images, landmarks) -> (B, D)`` with an ``output_dim`` attribute; default
            :func:`face.models.build_model(config.model) <face.models.build_model>`.
        dataset: training items ``(image, landmarks, label)``; default read from ``config.train``.
        resume: continue from the latest checkpoint (its recipe must match).
        progress: a tqdm bar (rank 0).

    Attributes:
        step: optimiser steps done.
        history: logged rows (``{"step", ...}``), validation included.
    """

    def __init__(self, config: TrainConfig, backbone: nn.Module | None = None, dataset: Dataset | None = None,
                 resume: bool = True, progress: bool = True) -> None:  # fmt: skip
        self.config = cfg = config
        self.rank, self.world, local_rank = _distributed()
        if cfg.device == "auto":
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        else:
            device = f"cuda:{local_rank}" if cfg.device == "cuda" and self.world > 1 else cfg.device
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.out_dir = Path(cfg.out_dir)
        self.progress = progress and self.rank == 0

        base = dataset if dataset is not None else _open_dataset(cfg)
        self.dataset = FaceTrainSet(base, cfg.image_size, cfg.align)
        self.num_classes = cfg.num_classes or _count_classes(base)

        torch.manual_seed(cfg.seed)  # identical initial weights on every process
        if backbone is None:
            from face.models import build_model

            backbone = build_model(cfg.model)
        if not hasattr(backbone, "output_dim"):
            raise ValueError("the backbone needs an output_dim attribute (the embedding width)")
        head_args = {k: v for k, v in cfg.head.items() if k != "name"}
        head = build_head(cfg.head["name"], int(backbone.output_dim), self.num_classes, **head_args)
        self.model = FaceRecognizer(backbone, head, amp=cfg.amp and self.device.type == "cuda").to(self.device)
        skip = {f"backbone.{n}" for n in getattr(backbone, "no_weight_decay", lambda: set())()}
        groups = weight_decay_groups(self.model.named_parameters(), cfg.weight_decay, skip)
        keypoint_params = [p for m in self.model.modules() if isinstance(m, KeypointRPE) for p in m.parameters()]
        groups = scale_lr_of(groups, keypoint_params, cfg.kprpe_lr_scale)
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
        self.augment = FaceAugment(cfg.augment_config())
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._val_pairs: dict | None = None
        if resume and (path := latest_checkpoint(self.checkpoint_dir)) is not None:
            self.load_state_dict(load_checkpoint(path))
        self.ddp = (
            nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            if dist.is_available() and dist.is_initialized()
            else self.model
        )
        self.log = ScalarLog(self.out_dir / "tb", self.step, self.history) if self.rank == 0 else None
        if self.log is not None:
            self.history = self.log.history  # one list: what is logged is what is checkpointed

    @property
    def backbone(self) -> nn.Module:
        return self.model.backbone

    @property
    def head(self) -> MarginHead:
        return self.model.head

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "num_classes": self.num_classes,
            "world_size": self.world,
            "config": self.config.to_dict(),
            "history": list(self.history),
        }

    #: keys a resumed run may change (they do not change the steps taken)
    RESUMABLE = frozenset({"out_dir", "val", "val_every", "val_batch_size", "log_every", "save_every", "device",
                           "num_workers", "threads", "train", "train_landmarks"})  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved, current = dict(state["config"]), self.config.to_dict()
        differs = sorted(k for k in current if k not in self.RESUMABLE and saved.get(k) != current[k])
        if differs:
            raise ValueError(
                f"cannot resume from {self.checkpoint_dir}: its checkpoints were trained with other settings for "
                f"{differs}; use another out_dir or remove those checkpoints"
            )
        if int(state["num_classes"]) != self.num_classes:
            raise ValueError(
                f"cannot resume: the checkpoint has {state['num_classes']} classes, the data {self.num_classes}"
            )
        if int(state.get("world_size", 1)) != self.world:
            raise ValueError(f"cannot resume: the checkpoint was trained by {state.get('world_size')} process(es), "
                             f"this run has {self.world} (the data order would differ)")  # fmt: skip
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.history = list(state.get("history", []))

    def save(self) -> Path | None:
        """An atomic checkpoint of the current step (rank 0 only)."""
        if self.rank != 0:
            return None
        return save_checkpoint(self.checkpoint_dir / checkpoint_name(self.step), self.state_dict())

    # ------------------------------------------------------------------ training
    def _batch(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], step: int):
        images, landmarks, labels = batch
        generator = torch.Generator().manual_seed(step_seed(self.config.seed, self.rank, step, stream=_AUGMENT))
        images, landmarks = self.augment(images.float() / 255.0, landmarks.float(), generator)
        images, keypoints = model_inputs(images, landmarks)
        if self.config.keypoints == "constant":  # the control arm: no landmark information at all
            keypoints = constant_landmarks(len(keypoints)).to(keypoints.dtype)
        return images.to(self.device), keypoints.to(self.device), labels.to(self.device)

    def train_step(self, batch) -> dict[str, float]:
        """One optimiser step on a collated ``(images, landmarks, labels)`` batch; returns the logged scalars."""
        cfg = self.config
        torch.manual_seed(step_seed(cfg.seed, self.rank, self.step, stream=_GLOBAL))  # drop-path, class sampling
        images, keypoints, labels = self._batch(batch, self.step)
        lr = warmup_cosine(self.step, cfg.iterations, cfg.warmup_steps, cfg.lr, cfg.min_lr)
        set_learning_rate(self.optimizer, lr)
        self.ddp.train()
        loss, logits, targets = self.ddp(images, keypoints, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
        self.optimizer.step()
        self.step += 1
        scalars = {"loss": loss.item(), "lr": lr, "grad_norm": float(norm),
                   "accuracy": (logits.argmax(1) == targets).float().mean().item()}  # fmt: skip
        if hasattr(self.head, "batch_mean"):
            scalars["adaface/norm_mean"] = float(self.head.batch_mean)
            scalars["adaface/norm_std"] = float(self.head.batch_std)
        return scalars

    def loader(self) -> DataLoader:
        cfg = self.config
        sampler = StepBatchSampler(len(self.dataset), cfg.batch_size, self.step, cfg.iterations, cfg.seed,
                                   self.rank, self.world)  # fmt: skip
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                          generator=torch.Generator(), persistent_workers=False)  # fmt: skip

    def validate(self) -> dict[str, float]:
        """10-fold verification accuracy and TAR@FAR on each ``config.val`` file (rank 0; with flip TTA and
        the ``<stem>.landmarks.npy`` sidecar): ``{"val/<stem>/accuracy": ..., "val/<stem>/tar@1e-03": ...}``."""
        if self.rank != 0 or not self.config.val:
            return {}
        from face.data import read_verification_bin
        from face.eval import evaluate_verification

        if self._val_pairs is None:
            self._val_pairs = {Path(p).stem: read_verification_bin(p) for p in self.config.val}
        scalars: dict[str, float] = {}
        for name, pairs in self._val_pairs.items():
            metrics = evaluate_verification(self.backbone, pairs, batch_size=self.config.val_batch_size,
                                            device=self.device)  # fmt: skip
            scalars[f"val/{name}/accuracy"] = metrics["accuracy"]
            for far, point in metrics["tar_at_far"].items():
                scalars[f"val/{name}/tar@{far}"] = point["tar"]
        return scalars

    def train(self, until: int | None = None) -> nn.Module:
        """Train until ``config.iterations`` (or stop after step ``until``, saving a checkpoint: an
        interruption); returns the backbone in eval mode. At the end rank 0 writes ``out_dir/config.json``
        and ``out_dir/model`` (:func:`face.models.save_pretrained`) when the backbone is a ``FaceViT`` or
        ``FaceSwin``."""
        cfg = self.config
        stop = cfg.iterations if until is None else min(until, cfg.iterations)
        bar = tqdm(total=cfg.iterations, initial=self.step, desc="train", disable=not self.progress, dynamic_ncols=True)
        try:
            for batch in self.loader():
                start = time.perf_counter()
                scalars = self.train_step(batch)
                scalars["time/images_per_s"] = cfg.batch_size * self.world / (time.perf_counter() - start)
                last = self.step == cfg.iterations
                if self.log is not None and (self.step % cfg.log_every == 0 or last):
                    self.log.log(scalars, self.step)
                validate = (cfg.val_every and self.step % cfg.val_every == 0) or last
                if validate and self.log is not None and (val := self.validate()):
                    self.log.log(val, self.step)
                if self.step % cfg.save_every == 0 or last or self.step == stop:
                    self.save()
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.3f}", acc=f"{scalars['accuracy']:.2f}")
                if self.step >= stop:
                    break
        finally:
            bar.close()
            if self.log is not None:
                self.log.flush()
        if self.rank == 0 and self.step == cfg.iterations:
            self._export()
        return self.backbone.eval()

    def _export(self) -> None:
        import json

        import face.models

        atomic_write_text(self.out_dir / "config.json", json.dumps(self.config.to_dict(), indent=2))
        if isinstance(self.backbone, (face.models.FaceViT, face.models.FaceSwin)):
            face.models.save_pretrained(self.backbone, self.out_dir / "model")

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def _open_dataset(cfg: TrainConfig) -> Dataset:
    from face.data import FaceFolder, RecordFaceDataset

    path = Path(cfg.train)
    if path.suffix == ".rec":
        return RecordFaceDataset(path, cfg.train_landmarks if cfg.train_landmarks else "auto")
    csv = cfg.train_landmarks or (path / "landmarks.csv" if (path / "landmarks.csv").is_file() else None)
    return FaceFolder(path, csv)


def _count_classes(dataset: Dataset) -> int:
    """Identities of a dataset: ``classes`` (folders), else one pass over the labels."""
    if hasattr(dataset, "classes"):
        return len(dataset.classes)
    if hasattr(dataset, "labels"):
        labels = dataset.labels
    else:
        read = dataset.label if hasattr(dataset, "label") else (lambda i: dataset[i][2])
        labels = [read(i) for i in range(len(dataset))]
    return int(max(int(label) for label in labels)) + 1
