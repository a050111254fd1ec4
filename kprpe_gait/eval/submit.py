"""``kprpe-gait submit``: rank a test set with a checkpoint, print its metrics, write leaderboard files.

::

    kprpe-gait submit --config CONFIG --checkpoint ckpt.pt --data GREW-pkl \\
        --partition OpenGait/datasets/GREW/GREW.json --out sub/        # -> sub/submission.zip for GREW

Steps: build the network from the config's ``model_cfg`` (:func:`kprpe_gait.models.build_from_model_cfg`),
load the checkpoint strictly (OpenGait's or the compact trainer's, :func:`kprpe_gait.models.load_weights`),
embed every sequence of the partition's ``TEST_SET`` identities (whole ordered sequences, up to
``evaluator_cfg.sampler.frames_all_limit`` frames, with the side cut of ``evaluator_cfg.transform``;
joints only for KP-RPE networks, so silhouette-only data needs no ``01-joints.pkl``), split them into
probes and gallery by the benchmark's rule, compute the ``(P, G)`` part-averaged distances (re-ranked
with ``--rerank``) and write the files the benchmark's server takes.

Benchmarks (``--benchmark``; ``auto``: from ``evaluator_cfg.eval_func``, else ``data_cfg.dataset_name``,
else ``gait3d`` when the partition has a ``PROBE_SET``), with OpenGait's own partition files as they are:

* ``grew`` (``GREW.json``, OpenGait's ``GREW_submission``): gallery = sequences of type ``01`` / ``02``,
  probes = type ``03`` (``probe/03/<videoId>/``). ``submission.csv`` (``videoId,rank1..rank20``,
  integer labels) and ``submission.zip`` holding it. ``--grew-form template`` writes the shape of
  GREW-Benchmark's template instead (22nd column ``rank1_distractor``, CRLF line ends).
* ``hid`` / ``mgr`` (``HID.json``, Gait3D-Benchmark's ``MGR2024_phase*.json``; OpenGait's
  ``HID_submission``, Gait3D-Benchmark's ``MGR_submission``): probes = the identity ``probe``, gallery =
  every other test sequence. ``submission.csv`` (``videoID,label``, the nearest gallery sequence's
  label as stored) and ``submission.zip``.
* ``gait3d`` (``Gait3D.json``): probes = ``PROBE_SET`` (``"id-type-view"`` keys), gallery = the other test
  sequences. Gait3D has no submission server (its test labels are public): the result is
  ``metrics.json`` (Rank-1/5/10, mAP, mINP as ``evaluate_Gait3D``); ``grew_submission.csv``,
  ``submission.csv`` / ``.zip`` are written too, keyed by ``"id-type-view"``.

Probe ids of GREW, HID and MGR rows are the sequence's ``view`` folder (what OpenGait's writers write;
``--probe-id type`` takes the folder above, e.g. for ``probe/<videoID>/default`` layouts). ``--formats``
chooses among the benchmark's files (``npz``: ``distances.npz``, the full matrix with keys and labels).
Whenever a probe's identity occurs in the gallery, Rank-k, mAP and mINP are printed and saved as
``metrics.json``. Sequences are ordered by ``(id, type, view)``, OpenGait's order for sorted ``TEST_SET``
lists (GREW.json, HID.json, MGR's); ranking ties keep gallery order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kprpe.config import read_yaml_mapping

from .metrics import METRICS, evaluate_retrieval, pairwise_distance, sequence_keys
from .rerank import k_reciprocal_rerank
from .submission import (
    GREW_FORMS,
    GREW_TOP_K,
    atomic_target,
    nearest_labels,
    write_challenge_csv,
    write_distance_npz,
    write_grew_csv,
)

__all__ = ["BENCHMARKS", "FORMATS", "UPLOAD_STEPS", "add_arguments", "load_config", "run", "submit"]

FORMATS = ("grew", "challenge", "npz")
BENCHMARKS = ("gait3d", "grew", "hid", "mgr")
PROBE_IDS = ("view", "type")
#: evaluation transforms whose side cut this command knows (``cutting``; missing/None = OpenGait's default)
_CUT_TRANSFORMS = ("SilJointTransform", "BaseSilCuttingTransform")
#: OpenGait evaluator / dataset names -> benchmark (``--benchmark auto``)
_EVAL_FUNCS = {
    "GREW_submission": "grew", "HID_submission": "hid", "MGR_submission": "mgr",
    "evaluate_Gait3D": "gait3d", "evaluate_Gait3D_KPRPE": "gait3d",
}  # fmt: skip
_DATASET_NAMES = {"GREW": "grew", "HID": "hid", "MGR": "mgr", "Gait3D": "gait3d"}
#: the label of the probe folder in OpenGait's GREW / HID / MGR partitions
PROBE_LABEL = "probe"
GREW_GALLERY_TYPES = ("01", "02")
GREW_PROBE_TYPES = ("03",)
#: the leaderboard format of each server set; the other one is refused
_SERVER_FORMAT = {"grew": "grew", "hid": "challenge", "mgr": "challenge"}
#: what to do with the files, printed at the end
UPLOAD_STEPS = {
    "grew": "GREW: upload {zip} on GREW's CodaLab competition (https://codalab.lisn.upsaclay.fr/competitions/3409, "
            "Participate > Submit); the server scores Rank-1/5/10/20 of the videoId rows.",
    "hid": "HID: upload {zip} on the CodaLab competition of this year's HID challenge (HID 2025: "
           "https://codalab.lisn.upsaclay.fr/competitions/21845, Participate > Submit).",
    "mgr": "MGR'24: upload {zip} on the CodaLab competition of your track (Track 1, parsing: "
           "https://codalab.lisn.upsaclay.fr/competitions/20040, Participate > Submit).",
    "gait3d": "Gait3D: no submission server (the test labels are public); report {metrics}. "
              "MGR'24 (on Gait3D data) takes submission.zip from --benchmark mgr with its own partition.",
}  # fmt: skip


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


def _read_partition(path: Path) -> dict[str, list[str]]:
    """The lists of a partition JSON as strings; ``TEST_SET`` must be there and non-empty."""
    if not path.is_file():
        raise FileNotFoundError(f"no partition file at {path}")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"partition file {path} is not valid JSON: {err}") from err
    if not isinstance(content, Mapping) or not isinstance(content.get("TEST_SET"), list) or not content["TEST_SET"]:
        raise ValueError(f"partition file {path} has no TEST_SET list (submissions need the test identities)")
    return {key: [str(v) for v in value] for key, value in content.items() if isinstance(value, list)}


def _choose_benchmark(
    benchmark: str, evaluator_cfg: Mapping[str, Any], data_cfg: Mapping[str, Any], partition: Mapping[str, list[str]]
) -> str:
    """``benchmark`` unless ``auto``: then from ``eval_func``, ``dataset_name``, or a ``PROBE_SET`` (Gait3D)."""
    if benchmark != "auto":
        if benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark must be 'auto' or one of {BENCHMARKS}, got {benchmark!r}")
        return benchmark
    for name, table in ((evaluator_cfg.get("eval_func"), _EVAL_FUNCS), (data_cfg.get("dataset_name"), _DATASET_NAMES)):
        if name in table:
            return table[name]
    if "PROBE_SET" in partition:
        return "gait3d"
    raise ValueError("cannot tell the benchmark: the config's evaluator_cfg.eval_func / data_cfg.dataset_name are "
                     f"not among {sorted(_EVAL_FUNCS)} / {sorted(_DATASET_NAMES)} and the partition has no "
                     "PROBE_SET; pass --benchmark grew, hid or mgr")  # fmt: skip


def _check_partition(partition: Mapping[str, list[str]], benchmark: str, path: Path) -> None:
    """The lists the benchmark's probe rule needs: ``PROBE_SET`` (Gait3D), a ``probe`` identity (the others)."""
    if benchmark == "gait3d":
        if not partition.get("PROBE_SET"):
            raise ValueError(f"partition file {path} has no PROBE_SET (Gait3D probes are its 'id-type-view' keys); "
                             f"for a partition whose TEST_SET lists {PROBE_LABEL!r} pass --benchmark grew, hid "
                             "or mgr")  # fmt: skip
    elif PROBE_LABEL not in partition["TEST_SET"]:
        raise ValueError(f"TEST_SET of {path} has no {PROBE_LABEL!r} entry: OpenGait's {benchmark.upper()} "
                         f"partition lists the probe folder <data>/{PROBE_LABEL}/ as an identity")  # fmt: skip


