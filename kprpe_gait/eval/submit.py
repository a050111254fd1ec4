"""``kprpe-gait submit``: rank a test set with a checkpoint, print its metrics, write submission files.

::

    kprpe-gait submit --config configs/gait3d/swingait2d_kprpe.yaml --checkpoint ckpt.pt \\
        --data data/Gait3D-kprpe-pkl --partition datasets/Gait3D/Gait3D.json --out submission/

Steps: build the network from the config's ``model_cfg`` (:func:`kprpe_gait.nets.build_from_model_cfg`),
load the checkpoint strictly (OpenGait's or the compact trainer's, :func:`kprpe_gait.nets.load_weights`),
embed every sequence of the partition's ``TEST_SET`` identities (whole ordered sequences, up to
``evaluator_cfg.sampler.frames_all_limit`` frames, with the side cut of ``evaluator_cfg.transform``),
split them into probes (``PROBE_SET``) and gallery (the rest), and compute the ``(P, G)``
part-averaged distances. When probe identities occur in the gallery (Gait3D's labels are public)
Rank-1/5/10, mAP and mINP are printed and saved as ``metrics.json``. Files written to ``--out``:

* ``grew_submission.csv`` (``grew``): ``videoId,rank1..rank20`` with the labels of the 20 nearest
  gallery sequences (fewer when the gallery is smaller); labels as integers when all are integers;
* ``submission.csv`` and ``submission.zip`` (``challenge``): ``videoID,label``, the nearest gallery
  sequence's label, and the zip archive holding ``submission.csv`` for challenge servers;
* ``distances.npz`` (``npz``): the distance matrix with keys and labels of both sides.

Probes are identified by their ``"id-type-view"`` key (the ``PROBE_SET`` form) in every file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kprpe.config import read_yaml_mapping

from .metrics import METRICS, evaluate_retrieval, gait3d_probe_mask, pairwise_distance, sequence_keys
from .submission import (
    GREW_TOP_K,
    atomic_target,
    nearest_labels,
    write_challenge_csv,
    write_distance_npz,
    write_grew_csv,
)

__all__ = ["FORMATS", "add_arguments", "load_config", "run", "submit"]

FORMATS = ("grew", "challenge", "npz")
#: evaluation transforms whose side cut this command knows (``cutting``; missing/None = OpenGait's default)
_CUT_TRANSFORMS = ("SilJointTransform", "BaseSilCuttingTransform")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="OpenGait-style YAML with a model_cfg section")
    parser.add_argument("--checkpoint", required=True, type=Path, help="weights (OpenGait's or the compact trainer's)")
    parser.add_argument("--data", type=Path, help="OpenGait pickle root (default: data_cfg.dataset_root)")
    parser.add_argument("--partition", type=Path,
                        help="partition JSON with TEST_SET and PROBE_SET (default: evaluator_cfg.partition, "
                             "else data_cfg.dataset_partition)")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, help="folder for the submission files")
    parser.add_argument("--metric", choices=METRICS, help="distance (default: evaluator_cfg.metric, else euc)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--top-k", type=int, default=GREW_TOP_K, help="ranks per probe in the GREW file")
    parser.add_argument("--cut", type=int, default=None,
                        help="columns cut from each side (default: from evaluator_cfg.transform)")  # fmt: skip
    parser.add_argument("--batch-frames", type=int, default=720, help="frames per forward pass at most")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        submit(
            config=args.config,
            checkpoint=args.checkpoint,
            out=args.out,
            data=args.data,
            partition=args.partition,
            metric=args.metric,
            formats=_parse_formats(args.formats),
            device=args.device,
            top_k=args.top_k,
            cut=args.cut,
            batch_frames=args.batch_frames,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"kprpe-gait submit: error: {message}", file=sys.stderr)
        return 1
    return 0


def _parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"--formats takes a comma-separated subset of {list(FORMATS)}, got {text!r}")
    return formats


def load_config(path: str | Path) -> dict[str, Any]:
    """An OpenGait-style YAML; it must hold a ``model_cfg`` mapping."""
    cfg = read_yaml_mapping(path, "config file")
    if not isinstance(cfg.get("model_cfg"), Mapping):
        raise ValueError(f"config {path} has no model_cfg section (the network to build)")
    return cfg


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = cfg.get(name) or {}
    if not isinstance(value, Mapping):
        raise TypeError(f"config section {name} must be a mapping, got {type(value).__name__}")
    return value


def _eval_cut(evaluator_cfg: Mapping[str, Any]) -> int | None:
    """Side cut of the config's evaluation transform (``None``: OpenGait's ``W // 64 * 10``)."""
    transforms = evaluator_cfg.get("transform")
    if transforms is None:
        return None
    entries = transforms if isinstance(transforms, list) else [transforms]
    for entry in entries:
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        if kind in _CUT_TRANSFORMS:
            return entry.get("cutting")
        if kind == "BaseSilTransform":
            return 0
    raise ValueError(f"cannot tell the side cut from evaluator_cfg.transform {transforms!r} "
                     f"(known: {list(_CUT_TRANSFORMS)}, BaseSilTransform); pass --cut")  # fmt: skip


