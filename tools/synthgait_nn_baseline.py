"""Is SynthGait learnable but not trivial? A 1-NN on gait energy images, no training.

    python tools/synthgait_nn_baseline.py DIR [--splits pkl pkl-misaligned]

For each split folder of ``DIR`` (OpenGait pickles written by ``kprpe-gait synth``), every TEST_SET
sequence becomes its GEI (mean silhouette over frames, ``64 x 64`` in ``[0, 1]``); each probe of
``DIR/partition.json`` is ranked against all other test sequences (the gallery, as Gait3D's protocol)
by Euclidean distance; Rank-1/5 and mAP are printed, with chance level for reference. A trained
model should be well above this; a GEI-1NN near 100 % would mean the data set is trivially easy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from kprpe_gait.data.formats import SIL_PKL_NAME, probe_key
from kprpe_gait.data.io import list_sequence_folders, load_sequence


def gait_energy_images(root: Path, ids: set[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """``(N, 64*64)`` GEIs of the sequences of ``ids`` under ``root``, their labels and probe keys."""
    geis, labels, keys = [], [], []
    for key in list_sequence_folders(root):
        if key[0] in ids and (root.joinpath(*key) / SIL_PKL_NAME).is_file():
            sils, _ = load_sequence(root.joinpath(*key))
            geis.append(sils.astype(np.float64).mean(axis=0).reshape(-1) / 255.0)
            labels.append(key[0])
            keys.append(probe_key(*key))
    if not geis:
        raise FileNotFoundError(f"{root}: no test sequences found")
    return np.stack(geis), labels, keys


def retrieval_scores(dist: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> dict[str, float]:
    """Rank-1, Rank-5 and mAP in percent; probes without a true match in the gallery are skipped.

    (A minimal stand-in for :func:`kprpe_gait.eval.evaluate_retrieval`, so this tool stays independent.)
    """
    order = np.argsort(dist, axis=1, kind="stable")
    matches = gallery_labels[order] == probe_labels[:, None]  # (P, G), sorted by distance
    valid = matches.any(axis=1)
    matches = matches[valid]
    first = matches.argmax(axis=1)
    hits = np.cumsum(matches, axis=1)
    precision = hits / np.arange(1, matches.shape[1] + 1)
    ap = (precision * matches).sum(axis=1) / matches.sum(axis=1)
    return {
        "Rank-1": 100.0 * float((first < 1).mean()),
        "Rank-5": 100.0 * float((first < 5).mean()),
        "mAP": 100.0 * float(ap.mean()),
        "probes": int(valid.sum()),
    }


def evaluate_split(root: Path, partition: dict) -> dict[str, float]:
    geis, labels, keys = gait_energy_images(root, set(partition["TEST_SET"]))
    probes = set(partition["PROBE_SET"])
    is_probe = np.array([k in probes for k in keys])
    if not is_probe.any():
        raise ValueError(f"{root}: none of the PROBE_SET sequences is there")
    p, g = geis[is_probe], geis[~is_probe]
    dist = np.sqrt(np.maximum((p**2).sum(1)[:, None] + (g**2).sum(1)[None] - 2 * p @ g.T, 0.0))
    labels = np.asarray(labels)
    scores = retrieval_scores(dist, labels[is_probe], labels[~is_probe])
    scores["chance Rank-1"] = 100.0 / len(set(labels[~is_probe]))
    scores["gallery"] = int((~is_probe).sum())
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="SynthGait folder (with partition.json)")
    parser.add_argument("--splits", nargs="+", default=["pkl", "pkl-misaligned"], help="pickle folders to evaluate")
    args = parser.parse_args(argv)
    partition_path = args.root / "partition.json"
    if not partition_path.is_file():
        print(f"error: {partition_path} not found (is {args.root} a SynthGait folder?)", file=sys.stderr)
        return 1
    partition = json.loads(partition_path.read_text())
    for split in args.splits:
        s = evaluate_split(args.root / split, partition)
        print(
            f"GEI-1NN {split:>15}: Rank-1 {s['Rank-1']:5.1f}%  Rank-5 {s['Rank-5']:5.1f}%  mAP {s['mAP']:5.1f}%  "
            f"({s['probes']} probes, {s['gallery']} gallery sequences, chance Rank-1 {s['chance Rank-1']:.1f}%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