def _check_data(root: Path, test_ids: Sequence[str], probe_set: Sequence[str] | None) -> None:
    """Fail before any feature is computed when a test identity or a ``PROBE_SET`` sequence has no folder."""
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {root}")
    absent_ids = [i for i in test_ids if not (root / i).is_dir()]
    if absent_ids:
        raise ValueError(f"{len(absent_ids)} TEST_SET identities have no folder under {root}: {absent_ids[:5]}")
    if probe_set is None:
        return
    present = {
        f"{identity}-{t.name}-{v.name}"
        for identity in test_ids
        for t in (root / identity).iterdir() if t.is_dir()
        for v in t.iterdir() if v.is_dir()
    }  # fmt: skip
    absent = [p for p in probe_set if p not in present]
    if absent:
        raise ValueError(f"{len(absent)} PROBE_SET sequences are not in the data under {root} (or not in TEST_SET): "
                         f"{absent[:5]}")  # fmt: skip


def split_probes(
    benchmark: str, labels: np.ndarray, types: np.ndarray, views: np.ndarray, probe_set: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(is_probe, is_gallery)`` masks by the benchmark's rule (OpenGait's evaluators).

    GREW: gallery = types ``01`` / ``02``, probes = type ``03`` (other types in neither); HID / MGR:
    probes = label ``probe``, gallery = the rest; Gait3D: probes = ``"id-type-view"`` in ``probe_set``.
    """
    if benchmark == "grew":
        is_probe, is_gallery = np.isin(types, GREW_PROBE_TYPES), np.isin(types, GREW_GALLERY_TYPES)
    elif benchmark in ("hid", "mgr"):
        is_probe = labels == PROBE_LABEL
        is_gallery = ~is_probe
    elif benchmark == "gait3d":
        listed = set(probe_set or ())
        is_probe = np.array([k in listed for k in sequence_keys(labels, types, views)], dtype=bool)
        is_gallery = ~is_probe
    else:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    rule = {"grew": "of type 03 / of type 01 or 02", "gait3d": "in PROBE_SET / not in PROBE_SET"}.get(
        benchmark, f"labelled {PROBE_LABEL!r} / with another label"
    )
    if not is_probe.any() or not is_gallery.any():
        raise ValueError(f"{benchmark}: {int(is_probe.sum())} probes and {int(is_gallery.sum())} gallery sequences "
                         f"(sequences {rule}) among the test sequences: both sides are needed")  # fmt: skip
    return is_probe, is_gallery


def probe_ids(benchmark: str, keys: np.ndarray, types: np.ndarray, views: np.ndarray, probe_id: str) -> np.ndarray:
    """The probe column of the files: ``"id-type-view"`` keys for Gait3D, else the ``view`` (or ``type``) folder.

    Server rows must name distinct videos: duplicate ids are an error that names them.
    """
    if benchmark == "gait3d":
        return keys
    if probe_id not in PROBE_IDS:
        raise ValueError(f"probe_id must be one of {PROBE_IDS}, got {probe_id!r}")
    ids = views if probe_id == "view" else types
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        other = "type" if probe_id == "view" else "view"
        raise ValueError(f"{int((counts > 1).sum())} probe ids occur more than once as the {probe_id} folder "
                         f"(e.g. {values[counts > 1][:3].tolist()}): the server could not tell the videos apart; "
                         f"is the video id the {other} folder (probe/<type>/<view>/)? pass --probe-id {other}")  # fmt: skip
    return ids


def _choose_formats(formats: Sequence[str] | None, benchmark: str) -> tuple[str, ...]:
    """The files to write: the benchmark's own by default; a server set refuses the other server's format."""
    if formats is None:
        return FORMATS if benchmark == "gait3d" else (_SERVER_FORMAT[benchmark], "npz")
    formats = tuple(formats)
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {formats}")
    if benchmark != "gait3d":
        wrong = [f for f in formats if f not in (_SERVER_FORMAT[benchmark], "npz")]
        if wrong:
            raise ValueError(f"the {benchmark.upper()} server takes the {_SERVER_FORMAT[benchmark]!r} format "
                             f"(submission.csv in submission.zip), not {wrong}")  # fmt: skip
    return formats


def _resolve(value: Path | None, cfg_value: Any, what: str) -> Path:
    if value is not None:
        return value
    if cfg_value is None:
        raise ValueError(f"no {what}: pass it on the command line or set it in the config")
    return Path(str(cfg_value))


def _embed(cfg: Mapping[str, Any], checkpoint: Path, data_root: Path, test_ids: Sequence[str], device: str,
           cut: int | None, max_frames: int, batch_frames: int, progress: bool) -> dict[str, Any]:  # fmt: skip
    """Features of every test sequence with the checkpoint's network (joints only for KP-RPE networks)."""
    from kprpe_gait.models import build_from_model_cfg, load_weights
    from kprpe_gait.train import extract_features

    net = build_from_model_cfg(cfg["model_cfg"])
    load_weights(net, checkpoint)
    net.to(device)
    return extract_features(net, data_root, ids=test_ids, max_frames=max_frames, batch_frames=batch_frames,
                            cut=cut, device=device, progress=progress)  # fmt: skip