def _read_test_partition(path: Path) -> tuple[list[str], list[str]]:
    """``(TEST_SET identities, PROBE_SET keys)`` of a partition JSON."""
    if not path.is_file():
        raise FileNotFoundError(f"no partition file at {path}")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"partition file {path} is not valid JSON: {err}") from err
    missing = [k for k in ("TEST_SET", "PROBE_SET") if not isinstance(content, Mapping) or k not in content]
    if missing:
        raise ValueError(f"partition file {path} has no {' / '.join(missing)} (submissions need the test "
                         "identities and the probe 'id-type-view' keys)")  # fmt: skip
    test_ids, probes = [str(i) for i in content["TEST_SET"]], [str(p) for p in content["PROBE_SET"]]
    if not test_ids or not probes:
        raise ValueError(f"TEST_SET and PROBE_SET of {path} must not be empty")
    return test_ids, probes


def _check_probes_present(root: Path, test_ids: Sequence[str], probes: Sequence[str]) -> None:
    """Fail before any feature is computed when a probe sequence folder is not under ``root``."""
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {root}")
    absent_ids = [i for i in test_ids if not (root / i).is_dir()]
    if absent_ids:
        raise ValueError(f"{len(absent_ids)} TEST_SET identities have no folder under {root}: {absent_ids[:5]}")
    present = {
        f"{identity}-{t.name}-{v.name}"
        for identity in test_ids
        for t in (root / identity).iterdir() if t.is_dir()
        for v in t.iterdir() if v.is_dir()
    }  # fmt: skip
    absent = [p for p in probes if p not in present]
    if absent:
        raise ValueError(f"{len(absent)} PROBE_SET sequences are not in the data under {root} (or not in TEST_SET): "
                         f"{absent[:5]}")  # fmt: skip


def _resolve(value: Path | None, cfg_value: Any, what: str) -> Path:
    if value is not None:
        return value
    if cfg_value is None:
        raise ValueError(f"no {what}: pass it on the command line or set it in the config")
    return Path(str(cfg_value))


