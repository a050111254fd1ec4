"""`kprpe-gait synth` names what it generates: the preset, or a custom size once a size flag changed it."""

import argparse

from kprpe_gait.data import synth_cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    synth_cli.add_arguments(parser)
    return parser.parse_args(["--out", "x", *argv])


def test_preset_name_only_while_the_preset_decides_the_size():
    args = parse("--size", "tiny", "--mis-rotate", "5")
    assert synth_cli.describe_size(args, synth_cli.build_config(args)) == "'tiny'"
    args = parse("--size", "tiny", "--ids", "40", "--seqs-per-id", "3")
    label = synth_cli.describe_size(args, synth_cli.build_config(args))
    assert "'tiny'" not in label.split(";")[0] and label.startswith("custom size (40 identities")
    assert "3 sequences each" in label and "from preset 'tiny'" in label
