"""SwinGait-2D and SwinGait-2D + KP-RPE as OpenGait models, on OpenGait's own ``BaseModel``.

Importing this module imports ``modeling.base_model`` by OpenGait's top-level name, so
``<OpenGait root>/opengait`` must be on ``sys.path`` (:func:`kprpe_gait.opengait.runtime.activate`,
``kprpe-gait launch`` or the ``kprpe-gait register`` shim do that).

What the classes change in OpenGait's ``BaseModel``:

* ``build_network``: ``self.net`` = :func:`kprpe_gait.models.build_from_model_cfg` (every
  ``model_cfg`` key checked; checkpoints hold ``net.*`` keys); the ``transform`` sections of
  ``trainer_cfg`` / ``evaluator_cfg`` must be one :class:`~kprpe_gait.opengait.transforms.SilJointTransform`
  with known keys;
* ``init_parameters``: the network's own init (OpenGait's SwinGait init, KP-RPE ``W_L`` kept at
  zero) instead of OpenGait's generic xavier pass;
* ``get_optimizer`` / ``get_scheduler``: the network's parameter groups (no weight decay on norms,
  patch embedding, bias tables and ``W_L``; ``optimizer_cfg.stem_lr_scale`` x lr on the conv stem,
  FCs and BNNecks: 1.0 by default, for training from scratch, 0.1 where a config restores a trained
  DeepGaitV2 stem as OpenGait's SwinGait recipe does), and strict keys for the solver and the scheduler;
* ``inputs_pretreament``: silhouettes and joints transformed *together* per sequence, checked
  (frame counts, joint count, NaN), moved to the model's device without ``.cuda()``;
* ``forward``: OpenGait's dict (``triplet`` / ``softmax`` training features, ``embeddings`` for
  inference, silhouettes and joint overlays for TensorBoard).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import optim

try:
    from modeling.base_model import BaseModel
except ModuleNotFoundError as _err:
    if (_err.name or "").split(".")[0] != "modeling":
        raise
    raise ImportError(
        "kprpe_gait.opengait.models builds on OpenGait's BaseModel: put <OpenGait root>/opengait on "
        "sys.path first (kprpe_gait.opengait.runtime.activate), or run through 'kprpe-gait launch' "
        "or the 'kprpe-gait register' shim"
    ) from _err

from kprpe_gait.models import build_from_model_cfg

from .config import check_keys, constructor_keys, load_opengait_defaults
from .inputs import joint_overlay, prepare_batch, sequence_names
from .transforms import SilJointTransform, check_transform_cfg

__all__ = ["OpenGaitSwinGait2D", "OpenGaitSwinGait2DKPRPE"]


def _ensure_transform_registered() -> None:
    """``get_transform`` looks ``SilJointTransform`` up in ``data.transform``; make sure it is there."""
    import data.transform as opengait_transforms

    if getattr(opengait_transforms, SilJointTransform.__name__, None) is not SilJointTransform:
        setattr(opengait_transforms, SilJointTransform.__name__, SilJointTransform)


def _lookup(module: Any, name: Any, base: type, key: str) -> type:
    """The subclass of ``base`` called ``name`` in ``module``; ``ValueError`` naming ``key`` otherwise."""
    found = getattr(module, str(name), None)
    if isinstance(found, type) and issubclass(found, base):
        return found
    raise ValueError(f"{key} {name!r} is not a {base.__name__} of {module.__name__}")


class OpenGaitSwinGait2D(BaseModel):
    """The OpenGait model (``BaseModel``) around the :class:`kprpe_gait.models.SwinGait2D` network, registered as
    ``model: SwinGait2D``; Swin's window bias unless ``model_cfg.rel_pos`` says otherwise.

    ``model_cfg`` schema: :mod:`kprpe_gait.models.build`; ``rel_pos`` may be ``swin`` (default),
    ``kprpe`` or ``none``. Joints are read and augmented with the silhouettes whenever
    ``data_cfg.data_in_use`` loads them, and required when ``rel_pos`` is ``kprpe``.
    """

    def __init__(self, cfgs: dict, training: bool) -> None:
        super().__init__(cfgs, training)
        if training:
            identities = len(self.train_loader.dataset.label_set)
            if identities > self.net.num_classes:
                raise ValueError(
                    f"the training set has {identities} identities but model_cfg.SeparateBNNecks.class_num is "
                    f"{self.net.num_classes}: set class_num to at least {identities}"
                )

    # ------------------------------------------------------------------ construction
    def build_network(self, model_cfg: dict) -> None:
        for section in ("trainer_cfg", "evaluator_cfg"):
            check_transform_cfg(f"{section}.transform", self.cfgs[section].get("transform"))
        _ensure_transform_registered()
        self.net = build_from_model_cfg(model_cfg)

    @property
    def use_joints(self) -> bool:
        """Whether the network consumes joints (``rel_pos == "kprpe"``)."""
        return self.net.rel_pos == "kprpe"

    def init_parameters(self) -> None:
        self.net.reset_parameters()

    def get_optimizer(self, optimizer_cfg: dict) -> optim.Optimizer:
        cfg = dict(optimizer_cfg)
        solver = cfg.pop("solver", None)
        stem_lr_scale = float(cfg.pop("stem_lr_scale", 1.0))  # ours, not the optimiser's (param_groups)
        Optimizer = _lookup(optim, solver, optim.Optimizer, "optimizer_cfg.solver")
        inherited = load_opengait_defaults().get("optimizer_cfg", {})
        kwargs = check_keys(
            f"optimizer_cfg ({solver})", cfg, constructor_keys(Optimizer, ("self", "params")), inherited
        )
        if "lr" not in kwargs:
            raise ValueError("optimizer_cfg needs lr")
        # log what applies, not OpenGait's merged defaults (momentum under AdamW reads as if it were used)
        self.msg_mgr.log_info({"solver": solver, **kwargs, "stem_lr_scale": stem_lr_scale})
        lr = float(kwargs.pop("lr"))
        weight_decay = float(kwargs.pop("weight_decay", 0.0))
        groups = self.net.param_groups(lr, weight_decay, stem_lr_scale)
        grouped = {id(p) for g in groups for p in g["params"]}
        missing = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in grouped]
        if missing:
            raise RuntimeError(f"parameters missing from the network's optimiser groups: {missing}")
        return Optimizer(groups, lr=lr, weight_decay=weight_decay, **kwargs)

    def get_scheduler(self, scheduler_cfg: dict) -> Any:
        cfg = dict(scheduler_cfg)
        name = cfg.pop("scheduler", None)
        Scheduler = _lookup(optim.lr_scheduler, name, optim.lr_scheduler.LRScheduler, "scheduler_cfg.scheduler")
        inherited = load_opengait_defaults().get("scheduler_cfg", {})
        kwargs = check_keys(
            f"scheduler_cfg ({name})", cfg, constructor_keys(Scheduler, ("self", "optimizer")), inherited
        )
        self.msg_mgr.log_info({"scheduler": name, **kwargs})  # not the inherited MultiStepLR milestones
        return Scheduler(self.optimizer, **kwargs)

    # ------------------------------------------------------------------ data
    def inputs_pretreament(self, inputs: tuple) -> tuple:
        """OpenGait's collated batch -> ``([sils, joints?], labs, typs, vies, seqL)`` on the model's device.

        ``sils`` ``(n, s, h, w)`` in [0, 1]; ``joints`` ``(n, s, J, 3)`` normalised to that frame
        (only when the network uses them); ``seqL`` ``(1, k)`` int tensor or ``None``.
        """
        seqs_batch, labs_batch, typs_batch, vies_batch, seqL_batch = inputs
        (transform,) = self.trainer_trfs if self.training else self.evaluator_trfs
        loader = getattr(self, "train_loader" if self.training else "test_loader", None)
        label_set = loader.dataset.label_set if loader is not None else None
        labels = [label_set[i] for i in labs_batch] if label_set is not None else list(labs_batch)
        device = next(self.parameters()).device
        sils, joints, lengths = prepare_batch(
            seqs_batch,
            seqL_batch,
            transform,
            num_joints=self.net.num_joints,
            use_joints=self.use_joints,
            names=sequence_names(labels, typs_batch, vies_batch),
            device=device,
        )
        labs = torch.as_tensor(np.asarray(labs_batch), dtype=torch.long, device=device)
        seqL = None if lengths is None else torch.tensor([lengths], dtype=torch.int, device=device)
        ipts = [sils] if joints is None else [sils, joints]
        return ipts, labs, typs_batch, vies_batch, seqL

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: tuple) -> dict[str, dict[str, Any]]:
        ipts, labs, _, _, seqL = inputs
        sils = ipts[0]
        joints = ipts[1] if len(ipts) > 1 else None
        out = self.net(sils, joints, seqL)
        n, s, h, w = sils.shape
        visual = {"image/sils": sils.reshape(n * s, 1, h, w)}
        log_iter = self.engine_cfg.get("log_iter", 0) if self.training else 0
        if joints is not None and log_iter and (self.iteration + 1) % log_iter == 0:
            visual["image/joints"] = joint_overlay(sils[0], joints[0])  # only on steps that get logged
        return {
            "training_feat": {
                "triplet": {"embeddings": out["embeddings"], "labels": labs},
                "softmax": {"logits": out["logits"], "labels": labs},
            },
            "visual_summary": visual,
            "inference_feat": {"embeddings": out["embeddings"]},
        }


class OpenGaitSwinGait2DKPRPE(OpenGaitSwinGait2D):
    """Registered as ``model: SwinGait2DKPRPE``: SwinGait-2D with window KP-RPE from the 17 COCO joints of each frame (``rel_pos: kprpe``).

    Needs ``data_cfg.data_in_use: [true, true]`` (``00-sils.pkl`` and ``01-joints.pkl``).
    """
