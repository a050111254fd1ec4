"""Run OpenGait's own ``main.py`` with this plugin registered (``kprpe-gait launch``).

Usage, from anywhere (``--cfgs`` paths that exist relative to the current folder are made absolute;
other relative paths, including those inside the config, are OpenGait's: relative to its root)::

    kprpe-gait launch --opengait-root R -- --cfgs configs/gait3d/swingait2d_kprpe.yaml --phase train
    torchrun --nproc_per_node=4 -m kprpe_gait.opengait.launcher --opengait-root R -- \\
        --cfgs configs/gait3d/swingait2d_kprpe.yaml --phase train
    kprpe-gait launch --opengait-root R --cpu -- --cfgs configs/gait3d/synthgait_smoke_kprpe.yaml --phase train
    kprpe-gait launch --opengait-root R --shim --cpu -- --cfgs ... --phase test   # the shim path, no GPU

In every process (``torchrun`` starts one per GPU) the launcher puts ``R/opengait`` first on
``sys.path``, changes into ``R``, imports ``modeling.models``, ``data.transform`` and
``evaluation.evaluator``, sets the plugin's names on them (:mod:`kprpe_gait.opengait.registry`) and
runs ``R/opengait/main.py`` as ``__main__`` with the arguments after ``--``. Started without
``torchrun``, it sets the variables ``torchrun`` would for a single process (``RANK=0``,
``WORLD_SIZE=1``, ``LOCAL_RANK=0``, ``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``).
``--cpu`` additionally applies the patches of :mod:`kprpe_gait.opengait.cpu` (gloo, no CUDA calls);
without it nothing in ``torch`` or OpenGait is patched. ``--shim`` registers nothing itself: the shim
written by ``kprpe-gait register`` does, while OpenGait imports its models, exactly as with OpenGait's own
``torchrun opengait/main.py`` command. That command needs GPUs (``main.py`` hard-codes NCCL and CUDA);
``--shim --cpu`` is the shim path on a machine without one.
"""

from __future__ import annotations

import argparse
import os
import runpy
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_arguments", "launch", "main", "run", "single_process_env"]


def single_process_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The ``torchrun`` variables a lone process needs, for those that are not set yet.

    Returns the variables that were added (empty when running under ``torchrun``).
    """
    environ = os.environ if environ is None else environ
    if "RANK" in environ or "WORLD_SIZE" in environ:
        return {}
    added = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
    if "MASTER_ADDR" not in environ:
        added["MASTER_ADDR"] = "127.0.0.1"
    if "MASTER_PORT" not in environ:
        added["MASTER_PORT"] = str(_free_port())
    environ.update(added)
    return added


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _absolute_cfgs(main_args: Sequence[str], cwd: Path) -> list[str]:
    """``--cfgs PATH`` / ``--cfgs=PATH`` made absolute when ``PATH`` exists relative to ``cwd``."""

    def fix(path: str) -> str:
        candidate = cwd / path
        return str(candidate.resolve()) if not Path(path).is_absolute() and candidate.exists() else path

    out: list[str] = []
    args = list(main_args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--cfgs" and i + 1 < len(args):
            out += [arg, fix(args[i + 1])]
            i += 2
            continue
        if arg.startswith("--cfgs="):
            arg = "--cfgs=" + fix(arg[len("--cfgs=") :])
        out.append(arg)
        i += 1
    return out


def launch(
    opengait_root: str | os.PathLike[str],
    main_args: Sequence[str],
    cpu: bool = False,
    shim: bool = False,
) -> int:
    """Run ``<opengait_root>/opengait/main.py main_args`` in this process with the plugin registered.

    Changes the working directory, ``sys.path`` and ``sys.argv`` of the process for good (OpenGait
    needs them); run it in a process of its own.

    Args:
        opengait_root: an OpenGait clone (the folder holding ``opengait/main.py``).
        main_args: ``main.py``'s arguments, e.g. ``["--cfgs", "x.yaml", "--phase", "train"]``.
        cpu: run without a GPU (see :mod:`kprpe_gait.opengait.cpu`).
        shim: leave registration to the shim installed by ``kprpe-gait register`` (which must be there).

    Returns:
        0 (errors raise).
    """
    from . import registry, runtime
    from . import shim as shim_file

    root = runtime.resolve_root(opengait_root)
    if shim and not shim_file.is_registered(root):
        raise RuntimeError(f"--shim: no shim in {root}; install it with 'kprpe-gait register --opengait-root {root}'")
    if shim and not shim_file.is_current(root):
        raise RuntimeError(
            f"--shim: the shim in {root} was written by another version of kprpe_gait; "
            f"rewrite it with 'kprpe-gait register --opengait-root {root}'"
        )
    if not any(a == "--cfgs" or a.startswith("--cfgs=") for a in main_args):
        raise ValueError("main.py arguments must name a config: add '-- --cfgs CONFIG.yaml --phase train|test'")
    caller_cwd = Path.cwd()
    main_args = _absolute_cfgs(main_args, caller_cwd)
    if cpu:
        from .cpu import enable_cpu_mode

        enable_cpu_mode()  # before OpenGait binds any torch name
    else:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("OpenGait needs a CUDA device (nccl, .cuda()) and none is available: add --cpu")
    single_process_env()
    runtime.activate(root)
    os.chdir(root)
    if not shim:
        registry.register()

    main_py = root / "opengait" / "main.py"
    sys.argv = [str(main_py), *main_args]
    try:
        runpy.run_path(str(main_py), run_name="__main__")
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


# The command-line glue is kprpe_gait.commands.launch (one module per sub-command, as face.commands); these
# names stay importable from here (``main`` below uses them).
from kprpe_gait.commands import launch as _cli  # noqa: E402

add_arguments, run = _cli.add_arguments, _cli.run


def main(argv: Sequence[str] | None = None) -> int:
    description = "Run OpenGait's own main.py with this plugin registered (as 'kprpe-gait launch')."
    parser = argparse.ArgumentParser(prog="python -m kprpe_gait.opengait.launcher", description=description)
    add_arguments(parser)
    return run(parser.parse_args(sys.argv[1:] if argv is None else list(argv)))


if __name__ == "__main__":
    sys.exit(main())
