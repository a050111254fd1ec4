"""Launcher pieces that need no OpenGait: torchrun variables, --cfgs rewriting, arguments."""

from __future__ import annotations

import argparse

import pytest

from kprpe_gait.opengait import launcher


def test_single_process_env_fills_only_what_is_missing():
    env: dict[str, str] = {}
    added = launcher.single_process_env(env)
    assert env == added
    assert {k: env[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")} == {
        "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"
    }  # fmt: skip
    assert 0 < int(env["MASTER_PORT"]) < 65536
    under_torchrun = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_PORT": "29500"}
    assert launcher.single_process_env(under_torchrun) == {}
    assert under_torchrun == {"RANK": "1", "WORLD_SIZE": "2", "MASTER_PORT": "29500"}
    kept = {"MASTER_PORT": "1234"}
    launcher.single_process_env(kept)
    assert kept["MASTER_PORT"] == "1234"


def test_cfgs_paths_existing_here_become_absolute(tmp_path):
    (tmp_path / "configs").mkdir()
    cfg = tmp_path / "configs" / "a.yaml"
    cfg.write_text("")
    args = ["--cfgs", "configs/a.yaml", "--phase", "train"]
    assert launcher._absolute_cfgs(args, tmp_path) == ["--cfgs", str(cfg), "--phase", "train"]
    assert launcher._absolute_cfgs(["--cfgs=configs/a.yaml"], tmp_path) == [f"--cfgs={cfg}"]
    # not found here: left for OpenGait's root
    assert launcher._absolute_cfgs(["--cfgs", "./configs/b.yaml"], tmp_path) == ["--cfgs", "./configs/b.yaml"]


def test_arguments_after_double_dash_go_to_main(tmp_path):
    parser = argparse.ArgumentParser()
    launcher.add_arguments(parser)
    args = parser.parse_args(["--opengait-root", "R", "--cpu", "--", "--cfgs", "c.yaml", "--phase", "test"])
    assert args.cpu and str(args.opengait_root) == "R"
    assert args.main_args[-4:] == ["--cfgs", "c.yaml", "--phase", "test"]
    args = parser.parse_args(["--local-rank=0", "--opengait-root", "R", "--", "--cfgs", "c.yaml"])
    assert args.main_args[-2:] == ["--cfgs", "c.yaml"]


def test_launch_checks_root_and_config_before_touching_the_process(tmp_path, monkeypatch):
    cwd = tmp_path / "here"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(FileNotFoundError, match="is not an OpenGait clone"):
        launcher.launch(tmp_path, ["--cfgs", "x.yaml"])
    (tmp_path / "opengait").mkdir()
    (tmp_path / "opengait" / "main.py").write_text("")
    with pytest.raises(ValueError, match="must name a config"):
        launcher.launch(tmp_path, ["--phase", "train"])
    assert launcher.Path.cwd() == cwd


def test_kprpe_gait_cli_dispatches_launch(tmp_path):
    from kprpe_gait.cli import main

    with pytest.raises(FileNotFoundError, match="is not an OpenGait clone"):
        main(["launch", "--opengait-root", str(tmp_path), "--", "--cfgs", "c.yaml", "--phase", "train"])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message shown without a GPU")
def test_launch_without_gpu_asks_for_cpu_mode(tmp_path):
    (tmp_path / "opengait").mkdir()
    (tmp_path / "opengait" / "main.py").write_text("")
    with pytest.raises(RuntimeError, match="add --cpu"):
        launcher.launch(tmp_path, ["--cfgs", "x.yaml"])


def test_shim_mode_needs_the_shim(tmp_path):
    (tmp_path / "opengait" / "modeling" / "models").mkdir(parents=True)
    (tmp_path / "opengait" / "main.py").write_text("raise SystemExit('main.py must not run')\n")
    (tmp_path / "opengait" / "modeling" / "models" / "__init__.py").write_text("")
    with pytest.raises(RuntimeError, match="no shim in .*kprpe-gait register"):
        launcher.launch(tmp_path, ["--cfgs", "c.yaml"], cpu=True, shim=True)
    from kprpe_gait.opengait import shim

    path = shim.register(tmp_path)
    path.write_text(shim.MARKER + "\nfrom kprpe_gait.opengait.models import SwinGait2D  # an older shim\n")
    assert shim.is_registered(tmp_path) and not shim.is_current(tmp_path)
    with pytest.raises(RuntimeError, match="another version of kprpe_gait.*kprpe-gait register"):
        launcher.launch(tmp_path, ["--cfgs", "c.yaml"], cpu=True, shim=True)
    shim.register(tmp_path)
    assert shim.is_current(tmp_path)
    parser = argparse.ArgumentParser()
    launcher.add_arguments(parser)
    args = parser.parse_args(["--opengait-root", str(tmp_path), "--shim", "--cpu", "--", "--cfgs", "c.yaml"])
    assert args.shim and args.cpu
