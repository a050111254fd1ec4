"""Subcommands of ``kprpe-face``: one module each.

A module here is a subcommand named after the module (``face/commands/eval.py`` -> ``kprpe-face eval``) when it
defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). Keep heavy
imports inside ``run`` so that ``kprpe-face --help`` stays fast. ``face.cli`` finds the modules; nothing has to
be registered by hand.
"""
