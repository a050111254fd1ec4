"""register / unregister on a fake OpenGait tree: the shim file, its marker, refusal of foreign files."""

from __future__ import annotations

import argparse

import pytest

from kprpe_gait.opengait import shim


@pytest.fixture
def fake_root(tmp_path):
    models = tmp_path / "og" / "opengait" / "modeling" / "models"
    models.mkdir(parents=True)
    (models / "__init__.py").write_text("")
    (tmp_path / "og" / "opengait" / "main.py").write_text("")
    return tmp_path / "og"


def test_register_writes_marked_shim_and_unregister_removes_exactly_it(fake_root):
    path = shim.register(fake_root)
    assert path == fake_root / "opengait" / "modeling" / "models" / shim.SHIM_NAME
    assert path.read_text().splitlines()[0] == shim.MARKER
    compile(path.read_text(), str(path), "exec")  # valid Python
    assert shim.is_registered(fake_root)
    assert shim.register(fake_root) == path  # idempotent
    cache = path.parent / "__pycache__"
    cache.mkdir()
    pyc = cache / "kprpe_gait_plugin.cpython-311.pyc"
    pyc.write_bytes(b"")
    other = cache / "baseline.cpython-311.pyc"
    other.write_bytes(b"")
    assert shim.unregister(fake_root) == [path, pyc]
    assert not path.exists() and not pyc.exists() and other.exists()
    assert not shim.is_registered(fake_root)
    assert shim.unregister(fake_root) == []  # nothing left to remove


def test_foreign_file_is_never_overwritten_or_deleted(fake_root):
    foreign = fake_root / "opengait" / "modeling" / "models" / shim.SHIM_NAME
    foreign.write_text("class Mine: pass\n")
    with pytest.raises(FileExistsError, match="not written by 'kprpe-gait register'"):
        shim.register(fake_root)
    with pytest.raises(FileExistsError, match="not deleting it"):
        shim.unregister(fake_root)
    assert foreign.read_text() == "class Mine: pass\n"


def test_not_an_opengait_clone(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not an OpenGait clone"):
        shim.register(tmp_path)


def test_cli_run(fake_root, capsys):
    parser = argparse.ArgumentParser()
    shim.add_arguments_for("register", parser)
    args = parser.parse_args(["--opengait-root", str(fake_root)])
    args.command = "register"
    assert shim.run(args) == 0
    assert "registered" in capsys.readouterr().out
    args.command = "unregister"
    assert shim.run(args) == 0
    assert "removed" in capsys.readouterr().out
    assert shim.run(args) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_kprpe_gait_cli_dispatches_register_and_unregister(fake_root):
    from kprpe_gait.cli import main

    assert main(["register", "--opengait-root", str(fake_root)]) == 0
    assert shim.is_registered(fake_root)
    assert main(["unregister", "--opengait-root", str(fake_root)]) == 0
    assert not shim.is_registered(fake_root)
