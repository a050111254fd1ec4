"""The face training recipe: one dataclass, read from YAML with unknown keys rejected.

::

    # configs/face/<name>.yaml (every key optional except train and out_dir)
    train: data/webface4m/train.rec     # an image folder per identity, or an insightface .rec
    train_landmarks: null               # folder: a landmark CSV (relative paths); .rec: <stem>.landmarks.npy
    val: [data/lfw.bin]                 # verification .bin files checked during training
    out_dir: runs/vit_small_kprpe
    model: {preset: vit_small, rpe: kprpe}
    head: {name: adaface}
    ...

:class:`TrainConfig` documents each key; :meth:`TrainConfig.from_yaml` / :meth:`TrainConfig.from_dict` are strict.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from face.train.augment import AugmentConfig
from kprpe.config import check_keys, read_yaml_mapping

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything a face training run decides (defaults: a small-scale AdamW + cosine recipe; the paper's
    WebFace4M recipe is ``configs/face/vit_small_kprpe_webface4m.yaml``).

    Attributes:
        train: training data: a folder of identity folders (:class:`face.data.FaceFolder`) or an
            insightface ``train.rec`` (:class:`face.data.RecordFaceDataset`).
        train_landmarks: folder: its landmark CSV (``None``: ``<train>/landmarks.csv`` when present);
            ``.rec``: a ``(N, 5, 3)`` ``.npy`` (``None``: ``<stem>.landmarks.npy`` when present).
        val: verification ``.bin`` files (with ``<stem>.landmarks.npy`` sidecars for KP-RPE) evaluated
            every ``val_every`` steps and at the end.
        out_dir: checkpoints (``out_dir/checkpoints``), TensorBoard (``out_dir/tb``), the final model
            (``out_dir/model``).
        num_classes: identities; ``None``: counted from the data (folders; the labels of a ``.rec``).
        image_size: side of the square model input; faces of another size are aligned (``align``) or
            resized to it.
        align: warp each training face to the ArcFace template from its landmarks first (for raw photos);
            ``False``: the images are used as they are (pre-aligned crops, or detection crops).
        model: :func:`face.models.build_model` config (a ``preset`` plus overrides); the head's input width
            is the model's ``output_dim``.
        head: ``name`` (``adaface``, ``arcface``, ``cosface``) plus its constructor's keywords
            (``scale``, ``margin``, ``h``, ``t_alpha``, ``sample_rate``).
        augment: :class:`face.train.AugmentConfig` keys (``{}``: the authors' recipe; ``null``: none).
        iterations: optimiser steps.
        batch_size: faces per step **per process** (the global batch is ``batch_size * world size``).
        lr, min_lr, warmup_steps: AdamW with linear warm-up then cosine decay to ``min_lr``.
        weight_decay: AdamW weight decay (not on biases / norms).
        betas: AdamW betas.
        grad_clip: maximum gradient norm (0: no clipping).
        amp: bfloat16 autocast of the backbone on CUDA (ignored on CPU).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``.
        num_workers: DataLoader processes.
        seed: seeds initialisation, data order and every random draw of each step.
        log_every, save_every, val_every: periods in steps (``val_every`` 0: only at the end).
        val_batch_size: faces per forward pass in validation.
        threads: ``torch.set_num_threads`` (0: leave as is).
        kprpe_lr_scale: learning-rate multiplier of KP-RPE's ``W_L`` (:class:`kprpe.core.KeypointRPE`);
            1 is the authors' recipe. Under Adam a step moves each weight by about ``lr`` whatever its
            gradient's scale, and ``W_L`` reads offsets in ``[0, 1]``, so at small budgets it barely leaves
            zero (``benchmarks/face_demo/README.md``); a multiplier is the same as offsets in larger units.
        keypoints: ``"true"`` (the landmarks of each face) or ``"constant"`` (the ArcFace template for every
            face, in training; the control arm that shows what KP-RPE does without landmark information).
    """

    train: str
    out_dir: str
    train_landmarks: str | None = None
    val: list[str] = field(default_factory=list)
    num_classes: int | None = None
    image_size: int = 112
    align: bool = False
    model: dict[str, Any] = field(default_factory=lambda: {"preset": "vit_small", "rpe": "kprpe"})
    head: dict[str, Any] = field(default_factory=lambda: {"name": "adaface"})
    augment: dict[str, Any] | None = field(default_factory=dict)
    iterations: int = 10000
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-6
    warmup_steps: int = 500
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 5.0
    amp: bool = True
    device: str = "auto"
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    save_every: int = 1000
    val_every: int = 0
    val_batch_size: int = 64
    threads: int = 0
    kprpe_lr_scale: float = 1.0
    keypoints: str = "true"

    def __post_init__(self) -> None:
        if not float(self.kprpe_lr_scale) > 0:
            raise ValueError(f"kprpe_lr_scale must be > 0, got {self.kprpe_lr_scale}")
        self.kprpe_lr_scale = float(self.kprpe_lr_scale)
        if self.keypoints not in ("true", "constant"):
            raise ValueError(f"keypoints must be 'true' or 'constant', got {self.keypoints!r}")
        self.val = [str(v) for v in ([self.val] if isinstance(self.val, (str, os.PathLike)) else self.val)]
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        for name in ("iterations", "batch_size", "log_every", "save_every", "image_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (the backbone's BatchNorm head needs a batch)")
        if self.warmup_steps < 0 or self.val_every < 0 or self.num_workers < 0:
            raise ValueError("warmup_steps, val_every and num_workers must be >= 0")
        if not isinstance(self.head, dict) or "name" not in self.head:
            raise ValueError(f"head must be a mapping with a 'name' (adaface, arcface, cosface), got {self.head!r}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        self.augment_config()  # validates the keys now, not at the first batch

    def augment_config(self) -> AugmentConfig:
        """The :class:`AugmentConfig` of ``augment`` (``None``: no augmentation)."""
        if self.augment is None:
            return AugmentConfig.none()
        fields = (f.name for f in dataclasses.fields(AugmentConfig))
        return AugmentConfig(**check_keys("augment", self.augment, fields))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Strict: an unknown key is an error that names it (and lists the valid ones)."""
        known = check_keys("train config", data, (f.name for f in dataclasses.fields(cls)))
        missing = [k for k in ("train", "out_dir") if k not in known]
        if missing:
            raise ValueError(f"train config: missing required key(s) {', '.join(missing)}")
        return cls(**known)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        """Read a YAML recipe; ``overrides`` (non-``None`` values) replace its keys."""
        data = read_yaml_mapping(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out