def ranking_distances(
    probe_emb: np.ndarray, gallery_emb: np.ndarray, metric: str, rerank: bool = False, device: str | None = None
) -> np.ndarray:
    """``(P, G)`` distances the files rank by: OpenGait's ``cuda_dist``, or with ``rerank`` its
    ``re_ranking`` (k1 = k2 = 6, lambda = 0.3) of the distances between all ``P + G`` sequences."""
    if not rerank:
        return np.asarray(pairwise_distance(probe_emb, gallery_emb, metric, device=device))
    everything = np.concatenate([probe_emb, gallery_emb])
    return k_reciprocal_rerank(np.asarray(pairwise_distance(everything, everything, metric, device=device)),
                               len(probe_emb))  # fmt: skip


def _write_metrics(out: Path, dist: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray,
                   metric: str, checkpoint: Path) -> dict[str, float] | None:  # fmt: skip
    """Rank-k, mAP, mINP of the probes whose identity is in the gallery (printed, ``metrics.json``), else None."""
    matched = np.isin(probe_labels, gallery_labels)
    if not matched.any():
        print("no probe identity occurs in the gallery (unlabelled probes): no metrics")
        return None
    if not matched.all():
        print(f"{int((~matched).sum())} probes have no gallery sequence of their identity: left out of the metrics")
    metrics = evaluate_retrieval(dist, probe_labels, gallery_labels)
    print("  ".join(f"{name} {value:.2f}" for name, value in metrics.items()))
    with atomic_target(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(dict(metrics, metric=metric, checkpoint=str(checkpoint)), indent=2) + "\n")
    return metrics


