"""Checkpoints laid out exactly like the authors' load through ``load_pretrained`` and give their embeddings."""

import json

import pytest
import torch
import yaml
from cvlface_reference import parity_inputs, random_state_dict, their_forward, their_layout
from safetensors.torch import save_file

from face.models import build_model
from face.models.pretrained import cvlface_to_facevit, infer_config, load_pretrained, save_pretrained

TOL = 1e-4
SMALL = {"embed_dim": 64, "depth": 3, "heads": 4, "mlp_ratio": 5.0, "output_dim": 32}


def their_config(rpe="kprpe", ctx_type="rel_keypoint_splithead_unshared", color="RGB", **extra):
    cfg = {"input_size": [3, 112, 112], "color_space": color, "output_dim": 32, "mask_ratio": 0.0, **extra}
    if rpe == "kprpe":
        cfg["rpe_config"] = {
            "name": "KPRPE_shared", "rpe_on": "k", "shared_head": True, "mode": "ctx", "method": "product",
            "ratio": 1.9, "ctx_type": ctx_type, "num_keypoints": 5,
        }  # fmt: skip
    return cfg


def write_hf_folder(folder, sd, cfg, layout):
    """CVLface's Hugging Face folder: model.safetensors (model.net.*) or pretrained_model/model.pt (net.*)."""
    (folder / "pretrained_model").mkdir(parents=True)
    (folder / "pretrained_model" / "model.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "config.json").write_text(json.dumps({"architectures": ["CVLFaceRecognitionModel"]}))
    if layout == "safetensors":
        save_file({f"model.net.{k}": v.contiguous() for k, v in sd.items()}, str(folder / "model.safetensors"))
    else:
        torch.save({f"net.{k}": v for k, v in sd.items()}, folder / "pretrained_model" / "model.pt")
    return folder


def assert_parity(model, sd, heads, ctx_type="rel_keypoint_splithead_unshared", bgr=False):
    assert not model.training
    images, landmarks = parity_inputs()
    with torch.no_grad():
        ours = model(images, landmarks)
        theirs = their_forward(sd, heads, images, landmarks, ctx_type, bgr)
    assert ours.shape == theirs.shape
    diff = (ours - theirs).abs().max().item()
    assert diff <= TOL, diff
    return theirs


@pytest.mark.parametrize("layout", ["safetensors", "pt"])
def test_released_kprpe_folder_gives_their_embeddings(tmp_path, layout):
    shapes = their_layout(SMALL["embed_dim"], 3, 4, 5.0, 32, "kprpe", tables=4 * 3)
    sd = random_state_dict(shapes)
    folder = write_hf_folder(tmp_path / "hf", sd, their_config(), layout)
    model = load_pretrained(folder)
    assert model.config["rpe"] == "kprpe" and model.config["kprpe_variant"] == "multihead"
    assert model.config["num_heads"] == 4 and model.config["depth"] == 3 and model.config["output_dim"] == 32
    theirs = assert_parity(model, sd, 4)
    # the bias matters: without it the embedding differs by far more than the tolerance
    no_bias = {k: v for k, v in sd.items() if not k.startswith("keypoint_linear")}
    with torch.no_grad():
        plain = their_forward(no_bias, 4, *parity_inputs())
    assert (plain - theirs).abs().max() > 100 * TOL


@pytest.mark.parametrize(
    "ctx_type, tables", [("rel_keypoint", 1), ("rel_keypoint_splithead", 4), ("rel_keypoint_unshared", 3)]
)
def test_every_released_kprpe_variant_loads_with_its_config(tmp_path, ctx_type, tables):
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "kprpe", tables=tables), seed=tables)
    folder = write_hf_folder(tmp_path / "hf", sd, their_config(ctx_type=ctx_type), "pt")
    if ctx_type != "rel_keypoint_splithead":  # the tables do not name the heads of this non-preset width
        with pytest.raises(ValueError, match="num_heads="):
            load_pretrained(folder)
    model = load_pretrained(folder, num_heads=4)
    assert_parity(model, sd, 4, ctx_type)
    if ctx_type == "rel_keypoint_splithead":
        with pytest.raises(ValueError, match="does not fit a keypoint_linear with 4 tables"):
            load_pretrained(folder, num_heads=8)


def test_bare_files_infer_the_architecture(tmp_path):
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "kprpe", tables=12), seed=3)
    torch.save({f"net.{k}": v for k, v in sd.items()}, tmp_path / "model.pt")
    assert_parity(load_pretrained(tmp_path / "model.pt"), sd, 4)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "bare.safetensors"))
    assert_parity(load_pretrained(tmp_path / "bare.safetensors"), sd, 4)


