"""The plugin inside a real OpenGait (needs OPENGAIT_ROOT): model checks, kprpe-gait launch, shim, torchrun.

Every run is on the CPU (``--cpu``) in a copy of the clone, on SynthGait ``tiny``, with the smoke
configs shrunk further (batches of 2 x 2 sequences of 10 frames).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from kprpe_gait.models import build_from_model_cfg, load_weights
from kprpe_gait.opengait import shim

pytestmark = pytest.mark.opengait

HERE = Path(__file__).resolve().parent
METRICS = {f"scalar/test_accuracy/{k}" for k in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")}


def test_model_classes_inside_opengait(opengait_copy, synth_tiny, tmp_path, smoke_config, run_python):
    cfg = smoke_config(tmp_path / "checks.yaml", "synthgait_smoke_kprpe.yaml", synth_tiny,
                       trainer_cfg={"sampler": {"batch_size": [2, 2]}})  # fmt: skip
    out = tmp_path / "checks.json"
    run_python([str(HERE / "_opengait_checks.py"), str(opengait_copy), str(cfg), str(out)], cwd=tmp_path)
    r = json.loads(out.read_text())

    assert r["wl_zero_at_init"] is True  # init_parameters kept KP-RPE's W_L at zero
    assert r["wl_weight_decay"] == [0.0]
    assert r["group_lrs"] == pytest.approx([1e-3, 1e-3, 1e-3])  # from scratch: stem_lr_scale 1.0
    assert r["group_lrs_stem_0.1"] == pytest.approx([1e-4, 1e-3, 1e-3])  # stem and heads at 0.1 x lr
    assert (r["optimizer"], r["scheduler"]) == ("AdamW", "CosineAnnealingWarmRestarts")
    batch = r["batch"]
    assert batch["sils"] == [4, 10, 64, 44] and batch["joints"] == [4, 10, 17, 3] and batch["seqL"] is None
    assert 0.0 <= batch["sils_range"][0] and batch["sils_range"][1] <= 1.0 + 1e-6
    # joints normalised to the 64x44 network input: the body is roughly centred
    assert all(0.25 < v < 0.75 for v in batch["joint_xy_median"])
    fwd = r["forward"]
    assert fwd["training_feat"] == ["softmax", "triplet"]
    assert fwd["embeddings"] == [4, 32, 15] and fwd["logits"] == [4, 50, 15] and fwd["inference"] == [4, 32, 15]
    assert fwd["visual"] == ["image/sils"]

    assert "expects 17 joints per frame, the data has 16" in r["joint_count"]
    assert "frame counts differ: 10 silhouettes vs 9 joint frames" in r["frame_count"]
    assert "needs joints" in r["sils_only"] and "data_in_use" in r["sils_only"]
    assert "kprpe_varient" in r["model_key"] and "kprpe_variant" in r["model_key"]
    assert "unknown key 'wieght_decay'" in r["optimizer_key"]
    assert "unknown key 'T_zero'" in r["scheduler_key"] and "T_0" in r["scheduler_key"]
    assert "unknown key 'flip_probability'" in r["transform_key"] and "flip_prob" in r["transform_key"]
    assert "SilJointTransform" in r["transform_type"]
    assert "has 4 identities but model_cfg.SeparateBNNecks.class_num is 2" in r["class_num"]
    assert r["baseline_inputs"] == 1 and r["baseline_embeddings"] == [4, 32, 15]


def test_kprpe_gait_launch_cpu_trains_then_tests(opengait_copy, synth_tiny, tmp_path, smoke_config, kprpe_gait):
    """``kprpe-gait launch --cpu``: OpenGait's unmodified main.py trains KP-RPE 20 iterations, then tests them."""
    name = "pytest_kprpe"
    cfg = smoke_config(
        tmp_path / "kprpe.yaml", "synthgait_smoke_kprpe.yaml", synth_tiny,
        trainer_cfg={"total_iter": 20, "save_iter": 10, "log_iter": 10, "save_name": name,
                     "sampler": {"batch_size": [2, 2]}},
        evaluator_cfg={"restore_hint": 20, "save_name": name},
    )  # fmt: skip
    launch = ["launch", "--opengait-root", str(opengait_copy), "--cpu", "--", "--cfgs", str(cfg)]
    proc = kprpe_gait([*launch, "--phase", "train"], cwd=tmp_path)
    log = proc.stdout + proc.stderr  # the training log shows what applies, not OpenGait's merged defaults
    assert "'solver': 'AdamW'" in log and "'stem_lr_scale': 1.0" in log and "'T_0'" in log
    assert "momentum" not in log and "milestones" not in log

    ckpt_dir = opengait_copy / "output" / "SynthGait" / "SwinGait2DKPRPE" / name / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("*.pt")) == [f"{name}-00010.pt", f"{name}-00020.pt"]
    ckpt = torch.load(ckpt_dir / f"{name}-00020.pt", map_location="cpu", weights_only=True)
    assert ckpt["iteration"] == 20 and set(ckpt) >= {"model", "optimizer", "scheduler"}
    assert all(k.startswith("net.") for k in ckpt["model"])
    wl = {k: v for k, v in ckpt["model"].items() if k.endswith("proj.weight") and "rpe" in k}
    assert wl and all(v.abs().sum() > 0 for v in wl.values())  # W_L left zero and learned
    model_cfg = yaml.safe_load(cfg.read_text())["model_cfg"]
    load_weights(build_from_model_cfg(model_cfg), ckpt_dir / f"{name}-00020.pt")  # strict load outside OpenGait

    results_file = cfg.with_suffix(".results.json")
    assert not results_file.exists()
    kprpe_gait([*launch, "--phase", "test"], cwd=tmp_path)  # restores iteration 20
    assert_results(results_file)


