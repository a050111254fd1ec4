"""A compact, single-process re-implementation of OpenGait's training semantics for SwinGait-2D.

Per iteration: a :class:`~kprpe_gait.train.sampling.TripletSampler` batch of ``P x K`` training
sequences, ``frames`` ordered frames of each (OpenGait's ``fixed_ordered``), joint-aware
augmentation drawn once per sequence, optional side cut, then triplet (margin 0.2, on the embeddings
before the BNNeck) + cross-entropy (scale 16, label smoothing 0.1, on the BNNeck logits), AdamW with
OpenGait's SwinGait parameter groups, and SGDR (cosine annealing with warm restarts) stepped every
iteration. TensorBoard scalars go to ``out_dir/tb``; atomic checkpoints to
``out_dir/checkpoints/iter-NNNNN.pt`` every ``save_every`` iterations and at the end. A new trainer
on the same ``out_dir`` resumes from the latest checkpoint with identical state (weights, optimiser,
scheduler, every random generator), so an interrupted run ends exactly where an uninterrupted one would.

::

    from kprpe_gait.train import TrainConfig, Trainer
    cfg = TrainConfig(dataset_root="synth/pkl", partition="synth/partition.json", out_dir="runs/kprpe",
                      model={"rel_pos": "kprpe"}, iterations=2000)
    net = Trainer(cfg).train()
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kprpe.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
from kprpe.config import check_keys, read_yaml_mapping
from kprpe.core import KeypointRPE
from kprpe.optim import scale_lr_of
from kprpe.scalars import ScalarLog
from kprpe_gait.inputs import network_inputs
from kprpe_gait.models import SwinGait2D
from kprpe_gait.transforms import JointAugment

from .dataset import GaitDataset, read_partition
from .inputs import stack_batch
from .losses import CrossEntropyLoss, TripletLoss
from .mean_pose import mean_pose
from .recipe import recipe_from_opengait
from .sampling import TripletSampler, sample_ordered_frames

__all__ = ["OPENGAIT_AUGMENT", "TrainConfig", "Trainer"]

#: OpenGait's SwinGait training transforms (RandomPerspective, RandomHorizontalFlip, RandomRotate at 0.2)
OPENGAIT_AUGMENT: dict[str, Any] = {"perspective_prob": 0.2, "flip_prob": 0.2, "rotate_prob": 0.2}


@dataclass
class TrainConfig:
    """Settings of a compact training run.

    The recipe defaults are those of ``configs/gait3d/swingait2d_kprpe.yaml`` (the paper's Gait3D recipe,
    trained from scratch; tested equal); :meth:`from_opengait` runs any OpenGait SwinGait-2D config's
    recipe instead (:mod:`kprpe_gait.train.recipe`).

    Attributes:
        dataset_root: OpenGait pickle root (``<id>/<type>/<view>/``).
        partition: partition JSON; ``TRAIN_SET`` identities are trained on.
        out_dir: checkpoints (``out_dir/checkpoints``) and TensorBoard logs (``out_dir/tb`` unless ``log_dir``).
        model: keyword arguments of :class:`~kprpe_gait.models.SwinGait2D` except ``num_classes``.
        iterations: total training iterations.
        batch_size: ``(P identities, K sequences)``.
        frames, frames_skip: OpenGait's ``frames_num_fixed`` and ``frames_skip_num``.
        lr, weight_decay: AdamW.
        stem_lr_scale: learning-rate factor of the conv stem, SeparateFCs and BNNecks (1.0 from scratch;
            OpenGait's 0.1 is for a stem and heads restored from a trained DeepGaitV2).
        sgdr_cycle, sgdr_mult, min_lr: ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` in iterations.
        margin, ce_scale, label_smoothing: losses.
        augment: keyword arguments of :class:`~kprpe_gait.transforms.JointAugment` (``{}``: none).
        cut: columns cut from each side of the frame after augmentation (10: OpenGait's 64 -> 44, which keeps
            the 3:2 aspect of the 30x20 map the stem output is resized to).
        log_every, save_every: TensorBoard / checkpoint period in iterations.
        seed: seeds the initialisation and every random draw.
        device: ``"cpu"``, ``"cuda"``, ...
        amp: bfloat16 autocast (CUDA).
        threads: ``torch.set_num_threads`` for CPU runs (``0``: leave as is).
        log_dir: TensorBoard folder (``None``: ``out_dir/tb``).
        kprpe_lr_scale: learning-rate multiplier of KP-RPE's ``W_L`` (1: the authors' recipe; see
            :class:`face.train.TrainConfig`).
        joints: ``"true"`` (each frame's joints) or ``"constant"`` (the mean pose of the training set for every
            frame: the control arm, KP-RPE without joint information; :func:`kprpe_gait.train.mean_pose`).
    """

    dataset_root: str
    partition: str
    out_dir: str
    model: dict[str, Any] = field(default_factory=dict)
    iterations: int = 60000
    batch_size: tuple[int, int] = (32, 4)
    frames: int = 30
    frames_skip: int = 4
    lr: float = 3e-4
    weight_decay: float = 0.02
    stem_lr_scale: float = 1.0
    sgdr_cycle: int = 20000
    sgdr_mult: int = 2
    min_lr: float = 1e-6
    margin: float = 0.2
    ce_scale: float = 16.0
    label_smoothing: float = 0.1
    augment: dict[str, Any] = field(default_factory=lambda: dict(OPENGAIT_AUGMENT))
    cut: int = 10
    log_every: int = 10
    save_every: int = 1000
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    threads: int = 0
    log_dir: str | None = None
    kprpe_lr_scale: float = 1.0
    joints: str = "true"

    def __post_init__(self) -> None:
        if not float(self.kprpe_lr_scale) > 0:
            raise ValueError(f"kprpe_lr_scale must be > 0, got {self.kprpe_lr_scale}")
        self.kprpe_lr_scale = float(self.kprpe_lr_scale)
        if self.joints not in ("true", "constant"):
            raise ValueError(f"joints must be 'true' or 'constant', got {self.joints!r}")
        self.batch_size = tuple(int(v) for v in self.batch_size)  # type: ignore[assignment]
        if len(self.batch_size) != 2 or self.batch_size[1] < 2 or self.batch_size[0] < 2:
            raise ValueError(f"batch_size must be (P >= 2, K >= 2) for the triplet loss, got {self.batch_size}")
        for name in ("iterations", "frames", "sgdr_cycle", "log_every", "save_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if "num_classes" in self.model:
            raise ValueError("model must not set num_classes: it is the number of TRAIN_SET identities")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Strict: an unknown key is an error that names it."""
        return cls(**check_keys("TrainConfig", data, (f.name for f in dataclasses.fields(cls))))

    @classmethod
    def from_opengait(
        cls, path: str | os.PathLike[str], dataset_root: str, partition: str, out_dir: str, **overrides: Any
    ) -> TrainConfig:
        """The recipe of an OpenGait SwinGait-2D config (:func:`~kprpe_gait.train.recipe.recipe_from_opengait`),
        with these paths; ``overrides`` replace any field (e.g. ``iterations``, ``device``)."""
        cfg = read_yaml_mapping(path, "OpenGait config")
        try:
            recipe = recipe_from_opengait(cfg)
        except (KeyError, TypeError, ValueError) as e:  # a missing key or a value of the wrong type
            raise ValueError(f"{path}: {type(e).__name__}: {e}") from None
        fields = {**recipe, "dataset_root": dataset_root, "partition": partition, "out_dir": out_dir, **overrides}
        return cls.from_dict(fields)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["batch_size"] = list(self.batch_size)
        return out


class Trainer:
    """Runs :class:`TrainConfig`; resumes from ``out_dir/checkpoints`` when a checkpoint is there.

    Args:
        config: the run's settings.
        resume: continue from the latest checkpoint in ``out_dir`` (its settings must match).
        progress: show a tqdm bar.

    Attributes:
        net: the :class:`SwinGait2D` being trained.
        dataset: the training :class:`GaitDataset`.
        iteration: iterations done so far.
        history: logged scalars, one dict per ``log_every`` iterations.
    """

    def __init__(self, config: TrainConfig, resume: bool = True, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.out_dir = Path(config.out_dir)
        self.device = torch.device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        partition = read_partition(config.partition)
        self.dataset = GaitDataset(config.dataset_root, ids=partition["TRAIN_SET"])
        if len(self.dataset.label_set) < 2:
            raise ValueError("training needs at least two identities in TRAIN_SET")

        torch.manual_seed(config.seed)
        self.net = SwinGait2D(num_classes=len(self.dataset.label_set), **config.model).to(self.device)
        groups = self.net.param_groups(config.lr, config.weight_decay, config.stem_lr_scale)
        keypoint_params = [p for m in self.net.modules() if isinstance(m, KeypointRPE) for p in m.parameters()]
        self.optimizer = torch.optim.AdamW(scale_lr_of(groups, keypoint_params, config.kprpe_lr_scale))
        self.constant_joints: torch.Tensor | None = None  # (J, 3) in [0, 1], the control arm's pose
        if config.joints == "constant":
            pose = mean_pose(config.dataset_root, partition["TRAIN_SET"], cut=config.cut)
            self.constant_joints = torch.from_numpy(pose).to(self.device)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            self.optimizer, T_0=config.sgdr_cycle, T_mult=config.sgdr_mult, eta_min=config.min_lr
        )
        self.triplet = TripletLoss(config.margin)
        self.softmax = CrossEntropyLoss(config.ce_scale, config.label_smoothing)
        self.rng = np.random.default_rng(config.seed)
        self.augment = JointAugment(**config.augment) if config.augment else None
        self.sampler = TripletSampler(self.dataset.indices_by_label, config.batch_size, self.rng)
        self.iteration = 0
        self.scalars = ScalarLog(self.log_dir)
        if resume and (path := latest_checkpoint(self.checkpoint_dir)) is not None:
            self.load_state_dict(load_checkpoint(path))

    # -------------------------------------------------------------------------------- state
    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def log_dir(self) -> Path:
        """The TensorBoard folder: ``config.log_dir``, or ``out_dir/tb``."""
        return Path(self.config.log_dir or self.out_dir / "tb")

    @property
    def history(self) -> list[dict[str, float]]:
        """The logged scalars, a row per logged step (``step`` and the values); saved in checkpoints."""
        return self.scalars.history

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state()},
            "config": self.config.to_dict(),
            "label_set": list(self.dataset.label_set),
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved, current = dict(state["config"]), self.config.to_dict()
        ignore = {
            "iterations",
            "out_dir",
            "log_dir",
            "log_every",
            "save_every",
            "threads",
            "device",
        }  # may change on resume
        differs = sorted(k for k in current if k not in ignore and saved.get(k) != current[k])
        if differs:
            raise ValueError(
                f"cannot resume from {self.checkpoint_dir}: its checkpoints were trained with other settings for "
                f"{differs}; use another out_dir or remove those checkpoints"
            )
        if list(state["label_set"]) != self.dataset.label_set:
            raise ValueError("cannot resume: the training identities differ from the checkpoint's")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = int(state["iteration"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        # TensorBoard events after the checkpoint's step are purged; the history continues the saved one
        self.scalars.close()
        self.scalars = ScalarLog(self.log_dir, self.iteration, state.get("history", []))

    def save(self) -> Path:
        return save_checkpoint(self.checkpoint_dir / checkpoint_name(self.iteration), self.state_dict())

    # -------------------------------------------------------------------------------- training
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``sils (n, s, H, W)``, ``joints (n, s, J, 3)`` in [0, 1], ``labels (n,)`` class indices."""
        cfg = self.config
        indices = self.sampler.next_batch()
        sequences = []
        for index in indices:
            sils, joints = self.dataset.load(index)
            frames = sample_ordered_frames(len(sils), cfg.frames, cfg.frames_skip, self.rng)
            name = str(self.dataset.folder(index))
            sequences.append(network_inputs(sils[frames], joints[frames], cfg.cut, self.augment, self.rng, name))
        sils, joints = stack_batch(sequences, self.device)
        if self.constant_joints is not None:
            joints = self.constant_joints.expand_as(joints).clone()
        labels = torch.tensor([self.dataset.label_index[self.dataset.labels[i]] for i in indices], device=self.device)
        return sils, joints, labels

    def step(self) -> dict[str, float]:
        """One optimisation step; returns the logged scalars."""
        self.net.train()
        sils, joints, labels = self.next_batch()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp)
        with autocast:
            out = self.net(sils, joints)
        triplet, info_t = self.triplet(out["embeddings"].float(), labels)
        softmax, info_s = self.softmax(out["logits"].float(), labels)
        loss = triplet + softmax
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at iteration {self.iteration}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        return {"loss": loss.item(), **info_t, **info_s, "lr": self.optimizer.param_groups[0]["lr"]}

    def train(self) -> SwinGait2D:
        """Train until ``config.iterations``; returns the network (in eval mode)."""
        cfg = self.config
        bar = tqdm(total=cfg.iterations, initial=self.iteration, desc=f"train {self.net.rel_pos}",
                   disable=not self.progress, dynamic_ncols=True)  # fmt: skip
        frames = cfg.batch_size[0] * cfg.batch_size[1] * cfg.frames
        try:
            while self.iteration < cfg.iterations:
                start = time.perf_counter()
                scalars = self.step()
                seconds = time.perf_counter() - start
                scalars["time/iteration_s"] = seconds
                scalars["time/frames_per_s"] = frames / seconds
                if self.iteration % cfg.log_every == 0 or self.iteration == cfg.iterations:
                    self.scalars.log(scalars, self.iteration)
                if self.iteration % cfg.save_every == 0 or self.iteration == cfg.iterations:
                    self.save()
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.3f}", acc=f"{scalars['softmax/accuracy']:.2f}")
        finally:
            bar.close()
            self.scalars.flush()
        return self.net.eval()

    def log_scalars(self, scalars: dict[str, float], step: int | None = None) -> None:
        """Write extra scalars (e.g. test metrics, keys with a ``/``) to this run's TensorBoard log, not to
        :attr:`history`."""
        self.scalars.log(scalars, self.iteration if step is None else step, keep=False)
        self.scalars.flush()

    def close(self) -> None:
        self.scalars.close()