def _write_grew(out: Path, benchmark: str, ids: np.ndarray, gallery_labels: np.ndarray, dist: np.ndarray,
                top_k: int, form: str) -> list[Path]:  # fmt: skip
    k = min(top_k, len(gallery_labels))
    if k < top_k:
        print(f"the gallery holds {len(gallery_labels)} sequences: the GREW file ranks {k}, not {top_k}")
    integer = all(str(label).isdigit() for label in gallery_labels)
    names = ("grew_submission.csv",) if benchmark == "gait3d" else ("submission.csv", "submission.zip")
    return [write_grew_csv(out / name, ids, gallery_labels, dist, top_k=k, label_format="int" if integer else "raw",
                           form=form) for name in names]  # fmt: skip


def _print_files_and_upload(benchmark: str, written: Mapping[str, list[Path]], out: Path) -> None:
    for paths in written.values():
        for path in paths:
            print(f"wrote {path}")
    upload = UPLOAD_STEPS[benchmark].format(zip=out / "submission.zip", metrics=out / "metrics.json")
    if benchmark != "gait3d" and not any(p.suffix == ".zip" for paths in written.values() for p in paths):
        upload = f"{benchmark.upper()}: no leaderboard file written (--formats); the server takes submission.zip"
    print(f"next: {upload}")


