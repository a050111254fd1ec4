"""Every kprpe-gait help text is plain text: no docstring markup reaches the user."""

import re

import pytest

from kprpe_gait import cli
from kprpe_gait.opengait import launcher

MARKUP = re.compile(r"``|:(func|mod|class|meth|data|attr):`")


def help_text(capsys, call) -> str:
    with pytest.raises(SystemExit) as done:
        call()
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [None, *cli.subcommands()])
def test_help_has_no_docstring_markup(capsys, command):
    text = help_text(capsys, lambda: cli.main(["--help"] if command is None else [command, "--help"]))
    assert "usage: kprpe-gait" in text
    assert not MARKUP.search(text), MARKUP.search(text).group(0)


def test_launcher_module_help_has_no_markup(capsys):
    text = help_text(capsys, lambda: launcher.main(["--help"]))
    assert "main.py" in text and not MARKUP.search(text)
