"""Silhouettes byte-identical to OpenGait's own ``datasets/pretreatment.py`` (needs ``$OPENGAIT_ROOT``).

Every expected frame comes from calling OpenGait's ``imgs2pickle`` on the same PNG files: frame by frame
(each PNG alone, so every drop decision is compared too) and whole sequences (its string order, its
drops, against what ``pretreat-gait3d`` wrote for the frames that have a pose).
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
from _gait_data_helpers import dot_frame
from PIL import Image

from kprpe_gait.data.crop import crop_silhouette
from kprpe_gait.data.io import frame_number, list_sequence_folders, load_sequence, read_silhouette_png
from kprpe_gait.data.pretreat import pretreat_frames

pytestmark = pytest.mark.opengait


def opengait_run(module, paths: list[Path], out: Path, key: tuple[str, str, str]) -> np.ndarray | None:
    """OpenGait's ``imgs2pickle`` on ``paths`` as one sequence; its pickle, or ``None`` if it wrote none."""
    logging.disable(logging.WARNING)  # it warns on every dropped frame
    try:
        module.imgs2pickle((key, paths), out)
    finally:
        logging.disable(logging.NOTSET)
    path = out.joinpath(*key, f"{key[2]}.pkl")
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        frames = pickle.load(handle)
    path.unlink()
    return frames


def edge_frames(folder: Path) -> list[Path]:
    """Hand-made frames for OpenGait's branches: both drop rules, padding on each side, up/downscale."""
    frames = {
        "too_few_pixels": np.pad(np.full((39, 1), 255, np.uint8), ((10, 10), (20, 20))),
        "centre_at_column_0": np.pad(np.full((100, 1), 255, np.uint8), ((0, 0), (0, 9))),
        "pad_left": dot_frame(240, 150, (12, 230, 10, 40), (120.3, 97.6), 9.0),
        "pad_right": dot_frame(200, 400, (10, 190, 330, 380), (300.4, 120.7), 8.0),
        "no_pad": dot_frame(200, 400, (20, 190, 150, 230), (262.4, 60.8), 8.0),
        "upscale": dot_frame(48, 90, (4, 44, 30, 48), (52.6, 30.3), 3.0),
        "grey": (dot_frame(120, 80, (5, 110, 30, 50), (60.0, 40.0), 6.0) // 3) * 2,
    }
    folder.mkdir(parents=True)
    paths = []
    for i, (name, img) in enumerate(frames.items()):
        paths.append(folder / f"{name}_f{i}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


def test_frame_by_frame(opengait_pretreatment, tiny_synth: Path, tmp_path: Path) -> None:
    """Each PNG alone through OpenGait and through ``crop_silhouette``: same drop decision, same bytes."""
    pngs = sorted((tiny_synth / "raw" / "2D_Silhouettes").glob("*/*/*/*.png"))
    pngs += edge_frames(tmp_path / "edge")
    kept = dropped = 0
    for png in pngs:
        theirs = opengait_run(opengait_pretreatment, [png], tmp_path / "og", ("x", "y", "z"))
        ours = crop_silhouette(read_silhouette_png(png))
        if theirs is None:
            assert ours.dropped is not None, f"{png}: OpenGait drops it, we keep it"
            dropped += 1
            continue
        assert ours.dropped is None, f"{png}: OpenGait keeps it, we drop it ({ours.dropped})"
        assert theirs.shape == (1, 64, 64) and theirs.dtype == np.uint8
        np.testing.assert_array_equal(ours.image, theirs[0], err_msg=str(png))
        kept += 1
    assert kept > 400 and dropped >= 2


def test_whole_sequences(opengait_pretreatment, tiny_synth: Path, tmp_path: Path) -> None:
    """OpenGait's pickle of every sequence (its string order, its drops) against ``pretreat-gait3d``'s output:
    every frame that both keep is byte-identical."""
    raw = tiny_synth / "raw"
    compared = 0
    for key in list_sequence_folders(raw / "2D_Silhouettes"):
        pngs = sorted(raw.joinpath("2D_Silhouettes", *key).glob("*.png"))
        theirs = opengait_run(opengait_pretreatment, pngs, tmp_path / "og", key)
        ours_kept = [p for p in pngs if crop_silhouette(read_silhouette_png(p)).dropped is None]
        assert theirs is not None and len(theirs) == len(ours_kept), key
        theirs_by_frame = {frame_number(p): frame for p, frame in zip(ours_kept, theirs)}
        # what pretreat-gait3d wrote (frames that also have a pose file), in numeric order
        seq = pretreat_frames(pngs, sorted(raw.joinpath("2D_Poses", *key).glob("*.txt")))
        written, _ = load_sequence((tiny_synth / "pkl").joinpath(*key))
        np.testing.assert_array_equal(written, seq.sils)
        for number, sil in zip(seq.frames, written):
            np.testing.assert_array_equal(sil, theirs_by_frame[number], err_msg=f"{key} frame {number}")
            compared += 1
    assert compared > 400