def submit(
    config: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    data: str | Path | None = None,
    partition: str | Path | None = None,
    metric: str | None = None,
    formats: Sequence[str] | None = None,
    device: str | None = None,
    top_k: int = GREW_TOP_K,
    cut: int | None = None,
    batch_frames: int = 720,
    progress: bool = True,
    benchmark: str = "auto",
    rerank: bool = False,
    grew_form: str = "opengait",
    probe_id: str = "view",
) -> dict[str, Any]:
    """Everything ``kprpe-gait submit`` does (see the module docstring); arguments as its options.

    Returns:
        ``{"benchmark": str, "metrics": dict | None, "files": {format: [paths]}, "num_probes": P,
        "num_gallery": G}``.
    """
    import torch

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
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k (--top-k) must be a positive integer, got {top_k!r}")
    if grew_form not in GREW_FORMS:
        raise ValueError(f"grew_form (--grew-form) must be one of {GREW_FORMS}, got {grew_form!r}")
    cut = _eval_cut(evaluator_cfg) if cut is None else cut
    max_frames = int(_section(evaluator_cfg, "sampler").get("frames_all_limit", 720))
    lists = _read_partition(partition_path)
    benchmark = _choose_benchmark(benchmark, evaluator_cfg, data_cfg, lists)
    formats = _choose_formats(formats, benchmark)
    _check_partition(lists, benchmark, partition_path)
    probe_set = lists["PROBE_SET"] if benchmark == "gait3d" else None
    _check_data(data_root, lists["TEST_SET"], probe_set)

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    features = _embed(cfg, checkpoint, data_root, lists["TEST_SET"], device, cut, max_frames, batch_frames, progress)
    labels, types, views = (np.asarray(features[k]) for k in ("labels", "types", "views"))
    is_probe, is_gallery = split_probes(benchmark, labels, types, views, probe_set)
    keys = np.asarray(sequence_keys(labels, types, views))
    ids = probe_ids(benchmark, keys[is_probe], types[is_probe], views[is_probe], probe_id)
    emb = features["embeddings"]
    dist = ranking_distances(emb[is_probe], emb[is_gallery], metric, rerank=rerank, device=device)  # (P, G)
    described = f"{metric}, k-reciprocal re-ranked" if rerank else metric
    print(f"{benchmark}: {int(is_probe.sum())} probes, {int(is_gallery.sum())} gallery sequences, "
          f"metric {described}, cut {cut}")  # fmt: skip

    out = Path(out)
    probe_labels, gallery_labels = labels[is_probe], labels[is_gallery]
    written: dict[str, list[Path]] = {}
    metrics = _write_metrics(out, dist, probe_labels, gallery_labels, described, checkpoint)
    if metrics is not None:
        written["metrics"] = [out / "metrics.json"]
    if "grew" in formats:
        written["grew"] = _write_grew(out, benchmark, ids, gallery_labels, dist, top_k, grew_form)
    if "challenge" in formats:
        predicted = nearest_labels(dist, gallery_labels)
        written["challenge"] = [write_challenge_csv(out / name, ids, predicted)
                                for name in ("submission.csv", "submission.zip")]  # fmt: skip
    if "npz" in formats:
        written["npz"] = [write_distance_npz(out / "distances.npz", dist, keys[is_probe], keys[is_gallery],
                                             probe_labels, gallery_labels, described)]  # fmt: skip
    _print_files_and_upload(benchmark, written, out)
    return {
        "benchmark": benchmark,
        "metrics": metrics,
        "files": written,
        "num_probes": int(is_probe.sum()),
        "num_gallery": int(is_gallery.sum()),
    }


# The command-line glue is kprpe_gait.commands.submit (one module per sub-command, as face.commands); these
# names stay importable from here for code written before the move.
from kprpe_gait.commands import submit as _cli  # noqa: E402

add_arguments, run = _cli.add_arguments, _cli.run
