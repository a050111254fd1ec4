"""The authors' face Swin checkpoints (CVLface ``swin_kprpe``) load strictly and give their embeddings."""

import json

import pytest
import torch
import yaml
from cvlface_reference import parity_inputs
from cvlface_swin_reference import random_swin_state_dict, their_swin_forward, their_swin_layout, their_window_buffers
from safetensors.torch import save_file

from face.models import FaceSwin, build_model, load_pretrained, save_pretrained
from face.models.pretrained_swin import cvlface_swin_to_faceswin, infer_swin_config
from face.models.swin import PRESETS as SWIN_PRESETS
from kprpe.skip_init import no_weight_init

TOL = 1e-4
DEPTHS, HEADS = [2, 2, 2, 2], [1, 2, 4, 8]


def their_config(rpe="kprpe", color="RGB", **extra):
    """Their ``configs/v1_*_kprpe_splithead_unshared.yaml`` (``name`` left out: these weights are no preset)."""
    cfg = {"input_size": [3, 112, 112], "color_space": color, "output_dim": 64, "mask_ratio": 0.0, **extra}
    if rpe == "kprpe":
        cfg["rpe_config"] = {
            "name": "KPRPE_shared", "rpe_on": "k", "shared_head": True, "mode": "ctx", "method": "product",
            "ratio": 1.9, "ctx_type": "rel_keypoint_splithead_unshared", "num_keypoints": 5,
        }  # fmt: skip
    return cfg


def prefixed(sd, outer=""):
    """Their wrapper's keys: the Swin under ``net.``, the stages' ``keypoint_linear`` beside it."""
    return {outer + (k if k.startswith("keypoint_linear") else f"net.{k}"): v.contiguous() for k, v in sd.items()}


def write_hf_folder(folder, sd, cfg, layout):
    (folder / "pretrained_model").mkdir(parents=True)
    (folder / "pretrained_model" / "model.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "config.json").write_text(json.dumps({"architectures": ["CVLFaceRecognitionModel"]}))
    if layout == "safetensors":
        save_file(prefixed(sd, "model."), str(folder / "model.safetensors"))
    else:
        torch.save(prefixed(sd), folder / "pretrained_model" / "model.pt")
    return folder


def assert_parity(model, sd, bgr=False):
    assert not model.training
    images, landmarks = parity_inputs()
    with torch.no_grad():
        ours = model(images, landmarks)
        theirs = their_swin_forward(sd, DEPTHS, HEADS, images, landmarks, bgr=bgr)
    assert ours.shape == theirs.shape
    diff = (ours - theirs).abs().max().item()
    assert diff <= TOL, diff
    return theirs


@pytest.mark.parametrize("layout", ["safetensors", "pt"])
def test_released_swin_kprpe_folder_gives_their_embeddings(tmp_path, layout):
    sd = random_swin_state_dict(their_swin_layout(32, DEPTHS, HEADS, 64, "kprpe"))
    model = load_pretrained(write_hf_folder(tmp_path / "hf", sd, their_config(), layout))
    assert isinstance(model, FaceSwin)
    cfg = model.config
    assert (cfg["rpe"], cfg["depths"], cfg["num_heads"], cfg["window_size"]) == ("kprpe", DEPTHS, HEADS, 5)
    assert (cfg["embed_dim"], cfg["patch_size"], cfg["output_dim"], cfg["num_keypoints"]) == (32, 3, 64, 5)
    theirs = assert_parity(model, sd)
    # the keypoint bias matters: with zero W_L (a freshly initialised model) the embedding moves far more
    zero = {k: (torch.zeros_like(v) if k.startswith("keypoint_linear") else v) for k, v in sd.items()}
    with torch.no_grad():
        plain = their_swin_forward(zero, DEPTHS, HEADS, *parity_inputs())
    assert (plain - theirs).abs().max() > 100 * TOL
    # and every stage's table is read: zeroing the last stage's alone changes the embedding too
    last = {k: (torch.zeros_like(v) if k.startswith("keypoint_linear.3") else v) for k, v in sd.items()}
    with torch.no_grad():
        assert (their_swin_forward(last, DEPTHS, HEADS, *parity_inputs()) - theirs).abs().max() > 100 * TOL


def test_swin_v2_bias_checkpoint_gives_their_embeddings(tmp_path):
    """The same network with Swin V2's continuous position bias (``cpb_mlp``): the paired baseline."""
    sd = random_swin_state_dict(their_swin_layout(32, DEPTHS, HEADS, 64, "cpb"), seed=1)
    torch.save(prefixed(sd), tmp_path / "model.pt")
    model = load_pretrained(tmp_path / "model.pt")
    assert model.config["rpe"] == "cpb"
    assert_parity(model, sd)


def test_bare_keys_and_the_bgr_flag(tmp_path):
    sd = random_swin_state_dict(their_swin_layout(32, DEPTHS, HEADS, 64, "kprpe"), seed=2)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "bare.safetensors"))
    assert_parity(load_pretrained(tmp_path / "bare.safetensors"), sd)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(their_config(color="BGR")))
    torch.save(prefixed(sd), tmp_path / "model.pt")
    assert_parity(load_pretrained(tmp_path / "model.pt"), sd, bgr=True)


