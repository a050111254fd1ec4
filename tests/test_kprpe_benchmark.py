"""kprpe.benchmark: the helpers the benchmark tools share."""

from kprpe.benchmark import command_line, publish, ratio, write_section


def test_results_section_is_replaced_not_duplicated(tmp_path):
    path = tmp_path / "RESULTS.md"
    write_section("first\n", "k", path)
    write_section("other\n", "j", path)
    write_section("second\n", "k", path)
    text = path.read_text()
    assert "second" in text and "first" not in text and "other" in text
    assert text.count("<!-- k -->") == 1
    # a replaced section keeps the blank line that separates it from the next one
    assert "<!-- /k -->\n\n<!-- j -->" in text and text.endswith("<!-- /j -->\n")


def test_publish_prints_always_and_writes_only_when_asked(tmp_path, capsys):
    path = tmp_path / "RESULTS.md"
    publish("| a |\n", "k", path, write=False)
    assert "| a |" in capsys.readouterr().out and not path.exists()
    publish("| b |\n", "k", path, write=True)
    assert "| b |" in path.read_text() and "wrote section k" in capsys.readouterr().out


def test_command_line_and_ratio():
    assert command_line("tools/x.py", ["--device", "cpu"]) == "python tools/x.py --device cpu"
    assert ratio(3.0, 2.0) == "1.50x" and ratio(None, 2.0) == "n/a" and ratio(1.0, 0.0) == "n/a"
