"""``kprpe-gait``: one command, sub-commands implemented by the modules that own them.

Each module in :data:`COMMANDS` provides ``add_arguments(parser)`` and ``run(args) -> int``; it is
imported only when its sub-command runs, so ``kprpe-gait synth`` never imports OpenGait.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: what ``kprpe-gait --help`` says first (plain text: argparse shows it as is)
DESCRIPTION = "kprpe-gait: SynthGait, Gait3D pretreatment, SwinGait-2D + KP-RPE training in OpenGait, submissions"

#: sub-command -> (module, one-line help, plain text)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("kprpe_gait.demo", "SynthGait -> train SwinGait-2D with and without KP-RPE -> aligned/misaligned table"),
    "synth": ("kprpe_gait.data.synth_cli", "generate SynthGait, a synthetic Gait3D in its raw and OpenGait layouts"),
    "pretreat-gait3d": (
        "kprpe_gait.data.pretreat_cli",
        "Gait3D -> OpenGait pickles with joints in the silhouette frame",
    ),
    "launch": ("kprpe_gait.opengait.launcher", "run OpenGait's main.py with this plugin registered"),
    "register": ("kprpe_gait.opengait.shim", "install a shim so OpenGait's unmodified main.py finds the plugin"),
    "unregister": ("kprpe_gait.opengait.shim", "remove the shim installed by 'register'"),
    "submit": ("kprpe_gait.eval.submit", "rank a test set with a checkpoint and write submission files"),
    "convert-deepgaitv2": (
        "kprpe_gait.models.deepgaitv2",
        "a trained OpenGait DeepGaitV2 checkpoint -> the stem, FCs and BNNecks that start SwinGait-2D",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kprpe-gait", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        build_parser().parse_args(argv or ["--help"])  # prints help or a clear "invalid choice" error
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"kprpe-gait {name}", description=help_text)
    if hasattr(module, "add_arguments_for"):
        module.add_arguments_for(name, parser)
    else:
        module.add_arguments(parser)
    args = parser.parse_args(rest)
    args.command = name
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
