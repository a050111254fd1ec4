"""The face trainer: recipe checks, data order, exact resume, the DDP path and the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TinyBackbone

from face.cli import main
from face.train import StepBatchSampler, TrainConfig, Trainer, model_inputs
from kprpe.checkpoint import latest_checkpoint, load_checkpoint

REPO = Path(__file__).resolve().parents[3]


def _config(root: Path, out: Path, **overrides) -> TrainConfig:
    base = {"train": str(root), "out_dir": str(out), "image_size": 32, "iterations": 6, "batch_size": 4, "lr": 1e-2,
            "warmup_steps": 2, "save_every": 100, "log_every": 1, "head": {"name": "adaface", "sample_rate": 0.5},
            "augment": {"crop_prob": 0.5, "blur_prob": 0.5, "low_res_prob": 0.5}}  # fmt: skip
    base.update(overrides)
    return TrainConfig.from_dict(base)


def test_exact_resume_equals_an_uninterrupted_run(face_folder, tmp_path):
    torch.manual_seed(123)
    straight = Trainer(_config(face_folder, tmp_path / "a"), backbone=TinyBackbone(), progress=False)
    straight.train()
    torch.manual_seed(123)
    first = Trainer(_config(face_folder, tmp_path / "b"), backbone=TinyBackbone(), progress=False)
    first.train(until=3)
    assert first.step == 3 and latest_checkpoint(tmp_path / "b" / "checkpoints").name == "iter-00003.pt"
    torch.manual_seed(999)  # a different global state must not matter
    resumed = Trainer(_config(face_folder, tmp_path / "b"), backbone=TinyBackbone(), progress=False)
    assert resumed.step == 3
    resumed.train()
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert [round(r["loss"], 5) for r in straight.history] == [round(r["loss"], 5) for r in resumed.history]
    assert len(resumed.history) == 6
    # the AdaFace statistics moved and were restored
    assert resumed.head.batch_mean.item() != 20.0
    assert (tmp_path / "a" / "tb").is_dir() and (tmp_path / "a" / "config.json").is_file()


def test_resume_refuses_another_recipe(face_folder, tmp_path):
    Trainer(_config(face_folder, tmp_path / "a"), backbone=TinyBackbone(), progress=False).train(until=1)
    with pytest.raises(ValueError, match=r"other settings for \['lr'\]"):
        Trainer(_config(face_folder, tmp_path / "a", lr=0.5), backbone=TinyBackbone(), progress=False)


def _verification_bin(root: Path, path: Path) -> Path:
    """10 pairs of the folder's faces (even pairs same identity), with the landmark sidecar."""
    from face.data import FaceFolder, write_verification_bin

    faces = FaceFolder(root, root / "landmarks.csv")
    order = [(0, 1), (4, 8), (5, 6), (1, 12), (9, 10), (2, 13), (13, 14), (3, 7), (14, 15), (6, 11)]
    items = [faces[i] for pair in order for i in pair]
    issame = [faces.samples[a][1] == faces.samples[b][1] for a, b in order]
    write_verification_bin(path, [image for image, _, _ in items], issame, torch.stack([p for _, p, _ in items]))
    return path


def test_training_lowers_the_loss_and_validates_on_a_bin(face_folder, tmp_path):
    val = _verification_bin(face_folder, tmp_path / "val.bin")
    config = _config(face_folder, tmp_path / "a", iterations=40, augment=None, lr=3e-2, val=[str(val)], val_every=20,
                     head={"name": "cosface", "scale": 16.0, "margin": 0.1})  # fmt: skip
    trainer = Trainer(config, backbone=TinyBackbone(), progress=False)
    trainer.train()
    losses = [row["loss"] for row in trainer.history if "loss" in row]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    validated = [row for row in trainer.history if "val/val/accuracy" in row]
    assert [row["step"] for row in validated] == [20, 40]
    assert all(0.0 <= row["val/val/accuracy"] <= 1.0 and "val/val/tar@1e-02" in row for row in validated)


