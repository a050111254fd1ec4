"""``kprpe-gait``: SynthGait, Gait3D pretreatment, SwinGait-2D + KP-RPE in OpenGait, submissions.

Each sub-command lives in its own module under :mod:`kprpe_gait.commands` (``kprpe-gait COMMAND --help`` for
its options), the convention of ``kprpe-face`` (:mod:`face.cli`): a module named after the command, underscores
for hyphens, with ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Listing the commands imports
only those small modules; a command's options are built, and its library imported, only when it runs, so
``kprpe-gait synth`` never imports OpenGait and ``kprpe-gait --help`` never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from kprpe.subcommands import find_subcommands
from kprpe_gait import commands

__all__ = ["DESCRIPTION", "build_parser", "command_parser", "main", "subcommands"]

#: what ``kprpe-gait --help`` says first (plain text: argparse shows it as is)
DESCRIPTION = "kprpe-gait: SynthGait, Gait3D pretreatment, SwinGait-2D + KP-RPE training in OpenGait, submissions"


def subcommands() -> dict[str, ModuleType]:
    """``{name: module}`` of every sub-command module in :mod:`kprpe_gait.commands` (``pretreat_gait3d`` ->
    ``pretreat-gait3d``), sorted by module name."""
    return find_subcommands(commands)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: one entry per sub-command, without the sub-commands' own options."""
    parser = argparse.ArgumentParser(prog="kprpe-gait", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in subcommands().items():
        sub.add_parser(name, help=module.HELP, description=module.HELP, add_help=False)
    return parser


def command_parser(name: str, module: ModuleType | None = None) -> argparse.ArgumentParser:
    """The full parser of ``kprpe-gait NAME`` (its ``add_arguments`` applied)."""
    module = subcommands()[name] if module is None else module
    parser = argparse.ArgumentParser(prog=f"kprpe-gait {name}", description=module.HELP)
    module.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    found = subcommands()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in found:
        build_parser().parse_args(argv or ["--help"])  # prints help or a clear "invalid choice" error
        return 2
    name, rest = argv[0], argv[1:]
    args = command_parser(name, found[name]).parse_args(rest)
    args.command = name
    return int(found[name].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