def test_irpe_checkpoint_gives_their_embeddings(tmp_path):
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "irpe"), seed=4)
    save_file({f"model.net.{k}": v.contiguous() for k, v in sd.items()}, str(tmp_path / "irpe.safetensors"))
    model = load_pretrained(tmp_path / "irpe.safetensors")
    assert model.config["rpe"] == "irpe" and model.config["num_heads"] == 4
    assert_parity(model, sd, 4)


def test_bgr_flag_is_folded_into_the_weights_once(tmp_path):
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "kprpe", tables=12), seed=5)
    folder = write_hf_folder(tmp_path / "hf", sd, their_config(color="BGR"), "pt")
    model = load_pretrained(folder)
    assert_parity(model, sd, 4, bgr=True)
    save_pretrained(model, tmp_path / "ours")  # re-saved: takes RGB, no flag left to apply twice
    assert_parity(load_pretrained(tmp_path / "ours"), sd, 4, bgr=True)


def test_plain_vit_gives_their_embeddings(tmp_path):
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32), seed=6)
    save_file({f"model.net.{k}": v.contiguous() for k, v in sd.items()}, str(tmp_path / "model.safetensors"))
    model = load_pretrained(tmp_path / "model.safetensors", num_heads=4)  # no preset shape, no table: say it
    assert model.config["rpe"] == "none"
    images, landmarks = parity_inputs()
    with torch.no_grad():
        diff = (model(images, landmarks) - their_forward(sd, 4, images)).abs().max().item()
    assert diff <= TOL, diff


@pytest.mark.parametrize("preset, heads, depth, mlp", [("vit_small", 8, 12, 5.0), ("vit_base", 16, 24, 3.0)])
@pytest.mark.parametrize("rpe", ["none", "irpe", "kprpe"])
def test_real_key_sets_and_shapes_map_onto_the_presets(preset, heads, depth, mlp, rpe, build_uninitialised):
    shapes = their_layout(512, depth, heads, mlp, 512, rpe, tables=heads * depth)
    meta = {f"net.{k}": torch.empty(s, device="meta") for k, s in shapes.items()}
    ours = cvlface_to_facevit(meta)
    args = infer_config(ours)
    expected = build_uninitialised({"preset": preset, "rpe": rpe})
    assert {k: expected.config[k] for k in args} == args
    assert args["num_heads"] == heads and args.get("rpe", "none") == rpe
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in expected.state_dict().items()}


def test_our_format_round_trips(tmp_path):
    model = build_model({"preset": "vit_tiny", "depth": 2, "rpe": "kprpe", "kprpe_variant": "per_layer"})
    torch.nn.init.normal_(model.kprpe.proj.weight)
    save_pretrained(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_pretrained(tmp_path / "m")
    assert loaded.config == model.config and not loaded.training
    images, landmarks = parity_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(images, landmarks), model.eval()(images, landmarks), rtol=0, atol=0)
    assert load_pretrained(tmp_path / "m" / "model.safetensors").config == model.config


def test_strict_errors_list_the_keys(tmp_path):
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "kprpe", tables=12))
    extra = dict(
        sd, **{"blocks.0.attn.rpe_q.lookup_table_weight": torch.zeros(1, 16, 49), "head.fc.weight": sd["norm.bias"]}
    )
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match=r"extra\.pt.*2 key\(s\).*blocks\.0\.attn\.rpe_q.*head\.fc\.weight.*queries"):
        load_pretrained(tmp_path / "extra.pt")
    missing = {k: v for k, v in sd.items() if k not in ("blocks.1.mlp.fc2.bias", "feature.3.running_var")}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"missing 2: blocks\.1\.mlp\.fc2\.bias, head\.3\.running_var"):
        load_pretrained(tmp_path / "missing.pt")
    bad = dict(sd, **{"blocks.2.mlp.fc1.weight": torch.zeros(100, 64)})
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"shape mismatch.*blocks\.2\.mlp\.fc1\.weight \(100, 64\) vs \(320, 64\)"):
        load_pretrained(tmp_path / "bad.pt")
    torch.save({f"net.{k}": v for k, v in sd.items()} | {"mask_token": sd["norm.bias"]}, tmp_path / "mixed.pt")
    with pytest.raises(ValueError, match="mix prefixes"):
        load_pretrained(tmp_path / "mixed.pt")


