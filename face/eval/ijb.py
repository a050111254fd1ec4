"""IJB-B / IJB-C 1:1 template verification: the paper's TAR@FAR = 1e-4 ("@0.01 %") protocol.

As insightface's ``ijb_11.py`` and the authors' CVLface evaluator do it:

1. every image is aligned to the 112x112 ArcFace template with its five landmarks (the model gets the
   landmarks moved with it) and embedded with flip test-time augmentation: the **unnormalised**
   embeddings of the image and of its mirror are summed (:func:`face.eval.embed` with
   ``normalize=False``);
2. per scoring configuration, each image feature keeps its norm (``Norm:True``, the norm as a quality
   weight, as AdaFace's) or is L2-normalised (``Norm:False``), and is multiplied by the detector's
   faceness score (``Det:True``) or not;
3. a media feature is the mean of its images' features (frames of one video), a template feature the
   sum of its media features, L2-normalised; a pair's score is the cosine of its two template features;
4. TAR at the ROC point nearest each FAR in 1e-6 .. 1e-1 (:func:`face.eval.verification.tar_at_far`): by
   default read on sklearn's ``drop_intermediate`` ROC as ``ijb_11.py`` and CVLface read it (``readout=
   "field"``; a point sklearn drops can be the nearest one, and the field then reads the next kept corner,
   e.g. 0.909583 at FAR 1.0103e-4 where the full ROC has 0.909167 at 1.0025e-4), or on the full ROC
   (``readout="full"``).

Image features are float32 (as the model gives them); templates are pooled and pairs scored in float64, as
``ijb_11.py`` does (its template array and score array are float64). CVLface reports the three
configurations of :data:`SCORINGS`; insightface's ``ijb_11.py`` sets ``use_norm_score=True,
use_detector_score=True``: its default is ``Norm:True_Det:True``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from face.align import align_faces
from face.data.ijb import IJBPairs, IJBSet, read_ijb_pairs
from face.data.images import load_image
from face.eval.embedding import embed
from face.eval.verification import tar_at_far

__all__ = ["IJB_FARS", "SCORINGS", "evaluate_ijb", "ijb_features", "ijb_metrics", "pair_scores", "template_features"]

#: scoring name -> (keep each image feature's norm, weight it by the faceness score); CVLface's three
SCORINGS: dict[str, tuple[bool, bool]] = {
    "Norm:True_Det:True": (True, True),
    "Norm:True_Det:False": (True, False),
    "Norm:False_Det:True": (False, True),
}
IJB_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


_POOL_CHUNK = 65536  # image rows converted to float64 at a time


def _group_sums(features: torch.Tensor, scale: torch.Tensor, group: np.ndarray, count: int) -> torch.Tensor:
    """Float64 row sums ``(count, D)`` of ``features * scale[:, None]`` per ``group`` id in ``[0, count)``.

    ``features (N, D)`` float32 and ``scale (N,)`` float32 are multiplied in float32 (as the references weight
    their float32 image features) and accumulated in float64, ``_POOL_CHUNK`` rows at a time, so memory holds
    one float64 chunk beside the features, not a float64 copy of all of them.
    """
    out = torch.zeros(count, features.shape[1], dtype=torch.float64)
    index = torch.from_numpy(group)
    for start in range(0, len(features), _POOL_CHUNK):
        rows = slice(start, start + _POOL_CHUNK)
        weighted = (features[rows] * scale[rows, None]).to(torch.float64)
        out.index_add_(0, index[rows], weighted)
    return out


def template_features(
    features: np.ndarray | torch.Tensor,
    templates: np.ndarray,
    medias: np.ndarray,
    faceness: np.ndarray | None = None,
    keep_norm: bool = True,
    use_faceness: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Pool image features into L2-normalised template features (steps 2-3 of the module docstring).

    Image features are weighted in float32 and pooled in float64, grouped with ``index_add_`` (IJB-C: 469k x
    512 features pool in a few seconds).

    Args:
        features: ``(N, D)`` image features (unnormalised: the flip-summed embeddings).
        templates, medias: ``(N,)`` template and media id of each image.
        faceness: ``(N,)`` detector scores (needed with ``use_faceness``).
        keep_norm: keep each feature's norm (``Norm:True``); ``False`` L2-normalises them first.
        use_faceness: multiply each feature by its faceness score (``Det:True``).

    Returns:
        ``(template_ids (T,) int64 sorted, features (T, D) float64)``; a template whose features sum to
        zero stays zero (cosine 0 with everything), as sklearn's ``normalize`` leaves it.
    """
    feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    templates, medias = np.asarray(templates, dtype=np.int64), np.asarray(medias, dtype=np.int64)
    if feats.dim() != 2 or templates.shape != (len(feats),) or medias.shape != (len(feats),):
        raise ValueError(
            f"features must be (N, D) with N template and media ids, got {tuple(feats.shape)}, {templates.shape}, "
            f"{medias.shape}"
        )
    finite = torch.isfinite(feats).all(1)
    if not bool(finite.all()):
        raise ValueError(f"{int((~finite).sum())} image feature(s) are not finite")
    weights = torch.ones(len(feats))
    if not keep_norm:
        weights = 1.0 / feats.norm(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
    if use_faceness:
        if faceness is None or np.shape(faceness) != (len(feats),):
            raise ValueError(f"use_faceness needs (N,) = ({len(feats)},) faceness scores, got {np.shape(faceness)}")
        weights = weights * torch.as_tensor(np.asarray(faceness), dtype=torch.float32)
    # media of a template: one integer key per (template, media) pair
    template_ids, template_code = np.unique(templates, return_inverse=True)
    _, media_code = np.unique(medias, return_inverse=True)
    media_keys, media_of = np.unique(
        template_code.reshape(-1) * (int(media_code.max()) + 1) + media_code.reshape(-1), return_inverse=True
    )
    media_of = media_of.reshape(-1)
    counts = torch.from_numpy(np.bincount(media_of, minlength=len(media_keys))).to(torch.float32)
    # weights / (images in the media) folded into one scale per image: the media means, summed per template
    scale = weights / counts[torch.from_numpy(media_of)]
    template_of = template_code.reshape(-1)
    pooled = _group_sums(feats, scale, template_of, len(template_ids))
    pooled = torch.nn.functional.normalize(pooled, dim=1)  # zero rows stay zero
    return template_ids, pooled.numpy()


def pair_scores(template_feats: np.ndarray, pairs: IJBPairs, batch: int = 65536) -> np.ndarray:
    """Cosine similarity ``(P,)`` float64 of every pair's two template features, ``batch`` pairs at a time."""
    if len(template_feats) != len(pairs.template_ids):
        raise ValueError(f"{len(template_feats)} template features for {len(pairs.template_ids)} templates")
    template_feats = np.asarray(template_feats, dtype=np.float64)
    scores = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), batch):
        stop = min(start + batch, len(pairs))
        a, b = template_feats[pairs.first[start:stop]], template_feats[pairs.second[start:stop]]
        scores[start:stop] = np.einsum("ij,ij->i", a, b)
    return scores


