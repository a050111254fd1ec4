"""Retrieval metrics of gait recognition: part-averaged distances, Rank-k, mAP, mINP, Gait3D's protocol.

Semantics follow OpenGait (``evaluation/metric.py``: ``cuda_dist``, ``evaluate_rank``;
``evaluation/evaluator.py``: ``evaluate_Gait3D``), without its CUDA requirement and small-gallery crash:

* **distance** (:func:`pairwise_distance`): embeddings ``(N, c, p)`` are compared part by part and
  the ``p`` part distances are averaged. ``"euc"`` is the plain Euclidean distance (square root
  taken, per part, *before* averaging; tiny negative rounding errors clamped to 0); ``"cos"`` is
  ``1 - mean_p cos(x_p, y_p)`` with every part vector L2-normalised over its ``c`` channels.
* **ranking**: each probe sorts the gallery by increasing distance. Ties keep gallery order (stable
  sort). OpenGait uses numpy's default, unstable ``argsort``, whose order of exactly tied items is
  unspecified (it depends on numpy's version and CPU); without exact ties both orders are the same.
* **Rank-k**: share of probes with a true match among their ``k`` nearest gallery items. For ``k``
  larger than the gallery size ``G`` the value at ``G`` is reported (OpenGait raises IndexError when
  ``G < 10``); with at least one true match per counted probe that value is 100 %.
* **AP**: mean over the true matches of the precision at their rank; **INP** (Ye et al., 2021):
  ``number of true matches / rank of the last true match``, the share of the ranked list a user
  has to inspect that is actually correct.
* **probes without any true match in the gallery** are left out of every metric, as in OpenGait's
  ``evaluate_rank``; a warning gives their number, and a :class:`ValueError` is raised when no
  probe is left.

All sums run in float64, so Rank-k may differ from OpenGait's float32 CMC by ~1e-5 percentage points.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_GAIT3D_PARTITION",
    "RetrievalScores",
    "evaluate_gait3d",
    "evaluate_retrieval",
    "gait3d_probe_mask",
    "pairwise_distance",
    "read_probe_set",
    "retrieval_scores",
    "sequence_keys",
]

Metric = Literal["euc", "cos"]
ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)

#: where OpenGait's ``evaluate_Gait3D`` reads the partition (relative to its working directory)
DEFAULT_GAIT3D_PARTITION = "./datasets/Gait3D/Gait3D.json"
METRICS = ("euc", "cos")
_PROBE_CHUNK = 512  # probes ranked at once: bounds the (chunk, G) int64 work arrays

# A child of OpenGait's logger: inside an OpenGait run its handlers (console, log file) print our
# lines exactly like its message manager's log_info, which is a thin wrapper around that logger.
logger = logging.getLogger("opengait.kprpe_gait.eval")


def _embeddings(value: Any, name: str, device: torch.device | str | None) -> torch.Tensor:
    """``(N, c, p)`` (or ``(N, c)`` = one part) floating tensor on ``device``, checked finite."""
    t = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
    if t.ndim == 2:
        t = t.unsqueeze(-1)
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (N, channels, parts) or (N, channels), got {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    # half precision is upcast: squared norms of 256-channel embeddings overflow float16 quickly
    t = t.to(device=device, dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} holds NaN or inf values (rows {bad}...)")
    return t


def pairwise_distance(
    x: ArrayOrTensor, y: ArrayOrTensor, metric: Metric = "euc", device: torch.device | str | None = None
) -> ArrayOrTensor:
    """Part-averaged distances between two sets of embeddings (OpenGait's ``cuda_dist``, on any device).

    Args:
        x: ``(P, c, p)`` probe embeddings (numpy or torch; ``(P, c)`` counts as one part).
        y: ``(G, c, p)`` gallery embeddings.
        metric: ``"euc"`` (mean over parts of the Euclidean distance) or ``"cos"``
            (``1 -`` mean over parts of the cosine similarity).
        device: where to compute (default: ``x``'s device, CPU for numpy input).

    Returns:
        ``(P, G)`` distances, a numpy array when ``x`` is one, else a tensor on the compute device;
        float64 for float64 input, float32 otherwise (float16 / bfloat16 input is upcast).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if device is None and torch.is_tensor(x):
        device = x.device
    xt, yt = _embeddings(x, "probe embeddings", device), _embeddings(y, "gallery embeddings", device)
    if xt.shape[1:] != yt.shape[1:]:
        raise ValueError(
            f"probe and gallery embeddings differ in (channels, parts): {tuple(xt.shape[1:])} vs {tuple(yt.shape[1:])}"
        )
    dtype = torch.promote_types(xt.dtype, yt.dtype)
    xt, yt = xt.to(dtype), yt.to(dtype)
    if metric == "cos":
        xt, yt = F.normalize(xt, p=2, dim=1), F.normalize(yt, p=2, dim=1)
    num_parts = xt.shape[2]
    dist = xt.new_zeros(xt.shape[0], yt.shape[0])  # (P, G)
    # one (P, c) x (c, G) product per part, summed in part order like cuda_dist: same numbers
    for i in range(num_parts):
        xp, yp = xt[:, :, i], yt[:, :, i]  # (P, c), (G, c)
        if metric == "cos":
            dist += xp @ yp.T
        else:
            squared = xp.pow(2).sum(1).unsqueeze(1) + yp.pow(2).sum(1).unsqueeze(0) - 2 * (xp @ yp.T)
            dist += F.relu(squared).sqrt()
    dist = 1 - dist / num_parts if metric == "cos" else dist / num_parts
    return dist.cpu().numpy() if isinstance(x, np.ndarray) else dist


@dataclass(frozen=True)
class RetrievalScores:
    """Per-probe retrieval results (see the module docstring for the definitions).

    Attributes:
        first_hit: ``(P,)`` int64, 1-based rank of the first true match; 0 when there is none.
        num_matches: ``(P,)`` int64, true matches of the probe in the gallery.
        ap: ``(P,)`` float64 average precision in ``[0, 1]``; NaN without a true match.
        inp: ``(P,)`` float64 inverse negative penalty in ``[0, 1]``; NaN without a true match.
        gallery_size: ``G``.
    """

    first_hit: np.ndarray
    num_matches: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    gallery_size: int

    @property
    def valid(self) -> np.ndarray:
        """``(P,)`` bool: probes with at least one true match (the ones the metrics count)."""
        return self.num_matches > 0

    def rank_k(self, k: int) -> float:
        """Share (in ``[0, 1]``) of valid probes with a true match within the ``k`` nearest items.

        ``k`` above the gallery size gives the value at the gallery size.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ranks must be positive integers, got {k!r}")
        valid = self.valid
        return float(np.mean(self.first_hit[valid] <= min(int(k), self.gallery_size)))


def _labels(values: Any, name: str, expected: int) -> np.ndarray:
    labels = np.asarray(values if not torch.is_tensor(values) else values.cpu().numpy())
    if labels.ndim != 1 or len(labels) != expected:
        raise ValueError(f"{name} must be a flat sequence of {expected} labels (one per row/column of dist), "
                         f"got shape {labels.shape}")  # fmt: skip
    return labels


def _distance_matrix(dist: Any) -> np.ndarray:
    d = dist.detach().cpu().numpy() if torch.is_tensor(dist) else np.asarray(dist)
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"dist must be a non-empty (probes, gallery) matrix, got shape {d.shape}")
    if not np.issubdtype(d.dtype, np.number) or not np.isfinite(d).all():
        raise ValueError("dist must hold finite numbers (NaN or inf found, or a non-numeric dtype)")
    return d


def retrieval_scores(dist: Any, probe_labels: Sequence[Any], gallery_labels: Sequence[Any]) -> RetrievalScores:
    """First-hit rank, AP and INP of every probe.

    Args:
        dist: ``(P, G)`` distances (numpy or torch), smaller = more similar.
        probe_labels: ``P`` identities (strings or integers).
        gallery_labels: ``G`` identities.
    """
    d = _distance_matrix(dist)
    num_p, num_g = d.shape
    p_lbls = _labels(probe_labels, "probe_labels", num_p)
    g_lbls = _labels(gallery_labels, "gallery_labels", num_g)
    first_hit = np.zeros(num_p, dtype=np.int64)
    num_matches = np.zeros(num_p, dtype=np.int64)
    ap = np.full(num_p, np.nan)
    inp = np.full(num_p, np.nan)
    positions = np.arange(1, num_g + 1, dtype=np.float64)  # 1-based ranks
    for start in range(0, num_p, _PROBE_CHUNK):
        rows = slice(start, min(start + _PROBE_CHUNK, num_p))
        order = np.argsort(d[rows], axis=1, kind="stable")  # (c, G)
        matches = g_lbls[order] == p_lbls[rows, None]  # (c, G) bool, True = same identity
        n_rel = matches.sum(1)
        hits = np.cumsum(matches, axis=1)  # (c, G) true matches within the first k
        has = n_rel > 0
        last = num_g - np.argmax(matches[:, ::-1], axis=1)  # 1-based rank of the last true match
        with np.errstate(invalid="ignore", divide="ignore"):
            ap_chunk = (hits / positions * matches).sum(1) / n_rel
            inp_chunk = n_rel / last
        num_matches[rows] = n_rel
        first_hit[rows] = np.where(has, np.argmax(matches, axis=1) + 1, 0)
        ap[rows] = np.where(has, ap_chunk, np.nan)
        inp[rows] = np.where(has, inp_chunk, np.nan)
    return RetrievalScores(first_hit=first_hit, num_matches=num_matches, ap=ap, inp=inp, gallery_size=num_g)


def evaluate_retrieval(
    dist: Any, probe_labels: Sequence[Any], gallery_labels: Sequence[Any], ranks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Rank-k, mAP and mINP in percent (OpenGait's ``evaluate_rank`` numbers, any gallery size).

    Args:
        dist: ``(P, G)`` distances, smaller = more similar.
        probe_labels: ``P`` identities.
        gallery_labels: ``G`` identities.
        ranks: the ``k`` of the Rank-k entries; a ``k`` above ``G`` reports the value at ``G``.

    Returns:
        ``{"Rank-1": ..., "Rank-5": ..., "Rank-10": ..., "mAP": ..., "mINP": ...}`` in percent, over
        the probes that have a true match in the gallery (others are skipped with a warning).

    Raises:
        ValueError: bad shapes or values, or no probe has a true match in the gallery.
        TypeError: ``ranks`` is a single number.
    """
    if isinstance(ranks, (int, np.integer)):
        raise TypeError(f"ranks must be a sequence of positive integers, got {ranks!r}")
    scores = retrieval_scores(dist, probe_labels, gallery_labels)
    valid = scores.valid
    if not valid.any():
        raise ValueError("no probe identity appears in the gallery: retrieval metrics are undefined")
    skipped = int((~valid).sum())
    if skipped:
        logger.warning("%d of %d probes have no true match in the gallery and are left out of the metrics",
                       skipped, len(valid))  # fmt: skip
    results = {f"Rank-{int(k)}": 100.0 * scores.rank_k(k) for k in ranks}
    results["mAP"] = 100.0 * float(np.mean(scores.ap[valid]))
    results["mINP"] = 100.0 * float(np.mean(scores.inp[valid]))
    return results


def sequence_keys(labels: Sequence[str], types: Sequence[str], views: Sequence[str]) -> list[str]:
    """Gait3D's ``"id-type-view"`` key of every sequence (the form of ``PROBE_SET``)."""
    if not len(labels) == len(types) == len(views):
        raise ValueError(f"labels, types and views differ in length: {len(labels)}, {len(types)}, {len(views)}")
    return ["-".join((str(i), str(t), str(v))) for i, t, v in zip(labels, types, views)]


def read_probe_set(partition: str | os.PathLike[str]) -> list[str]:
    """``PROBE_SET`` of a Gait3D-style partition JSON (the probe sequences' ``"id-type-view"`` keys)."""
    path = Path(partition)
    if not path.is_file():
        raise FileNotFoundError(
            f"no partition file at {path} (relative paths are relative to the working directory "
            f"{Path.cwd()}; pass the Gait3D-style JSON with a PROBE_SET, e.g. evaluator_cfg.partition)"
        )
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"partition file {path} is not valid JSON: {err}") from err
    if not isinstance(content, Mapping) or "PROBE_SET" not in content:
        raise ValueError(f"partition file {path} has no PROBE_SET (the list of probe 'id-type-view' keys)")
    probes = content["PROBE_SET"]
    if not isinstance(probes, list) or not probes:
        raise ValueError(f"PROBE_SET of {path} must be a non-empty list of 'id-type-view' strings")
    return [str(p) for p in probes]


def gait3d_probe_mask(keys: Sequence[str], probe_set: Sequence[str]) -> np.ndarray:
    """``(N,)`` bool: which of the sequences ``keys`` are probes (listed in ``probe_set``)."""
    listed = set(probe_set)
    return np.array([k in listed for k in keys], dtype=bool)


def _inference_dict(data: Mapping[str, Any]) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    missing = [k for k in ("embeddings", "labels", "types", "views") if k not in data]
    if missing:
        raise KeyError(f"the inference dict lacks {missing}; OpenGait's evaluators get "
                       "embeddings (N, c, p), labels, types and views")  # fmt: skip
    emb = data["embeddings"]
    emb = emb.detach().cpu().numpy() if torch.is_tensor(emb) else np.asarray(emb)
    labels, types, views = (list(map(str, data[k])) for k in ("labels", "types", "views"))
    if not len(emb) == len(labels) == len(types) == len(views):
        raise ValueError(f"embeddings, labels, types and views must describe the same sequences, got "
                         f"{len(emb)}, {len(labels)}, {len(types)}, {len(views)} entries")  # fmt: skip
    return emb, labels, types, views


def evaluate_gait3d(
    data: Mapping[str, Any],
    dataset_name: str | None = None,
    metric: Metric = "euc",
    partition: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """Gait3D's protocol, with OpenGait's evaluator signature (``evaluate_Gait3D`` without its limits).

    The probes are the sequences whose ``"id-type-view"`` key is in ``PROBE_SET`` of ``partition``;
    every other sequence is the gallery. Registered on OpenGait as ``evaluate_Gait3D_KPRPE`` by
    :mod:`kprpe_gait.opengait.registry` (``evaluator_cfg.partition`` / ``metric`` are passed here).

    Args:
        data: OpenGait's inference dict: ``embeddings`` ``(N, c, p)``, ``labels``, ``types``, ``views``
            (``N`` each).
        dataset_name: the name OpenGait passes (only logged).
        metric: ``"euc"`` or ``"cos"`` (see :func:`pairwise_distance`).
        partition: the partition JSON; ``None``: OpenGait's ``./datasets/Gait3D/Gait3D.json``,
            relative to the working directory (OpenGait's root in its runs).

    Returns:
        ``{"scalar/test_accuracy/Rank-1": ..., ".../Rank-5", ".../Rank-10", ".../mAP", ".../mINP"}``
        in percent (OpenGait's keys, written to TensorBoard by its trainer).
    """
    emb, labels, types, views = _inference_dict(data)
    partition = DEFAULT_GAIT3D_PARTITION if partition is None else partition
    probe_set = read_probe_set(partition)
    probe_mask = gait3d_probe_mask(sequence_keys(labels, types, views), probe_set)
    num_probes = int(probe_mask.sum())
    if num_probes == 0:
        raise ValueError(f"none of the {len(labels)} test sequences is listed in PROBE_SET of {partition}: "
                         "does the partition belong to this dataset?")  # fmt: skip
    if num_probes == len(labels):
        raise ValueError(f"every test sequence is a probe (PROBE_SET of {partition}): the gallery is empty")
    if num_probes < len(set(probe_set)):
        logger.warning("%d PROBE_SET sequences of %s are not in the test data", len(set(probe_set)) - num_probes,
                       partition)  # fmt: skip
    logger.info("Gait3D protocol on %s: %d probes, %d gallery sequences, metric %s",
                dataset_name or "test set", num_probes, len(labels) - num_probes, metric)  # fmt: skip
    dist = pairwise_distance(emb[probe_mask], emb[~probe_mask], metric)
    lbls = np.asarray(labels)
    metrics = evaluate_retrieval(dist, lbls[probe_mask], lbls[~probe_mask], ranks=(1, 5, 10))
    results = {f"scalar/test_accuracy/{name}": value for name, value in metrics.items()}
    logger.info(results)
    return results
