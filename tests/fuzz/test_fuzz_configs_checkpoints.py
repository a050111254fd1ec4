"""Fuzzing the readers of YAML configs (face recipe, OpenGait configs) and checkpoint folders
(``config.json``, ``model.safetensors``, ``model.pt``); see ``_fuzz_helpers`` for the property."""

from __future__ import annotations

import io
from pathlib import Path

import torch
import yaml
from _fuzz_helpers import FUZZ, check_reader, mutated
from hypothesis import given, settings
from hypothesis import strategies as st

from face.models import build_model
from face.models.pretrained import load_pretrained, save_pretrained
from face.train.config import TrainConfig
from kprpe_gait.eval.submit import load_config
from kprpe_gait.opengait.config import load_opengait_defaults
from kprpe_gait.train.trainer import TrainConfig as GaitTrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_face_train_yaml(tmp_path: Path, data: st.DataObject) -> None:
    seeds = [
        (CONFIGS / "face" / name).read_bytes() for name in ("synthface_demo_kprpe.yaml", "vit_small_webface4m.yaml")
    ]
    path = tmp_path / "recipe.yaml"
    path.write_bytes(data.draw(mutated(seeds)))
    check_reader("face train YAML", lambda: TrainConfig.from_yaml(path), tmp_path, [path])


def _use_opengait_yaml(path: Path) -> None:
    load_config(path)
    load_opengait_defaults(path)
    GaitTrainConfig.from_opengait(path, "data", "partition.json", "out")


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_opengait_yaml(tmp_path: Path, data: st.DataObject) -> None:
    seeds = [(CONFIGS / "gait3d" / name).read_bytes() for name in ("synthgait_smoke_kprpe.yaml", "swingait2d.yaml")]
    path = tmp_path / "opengait.yaml"
    path.write_bytes(data.draw(mutated(seeds)))
    check_reader("OpenGait YAML config", lambda: _use_opengait_yaml(path), tmp_path, [path])


def _tiny_model():
    return build_model({"preset": "vit_tiny", "embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 28,
                        "output_dim": 8, "rpe": "kprpe", "kprpe_variant": "per_layer"})  # fmt: skip


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_fuzz_our_checkpoint_folder(tmp_path: Path, data: st.DataObject) -> None:
    seed = tmp_path / "seed"
    if not seed.exists():
        save_pretrained(_tiny_model(), seed)
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((seed / name).read_bytes())
    target = folder / data.draw(st.sampled_from(["config.json", "model.safetensors"]))
    target.write_bytes(data.draw(mutated([target.read_bytes()])))
    check_reader("checkpoint folder (ours)", lambda: load_pretrained(folder), tmp_path, [target])


def _cvlface_seeds() -> dict[str, bytes]:
    """A CVLface folder's ``pretrained_model/model.pt`` (``net.*`` keys) and ``model.yaml``."""
    sd = _tiny_model().state_dict()
    their = {"patch_embed.proj.weight": sd["patch_embed.weight"], "patch_embed.proj.bias": sd["patch_embed.bias"]}
    their |= {k.replace("head.", "feature."): v for k, v in sd.items() if not k.startswith(("patch_embed", "kprpe"))}
    their |= {"keypoint_linear.weight": sd["kprpe.proj.weight"], "keypoint_linear.bias": sd["kprpe.proj.bias"]}
    buffer = io.BytesIO()
    torch.save({f"net.{k}": v for k, v in their.items()}, buffer)
    cfg = {"color_space": "RGB", "rpe_config": {"method": "product", "ratio": 1.9, "ctx_type": "rel_keypoint_unshared"}}
    return {"model.pt": buffer.getvalue(), "model.yaml": yaml.safe_dump(cfg).encode()}


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_fuzz_cvlface_checkpoint_folder(tmp_path: Path, data: st.DataObject) -> None:
    folder = tmp_path / "hf" / "pretrained_model"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = _cvlface_seeds()
    for name, content in seeds.items():
        (folder / name).write_bytes(content)
    name = data.draw(st.sampled_from(sorted(seeds)))
    (folder / name).write_bytes(data.draw(mutated([seeds[name]])))
    check_reader(
        "checkpoint folder (CVLface model.pt)", lambda: load_pretrained(folder.parent), tmp_path, [folder / name]
    )


def _their_swin() -> dict[str, torch.Tensor]:
    """A tiny checkpoint in the authors' Swin layout (:mod:`cvlface_swin_reference`), prefix-free."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "face" / "models"))
    try:
        from cvlface_swin_reference import random_swin_state_dict, their_swin_layout
    finally:
        sys.path.pop(0)
    return random_swin_state_dict(their_swin_layout(8, [1, 1], [1, 2], 8, "kprpe", img=30))


_SWIN_SEED: dict[str, torch.Tensor] = {}


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_cvlface_swin_state_dict(tmp_path: Path, data: st.DataObject) -> None:
    """Structural edits of their Swin layout (a key dropped, added or renumbered, a tensor of another shape,
    the window buffers or logit scales changed): a model, or a ``ValueError`` naming the file."""
    if not _SWIN_SEED:
        _SWIN_SEED.update(_their_swin())
    sd = dict(_SWIN_SEED)
    keys = sorted(sd)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["drop", "shape", "rename", "add", "scalar"]))
        key = data.draw(st.sampled_from(keys))
        if op == "drop":
            sd.pop(key, None)
        elif op == "shape":
            shape = data.draw(st.lists(st.integers(0, 6), max_size=4))
            sd[key] = torch.ones(shape, dtype=sd.get(key, torch.ones(1)).dtype)
        elif op == "rename" and key in sd:
            index = data.draw(st.integers(0, 12))
            sd[".".join(str(index) if part.isdigit() else part for part in key.split("."))] = sd.pop(key)
        elif op == "add":
            sd[key.rsplit(".", 1)[0] + "." + data.draw(st.sampled_from(["extra", "weight", "bias", "0.weight"]))] = (
                torch.ones(2)
            )
        elif op == "scalar":
            sd[key] = torch.tensor(data.draw(st.sampled_from([0.0, -1.0, float("nan"), 1e30])))
    path = tmp_path / "model.pt"
    torch.save({(k if k.startswith("keypoint_linear") else f"net.{k}"): v for k, v in sd.items()}, path)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({"input_size": [3, 30, 30], "rpe_config": {"ratio": 1.9}}))

    def use() -> None:
        model = load_pretrained(path)
        with torch.no_grad():
            model(torch.zeros(2, 3, 30, 30), torch.rand(2, 5, 2))

    check_reader("checkpoint file (CVLface Swin model.pt)", use, tmp_path, [path])