def test_step_batches_cover_each_epoch_once_and_split_across_processes():
    samplers = [StepBatchSampler(22, 3, 0, 8, seed=1, rank=r, world=2) for r in range(2)]
    assert samplers[0].steps_per_epoch == 3
    epoch0 = [i for s in range(3) for r in range(2) for i in samplers[r].batch_of(s)]
    assert len(set(epoch0)) == 18  # no index twice in an epoch
    assert list(samplers[0])[4] == samplers[0].batch_of(4)  # iteration == random access
    late = StepBatchSampler(22, 3, 5, 8, seed=1, rank=0, world=2)
    assert list(late) == list(samplers[0])[5:]
    with pytest.raises(ValueError, match="fewer than one global batch"):
        StepBatchSampler(5, 3, 0, 1, world=2)


def test_model_inputs_normalise_images_and_landmarks():
    images = torch.zeros(1, 3, 4, 4)
    landmarks = torch.tensor([[[0.0, 3.0, 1.0], [1.5, 1.5, 1.0], [20.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 2.0, 1.0]]])
    x, keypoints = model_inputs(images, landmarks)
    assert torch.equal(x, torch.full_like(x, -1.0))
    torch.testing.assert_close(keypoints[0, 0], torch.tensor([0.125, 0.875, 1.0]))
    torch.testing.assert_close(keypoints[0, 1], torch.tensor([0.5, 0.5, 1.0]))
    assert torch.isnan(keypoints[0, 2, :2]).all() and keypoints[0, 2, 2] == 0  # far outside: missing
    assert torch.isnan(keypoints[0, 3, :2]).all() and keypoints[0, 3, 2] == 0  # confidence 0: missing


def test_recipe_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'learning_rate'"):
        TrainConfig.from_dict({"train": "x", "out_dir": "y", "learning_rate": 0.1})
    with pytest.raises(ValueError, match="augment: unknown key 'flip'"):
        TrainConfig.from_dict({"train": "x", "out_dir": "y", "augment": {"flip": 0.5}})
    with pytest.raises(ValueError, match="missing required key"):
        TrainConfig.from_dict({"train": "x"})
    path = tmp_path / "c.yaml"
    path.write_text("train: x\nout_dir: y\nbatch: 3\n")
    with pytest.raises(ValueError, match=r"c.yaml: .*unknown key 'batch'"):
        TrainConfig.from_yaml(path)


def test_shipped_recipes_parse():
    from face.models import build_model
    from kprpe.skip_init import no_weight_init

    configs = sorted((REPO / "configs" / "face").glob("*.yaml"))
    assert configs, "configs/face holds the recipes"
    for path in configs:
        cfg = TrainConfig.from_yaml(path)
        with no_weight_init():  # the model section names a buildable backbone (shapes only)
            model = build_model(cfg.model)
        if "kprpe" in path.stem:
            assert model.config["rpe"] == "kprpe", path


def test_ddp_path_on_a_gloo_group_matches_the_plain_run(face_folder, tmp_path):
    """The DistributedDataParallel path (gloo, one CPU process) takes exactly the plain run's steps.

    A 2-process run (``torchrun --nproc_per_node 2 -m face.cli train``) takes about 35 s on a loaded 2-core
    machine, mostly imports: too slow for the suite; docs/face.md gives the command.
    """
    import torch.distributed as dist

    torch.manual_seed(5)
    plain = Trainer(_config(face_folder, tmp_path / "a", iterations=3), backbone=TinyBackbone(), progress=False)
    plain.train()
    rendezvous = f"file://{tmp_path / 'rendezvous'}"
    dist.init_process_group("gloo", init_method=rendezvous, rank=0, world_size=1, timeout=timedelta(seconds=60))
    try:
        torch.manual_seed(5)
        ddp = Trainer(_config(face_folder, tmp_path / "b", iterations=3), backbone=TinyBackbone(), progress=False)
        assert isinstance(ddp.ddp, torch.nn.parallel.DistributedDataParallel)
        ddp.train()
    finally:
        dist.destroy_process_group()
    for (name, a), (_, b) in zip(plain.model.state_dict().items(), ddp.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_cli_trains_a_face_vit_and_rejects_unknown_keys(face_folder, tmp_path, capsys):
    recipe = {"train": str(face_folder), "out_dir": str(tmp_path / "run"), "image_size": 112, "iterations": 2,
              "batch_size": 2, "warmup_steps": 1, "model": {"preset": "vit_tiny", "rpe": "kprpe", "output_dim": 32},
              "head": {"name": "arcface"}, "log_every": 1}  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(path), "--no-progress"]) == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "iter-00002.pt")
    assert state["step"] == 2 and state["world_size"] == 1 and len(state["history"]) == 2
    assert (tmp_path / "run" / "config.json").is_file()

    path.write_text(yaml.safe_dump({**recipe, "epochs": 3}))
    assert main(["train", "--config", str(path)]) == 2
    assert "unknown key 'epochs'" in capsys.readouterr().err


