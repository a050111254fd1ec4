"""Checks of the plugin's model classes inside a real OpenGait, in one process (not collected by pytest).

Run by ``test_opengait_run.py``: ``python _opengait_checks.py ROOT CONFIG OUT.json``. Builds the
models the way ``main.py`` does (CPU mode, a one-process gloo group, OpenGait's ``config_loader``),
feeds real batches from OpenGait's loader, and records results and error messages in ``OUT.json``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any


def main(root: str, config: str, out: str) -> None:
    from kprpe_gait.opengait import registry, runtime
    from kprpe_gait.opengait.cpu import enable_cpu_mode
    from kprpe_gait.opengait.launcher import single_process_env

    enable_cpu_mode()
    single_process_env()
    runtime.activate(root)
    os.chdir(runtime.resolve_root(root))
    import torch
    import torch.distributed as dist

    dist.init_process_group("nccl")  # what main.py asks for; CPU mode makes it gloo
    registry.register()
    from modeling import models
    from utils import config_loader, get_msg_mgr

    from kprpe.core import KeypointRPE

    get_msg_mgr().init_logger(tempfile.mkdtemp(), False)
    base = config_loader(config)
    results: dict[str, Any] = {}

    def build(mutate: Callable[[dict], None] | None = None, training: bool = True, name: str = "SwinGait2DKPRPE"):
        cfgs = copy.deepcopy(base)
        cfgs["model_cfg"]["model"] = name
        if mutate is not None:
            mutate(cfgs)
        return getattr(models, name)(cfgs, training)

    def error(key: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001  (recorded for the test to assert on)
            results[key] = f"{type(e).__name__}: {e}"
        else:
            results[key] = None

    model = build()
    rpe = [m for m in model.net.modules() if isinstance(m, KeypointRPE)]
    results["wl_zero_at_init"] = bool(rpe) and all(not m.proj.weight.detach().any() for m in rpe)
    wl_ids = {id(p) for m in rpe for p in m.parameters()}
    groups = model.optimizer.param_groups
    results["wl_weight_decay"] = sorted(
        {g["weight_decay"] for g in groups if any(id(p) in wl_ids for p in g["params"])}
    )
    results["group_lrs"] = sorted(g["lr"] for g in groups)
    results["optimizer"] = type(model.optimizer).__name__
    results["scheduler"] = type(model.scheduler).__name__

    batch = next(iter(model.train_loader))
    ipts, labs, typs, vies, seqL = model.inputs_pretreament(batch)
    sils, joints = ipts
    confident = joints[..., 2] > 0
    results["batch"] = {
        "sils": list(sils.shape), "joints": list(joints.shape), "labs": list(labs.shape),
        "seqL": None if seqL is None else seqL.tolist(),
        "sils_range": [float(sils.min()), float(sils.max())],
        "joint_xy_median": [float(joints[..., 0][confident].median()), float(joints[..., 1][confident].median())],
    }  # fmt: skip
    out_dict = model.forward((ipts, labs, typs, vies, seqL))
    results["forward"] = {
        "training_feat": sorted(out_dict["training_feat"]),
        "embeddings": list(out_dict["training_feat"]["triplet"]["embeddings"].shape),
        "logits": list(out_dict["training_feat"]["softmax"]["logits"].shape),
        "inference": list(out_dict["inference_feat"]["embeddings"].shape),
        "visual": sorted(out_dict["visual_summary"]),
    }

    seqs, *rest = batch
    error("joint_count", lambda: model.inputs_pretreament([[seqs[0], [j[:, :16] for j in seqs[1]]], *rest]))
    error("frame_count", lambda: model.inputs_pretreament([[seqs[0], [j[:-1] for j in seqs[1]]], *rest]))
    error("sils_only", lambda: model.inputs_pretreament([[seqs[0]], *rest]))
    restored = build(lambda c: c["optimizer_cfg"].update(stem_lr_scale=0.1))
    results["group_lrs_stem_0.1"] = sorted(g["lr"] for g in restored.optimizer.param_groups)
    del restored
    error("model_key", lambda: build(lambda c: c["model_cfg"].update(kprpe_varient="multihead")))
    error("optimizer_key", lambda: build(lambda c: c["optimizer_cfg"].update(wieght_decay=0.1)))
    error("scheduler_key", lambda: build(lambda c: c["scheduler_cfg"].update(T_zero=5)))
    error("transform_key", lambda: build(lambda c: c["trainer_cfg"]["transform"][0].update(flip_probability=0.5)))
    error(
        "transform_type",
        lambda: build(lambda c: c["evaluator_cfg"].update(transform=[{"type": "BaseSilCuttingTransform"}])),
    )
    error("class_num", lambda: build(lambda c: c["model_cfg"]["SeparateBNNecks"].update(class_num=2)))

    baseline = build(lambda c: c["data_cfg"].update(data_in_use=[True, False]), name="SwinGait2D")
    inputs = baseline.inputs_pretreament(next(iter(baseline.train_loader)))
    results["baseline_inputs"] = len(inputs[0])
    with torch.no_grad():
        results["baseline_embeddings"] = list(baseline.forward(inputs)["inference_feat"]["embeddings"].shape)

    dist.destroy_process_group()
    with open(out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:4])