def ijb_metrics(
    features: np.ndarray | torch.Tensor,
    data: IJBSet,
    pairs: IJBPairs,
    scorings: dict[str, tuple[bool, bool]] = SCORINGS,
    fars: tuple[float, ...] = IJB_FARS,
    readout: str = "field",
) -> dict:
    """TAR@FAR (read as ``readout``, :data:`~face.eval.verification.READOUTS`) of every scoring configuration
    from the image features ``(N, D)`` of ``data``.

    Returns:
        ``{"images", "templates", "pairs", "positives", "negatives", "tar_at_far": {scoring: {far: ...}}}``
        with each FAR entry as :func:`~face.eval.verification.tar_at_far` gives it.
    """
    if len(features) != len(data):
        raise ValueError(f"{len(features)} features for the {len(data)} images of {data.name}")
    out: dict = {
        "images": len(data),
        "templates": len(pairs.template_ids),
        "pairs": len(pairs),
        "positives": int(pairs.same.sum()),
        "negatives": int((~pairs.same).sum()),
        "tar_readout": readout,
        "tar_at_far": {},
    }
    for name, (keep_norm, use_faceness) in scorings.items():
        ids, pooled = template_features(features, data.templates, data.medias, data.faceness, keep_norm, use_faceness)
        if not np.array_equal(ids, pairs.template_ids):
            raise ValueError(f"{data.name}: the pair list's templates are not the images' templates")
        out["tar_at_far"][name] = tar_at_far(pair_scores(pooled, pairs), pairs.same, fars, readout)
    return out


def _aligned_batch(data: IJBSet, indices: range, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned uint8 crops ``(B, 3, H, W)`` and their keypoints ``(B, 5, 3)`` in ``[0, 1]``."""
    crops, keypoints = [], []
    for i in indices:
        image = load_image(data.image_path(i)).float()[None]
        try:
            aligned = align_faces(image, torch.from_numpy(data.landmarks[i])[None], size)
        except ValueError as e:
            raise ValueError(f"{data.image_path(i)}: {e}") from None
        crops.append(aligned.images[0].round().clamp(0, 255).to(torch.uint8))  # as insightface's uint8 norm_crop
        keypoints.append(aligned.keypoints[0])
    return torch.stack(crops), torch.stack(keypoints)


def ijb_features(
    model: nn.Module,
    data: IJBSet,
    flip: bool = True,
    batch_size: int = 64,
    size: tuple[int, int] = (112, 112),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Unnormalised (flip-summed) features ``(N, D)`` float32 of every image of ``data``, aligned with its
    landmarks; images are read and aligned ``batch_size`` at a time, so memory does not grow with ``N``."""
    out = []
    for start in tqdm(range(0, len(data), batch_size), desc=f"{data.name} features", disable=not progress):
        crops, keypoints = _aligned_batch(data, range(start, min(start + batch_size, len(data))), size)
        out.append(embed(model, crops, keypoints, flip, batch_size, device, normalize=False).numpy())
    return np.concatenate(out)


def evaluate_ijb(
    model: nn.Module,
    data: IJBSet,
    flip: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
    readout: str = "field",
) -> dict:
    """IJB-B / IJB-C 1:1 verification of ``model`` (module docstring); the pair list is read first, so a
    malformed one fails before the long feature pass."""
    pairs = read_ijb_pairs(data.pair_file, data.templates)
    features = ijb_features(model, data, flip, batch_size, device=device, progress=progress)
    result = ijb_metrics(features, data, pairs, readout=readout)
    result.update(flip=flip)
    return result