def test_shim_trains_then_tests_with_unmodified_main(opengait_copy, synth_tiny, tmp_path, smoke_config, kprpe_gait):
    """``kprpe-gait register``, then ``launch --shim --cpu``: the plugin comes only from the shim file that
    OpenGait's own model folder imports (the route of OpenGait's torchrun command): 4 iterations, then the
    test at the checkpoint (``with_test``), in one process."""
    name = "pytest_shim"
    cfg = smoke_config(
        tmp_path / "shim.yaml", "synthgait_smoke_kprpe.yaml", synth_tiny,
        trainer_cfg={"total_iter": 4, "save_iter": 4, "log_iter": 2, "with_test": True, "save_name": name,
                     "sampler": {"batch_size": [2, 2]}},
        evaluator_cfg={"save_name": name},
    )  # fmt: skip
    launch = ["launch", "--opengait-root", str(opengait_copy), "--shim", "--cpu", "--", "--cfgs", str(cfg)]
    kprpe_gait(["register", "--opengait-root", str(opengait_copy)], cwd=tmp_path)
    try:
        assert shim.is_registered(opengait_copy) and shim.is_current(opengait_copy)
        kprpe_gait([*launch, "--phase", "train"], cwd=opengait_copy)
        ckpt_dir = opengait_copy / "output" / "SynthGait" / "SwinGait2DKPRPE" / name / "checkpoints"
        assert [p.name for p in ckpt_dir.glob("*.pt")] == [f"{name}-00004.pt"]
    finally:
        removed = shim.unregister(opengait_copy)
    assert removed and not shim.is_registered(opengait_copy)
    assert_results(cfg.with_suffix(".results.json"))


def assert_results(results_file: Path) -> None:
    """The evaluator's results file: OpenGait's five Gait3D metrics, each a percentage."""
    results = json.loads(results_file.read_text())
    assert set(results) == METRICS
    assert all(0.0 <= v <= 100.0 for v in results.values())


@pytest.mark.slow
def test_torchrun_two_cpu_processes(opengait_copy, synth_tiny, tmp_path, smoke_config, run_python):
    """torchrun --nproc_per_node=2: gloo, a triplet batch split over the processes, test batch = world size."""
    name = "pytest_ddp"
    cfg = smoke_config(
        tmp_path / "baseline.yaml", "synthgait_smoke.yaml", synth_tiny,
        trainer_cfg={"total_iter": 4, "save_iter": 4, "log_iter": 2, "with_test": True, "save_name": name,
                     "sampler": {"batch_size": [2, 2]}},
        evaluator_cfg={"save_name": name, "sampler": {"batch_size": 2}},
    )  # fmt: skip
    run_python(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "kprpe_gait.opengait.launcher", "--opengait-root", str(opengait_copy), "--cpu", "--",
                "--cfgs", str(cfg), "--phase", "train"], cwd=tmp_path, OMP_NUM_THREADS="1")  # fmt: skip
    ckpt_dir = opengait_copy / "output" / "SynthGait" / "SwinGait2D" / name / "checkpoints"
    assert [p.name for p in ckpt_dir.glob("*.pt")] == [f"{name}-00004.pt"]
    assert_results(cfg.with_suffix(".results.json"))


@pytest.mark.slow
def test_opengait_demo_aligned_and_misaligned(opengait_copy, synth_tiny, tmp_path):
    from kprpe_gait.opengait.demo import run_opengait_demo

    summary = run_opengait_demo(synth_tiny, tmp_path / "demo", opengait_copy, iters=2, cpu=True, models=("kprpe",),
                                batch=(2, 2), tag="pytest", progress=False)  # fmt: skip
    assert set(summary["results"]["kprpe"]) == {"aligned", "misaligned"}
    for metrics in summary["results"]["kprpe"].values():
        assert set(metrics) == {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}
    assert Path(summary["checkpoints"]["kprpe"]).is_file()