def test_another_architecture_is_a_clear_error(tmp_path):
    swin = {
        "net.layers.0.blocks.0.attn.relative_position_bias_table": torch.zeros(49, 4),
        "net.norm.weight": torch.zeros(8),
    }
    torch.save(swin, tmp_path / "swin.pt")
    with pytest.raises(ValueError, match="Swin checkpoint"):
        load_pretrained(tmp_path / "swin.pt")
    iresnet = {"input_layer.0.weight": torch.zeros(64, 3, 3, 3), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)}
    torch.save(iresnet, tmp_path / "ir.pt")
    with pytest.raises(ValueError, match="IResNet"):
        load_pretrained(tmp_path / "ir.pt")
    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "kprpe", tables=12))
    folder = write_hf_folder(tmp_path / "hf", sd, their_config(name="small"), "pt")
    with pytest.raises(ValueError, match=r"config says ViT-small .* but the weights are"):
        load_pretrained(folder)
    v2 = {k: v for k, v in sd.items() if not k.startswith("keypoint_linear")}
    v2 |= {"keypoint_linear.0.weight": torch.zeros(256, 10), "keypoint_linear.3.weight": torch.zeros(49, 256)}
    torch.save(v2, tmp_path / "v2.pt")
    with pytest.raises(ValueError, match="MLP keypoint map"):
        load_pretrained(tmp_path / "v2.pt")
    plain = random_state_dict(their_layout(64, 3, 4, 5.0, 32))
    torch.save(plain, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="head count"):
        load_pretrained(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        load_pretrained(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_pretrained(tmp_path / "empty")


def test_convert_command_writes_our_format(tmp_path, capsys):
    from face.cli import main

    sd = random_state_dict(their_layout(64, 3, 4, 5.0, 32, "kprpe", tables=12), seed=7)
    folder = write_hf_folder(tmp_path / "hf", sd, their_config(color="BGR"), "safetensors")
    assert main(["convert", "--checkpoint", str(folder), "--out", str(tmp_path / "ours")]) == 0
    assert "rpe=kprpe (multihead)" in capsys.readouterr().out
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["format"] == "kprpe-face" and config["model"]["depth"] == 3
    assert_parity(load_pretrained(tmp_path / "ours"), sd, 4, bgr=True)
    assert main(["convert", "--checkpoint", str(tmp_path / "absent"), "--out", str(tmp_path / "x")]) == 2
    assert "absent does not exist" in capsys.readouterr().err


def _ours(tmp_path):
    model = build_model({"preset": "vit_tiny", "depth": 2, "rpe": "kprpe", "kprpe_variant": "per_layer"})
    return save_pretrained(model, tmp_path / "m")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"embed_dim": 64}, r"config embed_dim gives 64 but the weights have 96 \(patch_embed\.weight\)"),
        ({"depth": 3}, r"config depth gives 3 but the weights have 2"),
        ({"rpe": "none"}, r"config rpe gives 'none' but the weights have 'kprpe'"),
        ({"img_size": 224}, r"config img_size gives 224 but the weights have 112 \(pos_embed\)"),
        ({"mlp_ratio": 4.0}, r"config mlp_ratio gives '384 hidden units' but the weights have 192"),
        ({"embed_dim": "wide"}, r"model embed_dim must be int, got 'wide'"),
        # sizes the weights do not record directly: a hand-edited value would size W_L (1e6: terabytes)
        ({"rpe_ratio": 1e6}, r"rpe_ratio 1000000.0 gives 16000008000001 buckets x 2 tables but kprpe.proj has 98"),
        ({"rpe_ratio": "wide"}, r"rpe_ratio 'wide' is not a bucket ratio"),
        ({"num_keypoints": 10**9}, r"num_keypoints 1000000000 but kprpe.proj reads 10 values"),
    ],
)
def test_config_that_disagrees_with_the_weights_fails_before_building(tmp_path, monkeypatch, change, message):
    folder = _ours(tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["model"] |= change
    (folder / "config.json").write_text(json.dumps(meta))
    monkeypatch.setattr("face.models.pretrained.build_model", lambda *a, **k: pytest.fail("model was allocated"))
    with pytest.raises(ValueError, match=r"config\.json.*" + message):
        load_pretrained(folder)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:5], r"\(file of 5 bytes\)"),
        (lambda data: (10**9).to_bytes(8, "little") + data[8:], "announces 1000000000 header bytes"),
        (lambda data: data[:8] + b"\xff" + data[9:], "not UTF-8 JSON"),
        (lambda data: data[:-4], r"data_offsets \[\d+, \d+\] do not hold"),
        (lambda data: data.replace(b'"F32"', b'"X32"', 1), "no known dtype"),
    ],
)
def test_corrupt_safetensors_header_is_a_clear_error(tmp_path, monkeypatch, damage, message):
    folder = _ours(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    monkeypatch.setattr("face.models.pretrained.build_model", lambda *a, **k: pytest.fail("model was allocated"))
    with pytest.raises(ValueError, match=r"model\.safetensors: corrupt safetensors header.*" + message):
        load_pretrained(folder)
    cvlface = tmp_path / "bare.safetensors"  # the CVLface path reads bare files through the same check
    cvlface.write_bytes(weights.read_bytes())
    with pytest.raises(ValueError, match=r"bare\.safetensors: corrupt safetensors header"):
        load_pretrained(cvlface)