def test_cli_trains_a_face_swin_and_exports_it(face_folder, tmp_path):
    """A ``swin_*`` preset trains through the same command; the exported model loads back as a FaceSwin."""
    from face.models import FaceSwin, load_pretrained
    from kprpe.core import KeypointRPE

    recipe = {"train": str(face_folder), "out_dir": str(tmp_path / "run"), "image_size": 112, "iterations": 2,
              "batch_size": 2, "warmup_steps": 1, "model": {"preset": "swin_tiny", "rpe": "kprpe", "output_dim": 32},
              "head": {"name": "adaface"}, "log_every": 1, "kprpe_lr_scale": 10.0}  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(path), "--no-progress"]) == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "iter-00002.pt")
    w_l = [v for k, v in state["model"].items() if k.endswith("rpe.proj.weight")]
    assert len(w_l) == 4 and all(w.abs().sum() > 0 for w in w_l)  # every stage's W_L left zero
    model = load_pretrained(tmp_path / "run" / "model")
    assert isinstance(model, FaceSwin) and sum(isinstance(m, KeypointRPE) for m in model.modules()) == 4


def test_kprpe_lr_scale_and_the_constant_landmark_control(face_folder, tmp_path):
    """``kprpe_lr_scale`` gives W_L its own scaled groups (nothing else); ``keypoints: constant`` feeds the template
    to the model whatever the faces' landmarks."""
    from face.eval.reliance import constant_landmarks
    from face.models import build_model
    from kprpe.core import KeypointRPE

    model = {"preset": "vit_tiny", "img_size": 32, "patch_size": 8, "depth": 1, "rpe": "kprpe", "output_dim": 16}
    trainer = Trainer(_config(face_folder, tmp_path / "a", model=model, kprpe_lr_scale=10.0), progress=False)
    w_l = {id(p) for m in trainer.model.modules() if isinstance(m, KeypointRPE) for p in m.parameters()}
    scaled = [g for g in trainer.optimizer.param_groups if g.get("lr_scale", 1.0) == 10.0]
    assert {id(p) for g in scaled for p in g["params"]} == w_l and len(w_l) == 2
    trainer.train_step(next(iter(trainer.loader())))
    assert all(g["lr"] == pytest.approx(10.0 * trainer.optimizer.param_groups[0]["lr"]) for g in scaled)

    seen = []
    backbone = build_model(model)
    backbone.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    control = Trainer(_config(face_folder, tmp_path / "b", model=model, keypoints="constant"), backbone=backbone,
                      progress=False)  # fmt: skip
    control.train_step(next(iter(control.loader())))
    assert torch.equal(seen[0], constant_landmarks(len(seen[0])))
    with pytest.raises(ValueError, match="keypoints must be"):
        _config(face_folder, tmp_path / "c", keypoints="template")
    with pytest.raises(ValueError, match="kprpe_lr_scale"):
        _config(face_folder, tmp_path / "c", kprpe_lr_scale=0)
