"""Helpers of the gait data-tool tests (a uniquely named module: ``conftest`` names collide)."""

from __future__ import annotations

import numpy as np

from kprpe_gait.data.synth import SynthConfig

#: the tiny SynthGait set of the ``tiny_synth`` fixture
TINY = SynthConfig.preset("tiny", seed=7)


def dot_frame(
    height: int,
    width: int,
    body: tuple[int, int, int, int],
    dot: tuple[float, float],
    radius: float,
    edge: float = 0.0,
) -> np.ndarray:
    """A raw silhouette: a filled rectangle ``body = (top, bottom, left, right)`` and a separate bright
    disk of ``radius`` centred at continuous pixel ``dot = (x, y)``.

    ``edge = 0`` gives a binary disk; ``edge > 0`` a disk whose rim ramps from 255 to 0 over ``edge``
    pixels. OpenCV's bicubic resize does not antialias, so a binary dot downscaled by ``k > 2`` is
    aliased and its centroid moves by up to ~0.2 output px whatever the geometry; a rim of ``k`` raw
    pixels (one output pixel) keeps the dot band-limited, so its centroid measures the geometry alone.
    """
    img = np.zeros((height, width), np.uint8)
    top, bottom, left, right = body
    img[top:bottom, left:right] = 255
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    dist = np.hypot(xx - dot[0], yy - dot[1])
    if edge <= 0:
        img[dist <= radius] = 255
        return img
    disk = np.round(255 * np.clip((radius - dist) / edge + 0.5, 0, 1)).astype(np.uint8)
    return np.maximum(img, disk)


def dot_joint(img: np.ndarray, body: tuple[int, int, int, int]) -> tuple[float, float]:
    """The raw dot's own intensity centroid (continuous pixels): the joint a dot frame stands for (a disk
    on the pixel grid is not centred exactly at its nominal centre)."""
    dot = img.astype(np.float64)
    dot[:, body[2] : body[3]] = 0
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]] + 0.5
    return float((dot * xx).sum() / dot.sum()), float((dot * yy).sum() / dot.sum())


def dot_edge(height_of_band: int, size: int = 64) -> float:
    """The rim for :func:`dot_frame`: one output pixel in raw pixels when the crop downscales, else 0."""
    return height_of_band / size if height_of_band > size else 0.0


def pose_at(points: dict[int, tuple[float, float]], conf: float = 0.9) -> np.ndarray:
    """``(17, 3)`` pose in the pixel-index convention with the given joints at continuous ``(x, y)``;
    the other joints are missing (confidence 0)."""
    pose = np.zeros((17, 3), np.float32)
    for j, (x, y) in points.items():
        pose[j] = (x - 0.5, y - 0.5, conf)
    return pose


def opengait_pickles(sil_root, out, imgs2pickle=None) -> None:
    """OpenGait's silhouette pickles of a raw ``2D_Silhouettes`` tree: ``out/<id>/<type>/<view>/<view>.pkl``.

    With ``imgs2pickle`` (OpenGait's own function) it writes them; without, the same frames are made with
    :func:`kprpe_gait.data.crop.crop_silhouette` (tested byte-identical to OpenGait's): kept frames in
    string order of the file names.
    """
    import pickle

    from kprpe_gait.data.crop import crop_silhouette
    from kprpe_gait.data.io import list_sequence_folders, read_silhouette_png

    for key in list_sequence_folders(sil_root):
        pngs = sorted(sil_root.joinpath(*key).glob("*.png"))
        if imgs2pickle is not None:
            imgs2pickle((key, pngs), out)
            continue
        frames = [crop_silhouette(read_silhouette_png(p)) for p in pngs]
        kept = [f.image for f in frames if f.dropped is None]
        if kept:
            out.joinpath(*key).mkdir(parents=True)
            with open(out.joinpath(*key, f"{key[2]}.pkl"), "wb") as handle:
                pickle.dump(np.stack(kept), handle)
