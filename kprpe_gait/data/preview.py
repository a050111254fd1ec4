"""Contact sheets of Gait3D-layout data: raw person crops with their pose, next to the 64x64 frames the
network sees with the replayed joints, for people to look at (``kprpe-gait synth`` writes one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .crop import crop_silhouette
from .formats import COCO_SKELETON
from .io import read_pose_file, read_silhouette_png
from .pretreat import POSE_DIR_NAME, SIL_DIR_NAME, pair_frames, replay_on_joints

TILE = 128  # tile height in pixels
_LEFT, _RIGHT, _MID, _BONE = (80, 160, 255), (255, 90, 70), (80, 220, 120), (230, 200, 40)


def _joint_color(j: int) -> tuple[int, int, int]:
    return _MID if j == 0 else (_LEFT if j % 2 == 1 else _RIGHT)


def draw_pose(gray: np.ndarray, joints: np.ndarray, height: int = TILE, min_conf: float = 0.0) -> Image.Image:
    """An RGB tile: ``gray`` ``(H, W)`` scaled to ``height`` rows, joints ``(17, 3)`` (continuous pixels of
    ``gray``) drawn as dots with the COCO skeleton; joints with confidence ``<= min_conf`` are left out."""
    h, w = gray.shape
    k = height / h
    tile = Image.fromarray(gray).resize((max(1, round(w * k)), height), Image.Resampling.NEAREST).convert("RGB")
    # dim the silhouette so the skeleton stands out
    tile = Image.fromarray((np.asarray(tile) * 0.55).astype(np.uint8))
    draw = ImageDraw.Draw(tile)
    xy = joints[:, :2] * k - 0.5  # continuous pixels -> Pillow coordinates at the tile's scale
    good = joints[:, 2] > min_conf
    for a, b in COCO_SKELETON:
        if good[a] and good[b]:
            draw.line([tuple(xy[a]), tuple(xy[b])], fill=_BONE, width=2)
    r = max(2.0, height / 64)
    for j in np.flatnonzero(good):
        x, y = xy[j]
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_joint_color(int(j)))
    return tile


def sequence_row(raw_root: Path, key: tuple[str, str, str], frames: int) -> Image.Image | None:
    """One row: up to ``frames`` raw crops with their pose, then the same frames after the crop; ``None``
    if the sequence has no usable frame."""
    pairs, _ = pair_frames(
        sorted(raw_root.joinpath(SIL_DIR_NAME, *key).glob("*.png")),
        sorted(raw_root.joinpath(POSE_DIR_NAME, *key).glob("*.txt")),
    )
    raw_tiles, crop_tiles = [], []
    for index in np.linspace(0, len(pairs) - 1, min(len(pairs), frames * 2)).round().astype(int):
        _, sil_path, pose_path = pairs[index]
        raw, pose = read_silhouette_png(sil_path), read_pose_file(pose_path)
        result = crop_silhouette(raw)
        if result.dropped is not None:
            continue
        shown = pose.copy()
        shown[:, :2] += 0.5  # pixel-index -> continuous pixels
        raw_tiles.append(draw_pose(raw, shown))
        crop_tiles.append(draw_pose(result.image, replay_on_joints(pose, result.geometry)))
        if len(raw_tiles) == frames:
            break
    if not raw_tiles:
        return None
    tiles = raw_tiles + crop_tiles
    label_h = 14
    row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * len(tiles) + 12, TILE + label_h), (20, 20, 20))
    x = 0
    for i, tile in enumerate(tiles):
        if i == len(raw_tiles):
            x += 12  # gap between the raw and the cropped half
        row.paste(tile, (x, label_h))
        x += tile.width + 4
    ImageDraw.Draw(row).text(
        (2, 1), "/".join(key) + "   raw person crop + pose  |  64x64 pretreated + replayed joints", fill=(230, 230, 230)
    )
    return row


def contact_sheet(
    raw_root: str | Path, keys: list[tuple[str, str, str]], max_rows: int = 6, frames: int = 5
) -> np.ndarray:
    """``(H, W, 3)`` uint8 sheet of up to ``max_rows`` of the sequences ``keys`` (skipping empty ones).

    Raises:
        ValueError: no sequence has a usable frame.
    """
    rows = []
    for key in keys:
        row = sequence_row(Path(raw_root), key, frames)
        if row is not None:
            rows.append(row)
        if len(rows) == max_rows:
            break
    if not rows:
        raise ValueError(f"none of the {len(keys)} sequences has a usable frame for the preview")
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 6 for r in rows)), (0, 0, 0))
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + 6
    return np.asarray(sheet)
