"""Sub-commands of ``kprpe-gait``: one module each, the convention of :mod:`face.commands`.

A module here is a sub-command named after the module, underscores as hyphens
(``kprpe_gait/commands/pretreat_gait3d.py`` -> ``kprpe-gait pretreat-gait3d``), when it defines ``HELP`` (one
line of plain text), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). The library code stays
where it was (:mod:`kprpe_gait.demo`, :mod:`kprpe_gait.data.synth`, :mod:`kprpe_gait.opengait.launcher`, ...);
a command module holds only the argument parsing and the glue, and imports the library inside its functions,
so that listing the sub-commands imports neither torch nor OpenGait. ``kprpe_gait.cli`` finds the modules;
nothing has to be registered by hand.
"""