@pytest.mark.parametrize("name, preset", [("small", "swin_small"), ("base", "swin_base")])
def test_released_key_sets_and_shapes_map_onto_the_presets(name, preset):
    """Their full-size swin_v2_s / swin_v2_b + KP-RPE key sets (no weights: meta tensors) map one to one
    onto our presets, with the architecture inferred from the keys and checked against ``name``."""
    depths = {"small": [2, 2, 12, 2], "base": [2, 2, 18, 2]}[name]
    shapes = their_swin_layout(128, depths, [4, 8, 16, 32], 512, "kprpe")
    window_table, window_index = their_window_buffers(5)
    sd = {}
    for key, shape in shapes.items():
        if key.endswith("relative_coords_table"):
            sd[key] = window_table
        elif key.endswith("relative_position_index"):
            sd[key] = window_index
        else:
            sd[key] = torch.empty(shape, device="meta")
    mapped, buffers = cvlface_swin_to_faceswin(prefixed(sd))
    args = infer_swin_config(mapped, buffers, {"name": name, "rpe_config": their_config()["rpe_config"]})
    with no_weight_init():  # shapes only
        ours = build_model({"preset": preset, "rpe": "kprpe"}).state_dict()
    assert args["depths"] == depths and args["drop_path_rate"] == SWIN_PRESETS[preset]["drop_path_rate"]
    assert set(mapped) == set(ours)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert len(buffers) == 2 * sum(depths)


def test_strict_errors_name_the_keys(tmp_path):
    sd = prefixed(random_swin_state_dict(their_swin_layout(32, DEPTHS, HEADS, 64, "kprpe"), seed=3))
    cases = {
        "extra": ({**sd, "net.features.1.attn.extra": torch.zeros(1)}, "features.1.attn.extra"),
        "v1": ({**sd, "net.features.1.attn.relative_position_bias_table": torch.zeros(81, 1)}, "Swin V1"),
        "missing": ({k: v for k, v in sd.items() if k != "net.features.2.norm2.bias"}, "stages.0.blocks.1.norm2.bias"),
        "window": (
            {**sd, "net.features.1.attn.relative_position_index": torch.zeros(625, dtype=torch.long)},
            "relative_position_index is not the 5x5 window's",
        ),
        "kp-shape": ({**sd, "keypoint_linear.1.weight": torch.zeros(49, 10)}, "keypoint_linear.1 gives 49 columns"),
        "mixed": ({**sd, "features.0.0.bias": torch.zeros(32)}, "has no 'net.' prefix"),
    }
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / f"{name}.pt")
        with pytest.raises(ValueError, match=message):
            load_pretrained(tmp_path / f"{name}.pt")


