"""Evaluate a model on verification pairs, identification sets and the Fig. 5 path; JSON and a table."""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from face.align import normalise_landmarks
from face.data.identification import IdentificationSet
from face.data.ijb import IJBSet, read_ijb_pairs, read_ijb_search
from face.data.verification import VerificationPairs
from face.detect.base import FaceDetector
from face.eval.embedding import embed, embed_views
from face.eval.identification import identification_metrics
from face.eval.ijb import ijb_features, ijb_metrics
from face.eval.ijb_search import ijb_search_metrics
from face.eval.landmark_sources import PairLandmarks, pair_landmarks
from face.eval.path import path_crops
from face.eval.verification import verification_metrics
from kprpe.io import atomic_write_text

__all__ = [
    "IJB_PROTOCOLS",
    "evaluate_identification",
    "evaluate_ijb_protocols",
    "evaluate_path",
    "evaluate_verification",
    "format_table",
    "write_results",
    "xnorm",
]


def _unit_landmarks(points: np.ndarray | torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor | None:
    if points is None:
        return None
    return normalise_landmarks(torch.as_tensor(points, dtype=torch.float32), size)


def xnorm(views: torch.Tensor) -> float:
    """insightface's XNorm: the mean L2 norm of the unnormalised embeddings ``(N, V, D)`` of every view
    (the images and, with flip TTA, their mirrors, each embedded alone: not the flip-summed ones), in float64.
    Logged beside the accuracy by insightface's ``verification.test``; a feature-norm health check."""
    return float(views.to(torch.float64).norm(dim=-1).mean())


def _verification_landmarks(
    pairs: VerificationPairs,
    landmarks: np.ndarray | torch.Tensor | PairLandmarks | None,
    source: str | None,
    detector: FaceDetector | None,
    progress: bool,
) -> PairLandmarks | None:
    """The landmarks to use: explicit ones, else ``source``, else the sidecar when there is one."""
    if landmarks is not None and source is not None:
        raise ValueError(f"give either landmarks or a landmark source, not both (source {source!r})")
    if isinstance(landmarks, PairLandmarks):
        if len(landmarks.landmarks) != len(pairs.encoded):
            raise ValueError(f"{pairs.path}: {len(pairs.encoded)} images but {len(landmarks.landmarks)} landmark sets")
        return landmarks
    if landmarks is not None:
        array = np.asarray(landmarks.cpu() if isinstance(landmarks, torch.Tensor) else landmarks, np.float32)
        if len(array) != len(pairs.encoded):
            raise ValueError(f"{pairs.path}: {len(pairs.encoded)} images but {len(array)} landmark sets")
        return PairLandmarks(array, None, "file")
    if source is None:
        return None if pairs.landmarks is None else pair_landmarks(pairs, "sidecar")
    return pair_landmarks(pairs, source, detector, progress)


def evaluate_verification(
    model: nn.Module,
    pairs: VerificationPairs,
    landmarks: np.ndarray | torch.Tensor | PairLandmarks | None = None,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
    readout: str = "field",
    landmark_source: str | None = None,
    detector: FaceDetector | None = None,
) -> dict:
    """Embed the ``2N`` images of ``pairs`` and compute :func:`~face.eval.verification.verification_metrics`
    (TAR@FAR read as ``readout``).

    Args:
        pairs: images of the model's input size (e.g. 112x112 aligned or detection crops).
        landmarks: ``(2N, 5, 2|3)`` pixel landmarks on the images (the mirrors get them mirrored), or a
            :class:`~face.eval.landmark_sources.PairLandmarks` (e.g. from ``pair_landmarks``).
        landmark_source: ``"detect"`` / ``"template"`` / ``"sidecar"``
            (:mod:`face.eval.landmark_sources`; ``"detect"`` needs ``detector``). With neither this nor
            ``landmarks``: the sidecar when the set has one, else the model is called without landmarks.

    Returns:
        the metrics plus ``xnorm`` (:func:`xnorm`), ``landmarks`` (bool), ``landmark_source`` and
        ``landmarks_missing`` (images, mirrors counted apart, with no landmark at all).
    """
    points = _verification_landmarks(pairs, landmarks, landmark_source, detector, progress)
    images = pairs.images()
    size = tuple(images[0].shape[1:])
    unit = None if points is None else _unit_landmarks(points.landmarks, size)
    mirrored = None if points is None or points.flipped is None or not flip else _unit_landmarks(points.flipped, size)
    views = embed_views(model, images, unit, flip, batch_size, device, progress, mirrored)
    result = verification_metrics(views.sum(1), pairs.issame, readout=readout)
    result.update(
        xnorm=xnorm(views),
        flip=flip,
        landmarks=points is not None,
        landmark_source=None if points is None else points.source,
        landmarks_missing=0 if points is None else points.missing,
        image_size=list(size),
    )
    return result


def evaluate_identification(
    model: nn.Module,
    data: IdentificationSet,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict:
    """Rank-1/5/20 of ``data``'s probes against its gallery (distractors included)."""
    features = []
    for faces in (data.probe, data.gallery):
        size = (faces.size, faces.size)
        points = faces.resized_landmarks()
        usable = None if torch.isnan(points[..., :2]).all() else _unit_landmarks(points, size)
        features.append(embed(model, faces, usable, flip, batch_size, device, progress))
    return identification_metrics(features[0], data.probe.labels, features[1], data.gallery.labels)


def evaluate_path(
    model: nn.Module,
    raw: VerificationPairs,
    steps: int = 11,
    flip: bool = True,
    batch_size: int = 64,
    size: tuple[int, int] = (112, 112),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict:
    """Verification accuracy along the Fig. 5 path (:mod:`face.eval.path`) at ``steps`` evenly spaced ``t``.

    Args:
        raw: pairs of raw photos with the ``landmarks`` and ``boxes`` sidecars.

    Returns:
        ``{"t": [...], "accuracy": [...], "accuracy_std": [...], "tar_at_far": [...]}``, one entry per ``t``.
    """
    if raw.landmarks is None or raw.boxes is None:
        raise ValueError(f"{raw.path}: the path needs the raw photos' landmarks and boxes sidecars")
    if steps < 2:
        raise ValueError(f"--path-steps must be at least 2 (t = 0 and t = 1), got {steps}")
    photos = [raw.image(i) for i in range(len(raw.encoded))]
    out: dict = {"t": [], "accuracy": [], "accuracy_std": [], "tar_at_far": []}
    for t in tqdm(np.linspace(0, 1, steps).tolist(), desc="path", unit="t", disable=not progress):
        crops, keypoints = path_crops(photos, raw.landmarks, raw.boxes, t, size)
        metrics = verification_metrics(embed(model, crops, keypoints, flip, batch_size, device), raw.issame)
        out["t"].append(round(t, 6))
        out["accuracy"].append(metrics["accuracy"])
        out["accuracy_std"].append(metrics["accuracy_std"])
        out["tar_at_far"].append(metrics["tar_at_far"])
    return out


_READOUT_NOTE = "field = sklearn roc_curve drop_intermediate, as insightface/CVLface; full = every ROC point"


IJB_PROTOCOLS = ("1:1", "1:N")


def evaluate_ijb_protocols(
    model: nn.Module,
    data: IJBSet,
    protocols: tuple[str, ...] = ("1:1",),
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
    readout: str = "field",
) -> dict:
    """IJB-B / IJB-C 1:1 verification (:mod:`face.eval.ijb`) and / or 1:N identification
    (:mod:`face.eval.ijb_search`) from one feature pass; the lists are read first, so a malformed one fails
    before the long feature pass.

    Returns:
        ``{"1:1": ..., "1:N": ...}`` for the protocols asked.
    """
    unknown = set(protocols) - set(IJB_PROTOCOLS)
    if unknown or not protocols:
        raise ValueError(f"IJB protocols must be among {IJB_PROTOCOLS}, got {protocols}")
    pairs = read_ijb_pairs(data.pair_file, data.templates) if "1:1" in protocols else None
    search = read_ijb_search(data) if "1:N" in protocols else None
    features = ijb_features(model, data, flip, batch_size, device=device, progress=progress)
    out = {}
    if pairs is not None:
        out["1:1"] = ijb_metrics(features, data, pairs, readout=readout) | {"flip": flip}
    if search is not None:
        out["1:N"] = ijb_search_metrics(features, data, search) | {"flip": flip}
    return out


def _tar_header(tar_at_far: dict) -> str:
    return " ".join(f"{'TAR@' + far:>11}" for far in tar_at_far)


def _tar_cells(tar_at_far: dict) -> str:
    """TAR in % per target FAR; ``*`` marks a FAR below ``1 / negatives`` (read at the nearest one)."""
    return " ".join(f"{100 * v['tar']:>10.2f}{'' if v['resolved'] else '*'}" for v in tar_at_far.values())


def _search_lines(name: str, m: dict) -> list[str]:
    """Table rows of an IJB 1:N result: TPIR@FPIR and rank-k per scoring."""
    first = next(iter(m["scorings"].values()))
    fpirs = " ".join(f"{'TPIR@' + fpir:>11}" for fpir in first["tpir_at_fpir"])
    ranks = " ".join(f"{key:>7}" for key in first if key.startswith("rank"))
    header = f"{name + ' 1:N scoring':<24} {fpirs} {ranks}"
    lines = [header, "-" * len(header)]
    for scoring, r in m["scorings"].items():
        cells = " ".join(f"{100 * v['tpir']:>11.2f}" for v in r["tpir_at_fpir"].values())
        rank_cells = " ".join(f"{100 * v:>7.2f}" for key, v in r.items() if key.startswith("rank"))
        lines.append(f"{scoring:<24} {cells} {rank_cells}")
    lines.append(f"({m['probes']} probe templates, {m['gallery']} gallery templates: {' + '.join(m['galleries'])})")
    return lines


def format_table(results: dict) -> str:
    """A plain-text table of ``{"verification": {name: metrics}, "ijb": ..., "identification": ..., "path": ...}``."""
    lines = []
    tar_sets = []  # every printed TAR@FAR row, for the footnote
    verification = results.get("verification", {})
    if verification:
        header = f"{'set':<24} {'pairs':>6} {'accuracy':>16} {'XNorm':>8} " + _tar_header(
            next(iter(verification.values()))["tar_at_far"]
        )
        lines += [header, "-" * len(header)]
        for name, m in verification.items():
            accuracy = f"{100 * m['accuracy']:.2f} +- {100 * m['accuracy_std']:.2f}"
            norm = f"{m['xnorm']:>8.3f}" if "xnorm" in m else f"{'-':>8}"
            lines.append(f"{name:<24} {m['pairs']:>6} {accuracy:>16} {norm} {_tar_cells(m['tar_at_far'])}")
            tar_sets.append(m["tar_at_far"])
    for name, m in results.get("ijb", {}).items():
        header = f"{name + ' scoring':<24} " + _tar_header(next(iter(m["tar_at_far"].values())))
        lines += [header, "-" * len(header)]
        for scoring, tars in m["tar_at_far"].items():
            lines.append(f"{scoring:<24} {_tar_cells(tars)}")
            tar_sets.append(tars)
        lines.append(f"({m['images']} images, {m['templates']} templates, {m['positives']} + {m['negatives']} pairs)")
    for name, m in results.get("ijb_1n", {}).items():
        lines += _search_lines(name, m)
    if any(not v["resolved"] for tars in tar_sets for v in tars.values()):
        lines.append("* target FAR below 1 / negatives: read at the nearest FAR the set has")
    readouts = {m.get("tar_readout") for m in [*verification.values(), *results.get("ijb", {}).values()]}
    if tar_sets and readouts - {None}:
        lines.append("TAR@FAR readout: " + ", ".join(sorted(readouts - {None})) + f" ({_READOUT_NOTE})")
    for name, m in results.get("identification", {}).items():
        ranks = "  ".join(f"{key} {100 * value:.2f}" for key, value in m.items() if key.startswith("rank"))
        lines.append(f"{name}: {ranks}  ({m['probes']} probes, {m['gallery']} gallery)")
    path = results.get("path")
    if path:
        lines.append("path t:    " + " ".join(f"{t:>6.2f}" for t in path["t"]))
        lines.append("accuracy:  " + " ".join(f"{100 * a:>6.2f}" for a in path["accuracy"]))
    reliance = results.get("reliance", {})
    if reliance:
        header = (f"{'reliance':<24} {'acc true':>9} {'constant':>9} {'shuffled':>9} {'cos(t,c)':>9} "
                  f"{'kp bias':>8} {'spread':>7}")  # fmt: skip
        lines += ["", header, "-" * len(header)]
        for name, r in reliance.items():
            acc = " ".join(f"{100 * r['accuracy'][m]:>9.2f}" for m in ("true", "constant", "shuffled"))
            lines.append(f"{name:<24} {acc} {r['embedding_cosine']['mean']:>9.4f} {r['keypoint_bias']:>8.4f} "
                         f"{r['logit_spread']:>7.3f}")  # fmt: skip
        lines.append("(kp bias: mean |bias(true) - bias(constant)| over layers, logits; spread: their row std)")
    return "\n".join(lines)


def write_results(path: str | os.PathLike[str], results: dict) -> None:
    """Write ``results`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")
