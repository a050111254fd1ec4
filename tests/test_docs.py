"""The README and docs/ say only what the code does.

* every ``kprpe-face ...`` / ``kprpe-gait ...`` command line (fenced code blocks, and inline code that starts
  with the command) names a sub-command that exists and only ``--flags`` that sub-command's parser has (the
  parsers are built as ``face.cli`` and ``kprpe_gait.cli`` build them; ``-m face.cli`` /
  ``-m kprpe_gait.cli`` / ``-m kprpe_gait.opengait.launcher`` under ``torchrun`` count as the commands);
* every ``python tools/...`` / ``bash tools/...`` script and every ``python -m MODULE`` exists;
* every relative markdown link (and image) points to an existing file, and its ``#anchor`` to a heading there;
* every Python block marked ``<!-- docs-test: run -->`` (the line before its fence) runs (CPU, seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_MARKER = "<!-- docs-test: run -->"

FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)[^\n]*$")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SEGMENT_SPLIT = re.compile(r"\s(?:&&|\|\||;|\|)\s")
#: how a command line can start -> the tool and, where the entry point fixes it, the sub-command
ENTRY_POINTS = {
    "kprpe-face": ("kprpe-face", None),
    "kprpe-gait": ("kprpe-gait", None),
    "face.cli": ("kprpe-face", None),
    "kprpe_gait.cli": ("kprpe-gait", None),
    "kprpe_gait.opengait.launcher": ("kprpe-gait", "launch"),
}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    runnable: bool


@dataclass(frozen=True)
class Command:
    where: str  # "file:line"
    tool: str  # kprpe-face | kprpe-gait
    name: str | None  # the sub-command (None: none given)
    flags: tuple[str, ...]
    text: str


def code_blocks(path: Path, text: str | None = None) -> list[Block]:
    lines = (path.read_text(encoding="utf-8") if text is None else text).split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        runnable = start > 0 and lines[start - 1].strip() == RUN_MARKER
        blocks.append(Block(path, start + 1, lang, "\n".join(lines[start + 1 : j]), runnable))
        i = j + 1
    return blocks


def prose(text: str) -> str:
    """The text outside fenced code blocks (fences blanked, line numbers kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
            out.append("")
        elif fence is not None:
            out.append("")
            if line.strip().startswith(fence):
                fence = None
        else:
            out.append(line)
    return "\n".join(out)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, and the 0-based offset of the first."""
    out, buf, first = [], "", 0
    for k, line in enumerate(text.split("\n")):
        if not buf:
            first = k
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((first, buf + line))
        buf = ""
    if buf:
        out.append((first, buf))
    return out


def _tokens(segment: str) -> list[str]:
    try:
        return shlex.split(segment, comments=True)
    except ValueError:  # an unbalanced quote in prose-like text: fall back to whitespace
        return segment.split("#")[0].split()


def _flags(tokens: list[str]) -> tuple[str, ...]:
    flags = []
    for tok in tokens:
        if tok == "--":  # what follows goes to another program (OpenGait's main.py)
            break
        tok = tok.strip("[](){},")
        for part in tok.split("|"):
            part = part.strip("[](){},")
            if re.fullmatch(r"--[A-Za-z][\w-]*(=.*)?", part):
                flags.append(part.split("=", 1)[0])
    return tuple(flags)


def parse_command(tokens: list[str], where: str, text: str) -> Command | None:
    """The kprpe-face / kprpe-gait command in ``tokens``, wherever its entry point appears, or None."""
    for i, tok in enumerate(tokens):
        entry = None
        if tok in ("kprpe-face", "kprpe-gait"):
            entry = tok
        elif tok == "-m" and i + 1 < len(tokens) and "." in tokens[i + 1] and tokens[i + 1] in ENTRY_POINTS:
            entry, i = tokens[i + 1], i + 1
        if entry is None:
            continue
        tool, fixed = ENTRY_POINTS[entry]
        rest = tokens[i + 1 :]
        if fixed is not None:
            return Command(where, tool, fixed, _flags(rest), text)
        name = rest[0].strip("[]") if rest and not rest[0].startswith("-") else None
        return Command(where, tool, name, _flags(rest[1:] if name else rest), text)
    return None


def commands_in(path: Path, text: str | None = None) -> list[Command]:
    text = path.read_text(encoding="utf-8") if text is None else text
    rel = path.relative_to(ROOT) if path.is_absolute() and path.is_relative_to(ROOT) else path
    found = []
    for block in code_blocks(path, text):
        if block.lang not in ("", "bash", "sh", "shell", "console", "text"):
            continue
        for offset, line in _logical_lines(block.text):
            for segment in SEGMENT_SPLIT.split(line):
                cmd = parse_command(_tokens(segment), f"{rel}:{block.line + 1 + offset}", segment.strip())
                if cmd is not None:
                    found.append(cmd)
    for k, line in enumerate(prose(text).split("\n")):
        for span in INLINE.findall(line):
            span = span.replace("\\|", "|")
            words = span.split()
            # inline code is a command line when it names a sub-command (not just the tool, not `<name>`)
            if len(words) > 1 and words[0] in ("kprpe-face", "kprpe-gait") and re.fullmatch(r"[a-z][\w-]*", words[1]):
                cmd = parse_command(words, f"{rel}:{k + 1}", span)
                if cmd is not None:
                    found.append(cmd)
    return found


@cache
def parsers() -> dict[str, dict[str, argparse.ArgumentParser]]:
    """``{tool: {sub-command: its full parser}}``, built as ``face.cli`` and ``kprpe_gait.cli`` build them."""
    from face import cli as face_cli
    from kprpe_gait import cli as gait_cli

    face = {}
    for name, module in face_cli.subcommands().items():
        parser = argparse.ArgumentParser(prog=f"kprpe-face {name}")
        module.add_arguments(parser)
        face[name] = parser
    gait = {name: gait_cli.command_parser(name, module) for name, module in gait_cli.subcommands().items()}
    return {"kprpe-face": face, "kprpe-gait": gait}


def problems(command: Command) -> list[str]:
    known = parsers()[command.tool]
    if command.name is None:
        return [f"{command.where}: `{command.text}` names no sub-command"]
    if command.name not in known:
        return [f"{command.where}: `{command.tool} {command.name}` is not a sub-command (have: {', '.join(known)})"]
    options = known[command.name]._option_string_actions
    return [
        f"{command.where}: `{command.tool} {command.name}` has no flag {flag}"
        for flag in command.flags
        if flag not in options
    ]


# --------------------------------------------------------------------------------------------- tests
def all_commands() -> list[Command]:
    return [cmd for path in DOCS for cmd in commands_in(path)]


def test_docs_exist():
    names = {p.name for p in DOCS}
    expected = {"core", "face", "gait", "data", "toy_study", "speed", "development", "index"}
    assert {f"{n}.md" for n in expected} <= names and "README.md" in names


def test_commands_are_found():
    """The extractor sees the commands the pages are about (a broken extractor would pass everything)."""
    found = {(c.tool, c.name) for c in all_commands()}
    assert set(parsers()["kprpe-gait"]) <= {name for tool, name in found if tool == "kprpe-gait"}
    assert {"embed", "eval", "train", "demo", "synth", "align", "convert"} <= {
        name for tool, name in found if tool == "kprpe-face"
    }
    assert sum(len(c.flags) for c in all_commands()) > 50


def test_every_command_and_flag_exists():
    bad = [p for cmd in all_commands() for p in problems(cmd)]
    assert not bad, "\n".join(bad)


def test_the_check_catches_a_flag_that_does_not_exist():
    text = (
        "```bash\nkprpe-gait demo --quick --no-such-flag\n"
        "kprpe-face eval --model M \\\n    --bin a.bin --also-missing 3\nkprpe-gait nonexistent --x\n```\n"
        "and inline `kprpe-face embed --images D [--not-there]`\n"
    )
    found = [p for cmd in commands_in(Path("example.md"), text) for p in problems(cmd)]
    assert len(found) == 4, found
    assert any("--no-such-flag" in p for p in found) and any("--also-missing" in p for p in found)
    assert any("nonexistent" in p for p in found) and any("--not-there" in p for p in found)
    # flags after a bare "--" belong to the program the command starts (OpenGait's main.py)
    ok = "```bash\nkprpe-gait launch --opengait-root R --cpu -- --cfgs c.yaml --phase train\n```\n"
    assert [p for cmd in commands_in(Path("ok.md"), ok) for p in problems(cmd)] == []


def test_scripts_and_modules_exist():
    script = re.compile(r"\b(?:python3?|bash|sh)\s+((?:tools|benchmarks)/[\w./-]+)")
    module = re.compile(r"\bpython3?\s+-m\s+([\w.]+)")
    missing, seen = [], 0
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for k, line in enumerate(text.split("\n"), 1):
            for rel in script.findall(line):
                seen += 1
                if not (ROOT / rel).is_file():
                    missing.append(f"{path.relative_to(ROOT)}:{k}: {rel}")
            for name in module.findall(line):
                if name in ("pytest", "pip", "venv"):
                    continue
                seen += 1
                if importlib.util.find_spec(name) is None:
                    missing.append(f"{path.relative_to(ROOT)}:{k}: python -m {name}")
    assert seen > 5
    assert not missing, "\n".join(missing)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation (backticks included) dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> set[str]:
    out = set()
    for line in prose(path.read_text(encoding="utf-8")).split("\n"):
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            out.add(_slug(m.group(1)))
    return out


def test_relative_links_resolve():
    bad, seen = [], 0
    for path in DOCS:
        for k, line in enumerate(prose(path.read_text(encoding="utf-8")).split("\n"), 1):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                seen += 1
                file_part, _, anchor = target.partition("#")
                dest = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(ROOT)}:{k}: {target}"
                if not dest.exists():
                    bad.append(f"{where} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    bad.append(f"{where} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert seen > 20
    assert not bad, "\n".join(bad)


RUNNABLE = [block for path in DOCS for block in code_blocks(path) if block.runnable]


def test_there_are_runnable_blocks():
    assert any(block.path.name == "README.md" for block in RUNNABLE)
    assert all(block.lang == "python" for block in RUNNABLE)


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"{b.path.name}:{b.line}")
def test_runnable_python_blocks_run(block):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", block.text], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{block.path.name}:{block.line}\n{done.stderr[-3000:]}"
