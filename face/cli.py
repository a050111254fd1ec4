"""``kprpe-face``: face recognition tools on the KP-RPE core.

Each subcommand lives in its own module under :mod:`face.commands` (``kprpe-face COMMAND --help`` for its
options). Errors a user can fix (absent files, malformed inputs, wrong config keys) end the command with exit
code 2 and one line naming the problem, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from face import commands
from kprpe.subcommands import find_subcommands

__all__ = ["build_parser", "main", "subcommands"]


def subcommands() -> dict[str, ModuleType]:
    """``{name: module}`` of every subcommand module in :mod:`face.commands`, sorted by name."""
    return find_subcommands(commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kprpe-face", description="face recognition tools on the KP-RPE core")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in subcommands().items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (OSError, ValueError) as e:
        print(f"kprpe-face {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
