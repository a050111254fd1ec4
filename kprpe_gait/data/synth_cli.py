"""The flags of ``kprpe-gait synth`` -> a SynthGait configuration (:func:`build_config`, :func:`describe_size`).

The command itself (``add_arguments``, ``run``) is :mod:`kprpe_gait.commands.synth`, re-exported here.

::

    kprpe-gait synth --out synthgait-small --size small --seed 0 --workers 2
    kprpe-gait synth --out big --size large --ids 1000 --train-ids 700 --mis-rotate 12
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from .misalign import MisalignConfig

#: ``--mis-<name>`` flags -> MisalignConfig fields
MISALIGN_FLAGS = {f.name: f.name.replace("_", "-") for f in fields(MisalignConfig)}
_MISALIGN_FLAGS = MISALIGN_FLAGS  # the name before kprpe_gait.commands.synth


def build_config(args: argparse.Namespace):
    """The :class:`~kprpe_gait.data.synth.SynthConfig` the arguments describe (raises ValueError)."""
    from .synth import PRESETS, SynthConfig

    base = dict(PRESETS[args.size])
    if args.ids is not None:
        base["num_ids"] = args.ids
        if args.train_ids is None:  # keep the preset's train share
            base["num_train_ids"] = max(
                1, min(args.ids - 1, round(args.ids * base["num_train_ids"] / PRESETS[args.size]["num_ids"]))
            )
    for arg, key in (
        ("train_ids", "num_train_ids"),
        ("seqs_per_id", "seqs_per_id"),
        ("min_frames", "min_frames"),
        ("max_frames", "max_frames"),
    ):
        if getattr(args, arg) is not None:
            base[key] = getattr(args, arg)
    if args.min_frames is not None and args.max_frames is None:
        base["max_frames"] = max(base["max_frames"], args.min_frames)
    mis = {name: getattr(args, f"mis_{name}") for name in MISALIGN_FLAGS if getattr(args, f"mis_{name}") is not None}
    return SynthConfig.from_dict({**base, "seed": args.seed, "misalign": MisalignConfig(**mis)})


_SIZE_ARGS = ("ids", "train_ids", "seqs_per_id", "min_frames", "max_frames")


def describe_size(args: argparse.Namespace, cfg) -> str:
    """The preset's name in quotes, or, once a size flag changed it, what was generated instead."""
    if all(getattr(args, arg) is None for arg in _SIZE_ARGS):
        return f"'{args.size}'"
    return (
        f"custom size ({cfg.num_ids} identities, {cfg.num_train_ids} for training, {cfg.seqs_per_id} sequences "
        f"each, {cfg.min_frames}-{cfg.max_frames} frames; from preset '{args.size}')"
    )


# The command-line glue is kprpe_gait.commands.synth (one module per sub-command, as face.commands); these
# names stay importable from here for code written before the move.
from kprpe_gait.commands import synth as _cli  # noqa: E402

add_arguments, run = _cli.add_arguments, _cli.run