def test_config_disagreements_are_errors(tmp_path):
    sd = random_swin_state_dict(their_swin_layout(32, DEPTHS, HEADS, 64, "kprpe"), seed=4)
    other_ctx = their_config()
    other_ctx["rpe_config"]["ctx_type"] = "rel_keypoint"
    for cfg, message in [
        ({**their_config(), "name": "small"}, "the config says Swin-small"),
        ({**their_config(), "input_size": [3, 96, 96]}, "the head reads"),
        (other_ctx, "supports only 'rel_keypoint_splithead_unshared'"),
    ]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        write_hf_folder(folder, sd, cfg, "pt")
        with pytest.raises(ValueError, match=message):
            load_pretrained(folder)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"depths": [2, 2, 2]}, r"config depths gives \[2, 2, 2\] but the weights have \[2, 2, 2, 2\]"),
        ({"embed_dim": 64}, r"config embed_dim gives 64 but the weights have 32"),
        ({"rpe": "cpb"}, r"config rpe gives 'cpb' but the weights have 'kprpe'"),
        ({"img_size": 10**6}, r"config img_size 1000000 gives a head of \d+ inputs but the weights have \(256, 6400\)"),
        (
            {"rpe_ratio": 1e6},
            r"rpe_ratio 1000000.0 gives 16000008000001 buckets x 2 tables but stages.0.rpe.proj has 98",
        ),
        ({"num_keypoints": 10**9}, r"num_keypoints 1000000000 but stages.0.rpe.proj reads 10 values"),
        ({"arch": "resnet"}, r"unknown model arch 'resnet'"),
    ],
)
def test_swin_config_that_disagrees_with_the_weights_fails_before_building(tmp_path, monkeypatch, change, message):
    torch.manual_seed(0)
    folder = save_pretrained(build_model({"preset": "swin_tiny", "rpe": "kprpe"}), tmp_path / "ours")
    meta = json.loads((folder / "config.json").read_text())
    meta["model"] |= change
    (folder / "config.json").write_text(json.dumps(meta))
    monkeypatch.setattr("face.models.pretrained.build_model", lambda *a, **k: pytest.fail("model was allocated"))
    with pytest.raises(ValueError, match=r"config\.json.*" + message):
        load_pretrained(folder)


def test_our_format_round_trips_and_checks_the_config(tmp_path):
    torch.manual_seed(0)
    model = build_model({"preset": "swin_tiny", "rpe": "kprpe", "output_dim": 64}).eval()
    with torch.no_grad():
        for stage in model.stages:
            stage.rpe.proj.weight.normal_()
    save_pretrained(model, tmp_path / "ours")
    meta = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert meta["model"]["arch"] == "swin" and meta["model"]["depths"] == [2, 2, 2, 2]
    loaded = load_pretrained(tmp_path / "ours")
    assert isinstance(loaded, FaceSwin)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*parity_inputs()), model(*parity_inputs()), rtol=0, atol=0)
    meta["model"]["num_heads"] = [2, 2, 4, 8]
    (tmp_path / "ours" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"num_heads gives \[2, 2, 4, 8\] but the weights have \[1, 2, 4, 8\]"):
        load_pretrained(tmp_path / "ours")
    meta["model"]["depths"] = "2,2"
    (tmp_path / "ours" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="depths must be a list of positive ints"):
        load_pretrained(tmp_path / "ours")


def test_convert_command_writes_a_swin_in_our_format(tmp_path, capsys):
    from face.cli import main

    sd = random_swin_state_dict(their_swin_layout(32, DEPTHS, HEADS, 64, "kprpe"), seed=5)
    folder = write_hf_folder(tmp_path / "hf", sd, their_config(color="BGR"), "safetensors")
    assert main(["convert", "--checkpoint", str(folder), "--out", str(tmp_path / "ours")]) == 0
    assert "Swin, depths [2, 2, 2, 2], width 32, heads [1, 2, 4, 8], rpe=kprpe" in capsys.readouterr().out
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["model"]["arch"] == "swin"
    assert_parity(load_pretrained(tmp_path / "ours"), sd, bgr=True)