def submit(
    config: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    data: str | Path | None = None,
    partition: str | Path | None = None,
    metric: str | None = None,
    formats: Sequence[str] = FORMATS,
    device: str | None = None,
    top_k: int = GREW_TOP_K,
    cut: int | None = None,
    batch_frames: int = 720,
    progress: bool = True,
) -> dict[str, Any]:
    """Everything ``kprpe-gait submit`` does (see the module docstring); arguments as its options.

    Returns:
        ``{"metrics": dict | None, "files": {format: [paths]}, "num_probes": P, "num_gallery": G}``.
    """
    import torch

    from kprpe_gait.nets import build_from_model_cfg, load_weights
    from kprpe_gait.train import extract_features

    cfg = load_config(config)
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    data_cfg, evaluator_cfg = _section(cfg, "data_cfg"), _section(cfg, "evaluator_cfg")
    data_root = _resolve(None if data is None else Path(data), data_cfg.get("dataset_root"), "--data (pickle root)")
    partition_path = _resolve(None if partition is None else Path(partition),
                              evaluator_cfg.get("partition", data_cfg.get("dataset_partition")), "--partition")  # fmt: skip
    metric = metric or evaluator_cfg.get("metric", "euc")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    formats = tuple(formats)
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {formats}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k (--top-k) must be a positive integer, got {top_k!r}")
    cut = _eval_cut(evaluator_cfg) if cut is None else cut
    max_frames = int(_section(evaluator_cfg, "sampler").get("frames_all_limit", 720))
    test_ids, probe_set = _read_test_partition(partition_path)
    _check_probes_present(data_root, test_ids, probe_set)

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net = build_from_model_cfg(cfg["model_cfg"])
    load_weights(net, checkpoint)
    net.to(device)
    features = extract_features(net, data_root, ids=test_ids, max_frames=max_frames, batch_frames=batch_frames,
                                cut=cut, device=device, progress=progress)  # fmt: skip

    keys = sequence_keys(features["labels"], features["types"], features["views"])
    is_probe = gait3d_probe_mask(keys, probe_set)
    if is_probe.all():
        raise ValueError(f"every test sequence is listed in PROBE_SET of {partition_path}: the gallery is empty")
    labels, keys_arr, emb = np.asarray(features["labels"]), np.asarray(keys), features["embeddings"]
    probe_labels, gallery_labels = labels[is_probe], labels[~is_probe]
    dist = pairwise_distance(emb[is_probe], emb[~is_probe], metric, device=device)  # (P, G)
    print(f"{int(is_probe.sum())} probes, {int((~is_probe).sum())} gallery sequences, metric {metric}, cut {cut}")

    out = Path(out)
    written: dict[str, list[Path]] = {}
    metrics = None
    matched = np.isin(probe_labels, gallery_labels)
    if matched.any():
        if not matched.all():
            print(f"{int((~matched).sum())} probes have no gallery sequence of their identity: left out of the metrics")
        metrics = evaluate_retrieval(dist, probe_labels, gallery_labels)
        print("  ".join(f"{name} {value:.2f}" for name, value in metrics.items()))
        with atomic_target(out / "metrics.json") as tmp:
            tmp.write_text(json.dumps(dict(metrics, metric=metric, checkpoint=str(checkpoint)), indent=2) + "\n")
        written["metrics"] = [out / "metrics.json"]
    else:
        print("no probe identity occurs in the gallery (unlabelled probes): no metrics")

    probe_keys = keys_arr[is_probe]
    if "grew" in formats:
        k = min(top_k, len(gallery_labels))
        if k < top_k:
            print(f"the gallery holds {len(gallery_labels)} sequences: the GREW file ranks {k}, not {top_k}")
        integer = all(str(label).isdigit() for label in gallery_labels)
        written["grew"] = [write_grew_csv(out / "grew_submission.csv", probe_keys, gallery_labels, dist, top_k=k,
                                          label_format="int" if integer else "raw")]  # fmt: skip
    if "challenge" in formats:
        predicted = nearest_labels(dist, gallery_labels)
        written["challenge"] = [write_challenge_csv(out / name, probe_keys, predicted)
                                for name in ("submission.csv", "submission.zip")]  # fmt: skip
    if "npz" in formats:
        written["npz"] = [write_distance_npz(out / "distances.npz", dist, probe_keys, keys_arr[~is_probe],
                                             probe_labels, gallery_labels, metric)]  # fmt: skip
    for paths in written.values():
        for path in paths:
            print(f"wrote {path}")
    return {
        "metrics": metrics,
        "files": written,
        "num_probes": int(is_probe.sum()),
        "num_gallery": int((~is_probe).sum()),
    }
