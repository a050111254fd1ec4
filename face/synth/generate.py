"""Write a SynthFace set: aligned training folders, aligned / unaligned / raw verification pairs, a preview.

Layout of ``out_dir``::

    synthface.json                  the config, counts and the files below
    train/<id>/<k>.jpg              aligned 112x112 training crops, one folder per identity
    train/landmarks.csv             their landmarks (pixel indices of the crop; face.landmarks format)
    train.rec, train.idx            the same crops as insightface RecordIO (with ``recordio``)
    train.landmarks.npy             ... and their landmarks in record order
    test/aligned.bin (+ .landmarks.npy)     pairs of 112x112 crops aligned to the ArcFace template
    test/unaligned.bin (+ .landmarks.npy)   the same pairs as detection crops (the box resized to 112x112)
    test/raw.bin (+ .landmarks.npy, .boxes.npy)  the same pairs as raw photos: input of the Fig. 5 path
    preview.png                     raw photos with landmarks and box, and their aligned / detection crops

Test identities are disjoint from training identities. Every photo is drawn from its own generator seeded
by ``(seed, split, identity, index)``, so the output does not depend on ``workers`` or on the order of work.
The aligned and detection crops are cut from the decoded raw photo (after its JPEG round trip), so
``raw.bin`` through :func:`face.eval.path_crops` reproduces them (``t = 1`` / ``t = 0``) up to the crops'
own encoding.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from face.align import align_faces
from face.data.crop import box_crop_matrix, warp_faces
from face.data.images import decode_image, encode_image
from face.data.recordio import write_face_recordio
from face.data.verification import write_verification_bin
from face.landmarks import write_landmark_csv
from face.synth.config import SynthConfig
from face.synth.render import render_photo, sample_identity
from kprpe.io import atomic_write_bytes, atomic_write_text

__all__ = ["generate"]

MANIFEST = "synthface.json"
PARTIAL = "synthface.partial"
CROP = (112, 112)
_TRAIN, _TEST, _TRAIN_PHOTO, _TEST_PHOTO, _PAIRS = 1, 2, 3, 4, 5  # generator streams


@dataclass
class _Rendered:
    """One identity's photos, ready to write."""

    raw: list[bytes]
    raw_landmarks: np.ndarray  # (K, 5, 3) pixel
    boxes: np.ndarray  # (K, 4)
    aligned: list[bytes]
    aligned_landmarks: np.ndarray  # (K, 5, 3) pixel of the crop
    unaligned: list[bytes] | None = None
    unaligned_landmarks: np.ndarray | None = None
    roll: np.ndarray | None = None


def _pixels(keypoints: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Keypoints in ``[0, 1]`` of a crop -> pixel indices (inverse of ``normalise_landmarks``)."""
    out = keypoints.clone().double()
    out[..., 0] = out[..., 0] * size[1] - 0.5
    out[..., 1] = out[..., 1] * size[0] - 0.5
    return out.numpy().astype(np.float32)


def _render_identity(task: tuple[SynthConfig, int, int]) -> _Rendered:
    """Render identity ``index`` of split ``split`` (``_TRAIN`` or ``_TEST``): photos, then crops."""
    config, split, index = task
    ident = sample_identity(np.random.default_rng([config.seed, split, index]))
    photo_stream = _TRAIN_PHOTO if split == _TRAIN else _TEST_PHOTO
    count = config.images_per_id if split == _TRAIN else config.test_images_per_id
    fmt = config.image_format
    raw, images, landmarks, boxes, roll = [], [], [], [], []
    for k in range(count):
        photo = render_photo(ident, np.random.default_rng([config.seed, photo_stream, index, k]), config)
        encoded = encode_image(photo.image, fmt)
        raw.append(encoded)
        images.append(
            decode_image(encoded, "synth") if fmt == "jpeg" else torch.from_numpy(photo.image).permute(2, 0, 1)
        )
        landmarks.append(np.concatenate([photo.landmarks, np.ones((5, 1), np.float32)], 1))
        boxes.append(photo.box)
        roll.append(photo.roll)
    batch = torch.stack(images).float()
    points = torch.from_numpy(np.stack(landmarks))
    aligned = align_faces(batch, points, CROP)
    crops = aligned.images.round().clamp(0, 255).to(torch.uint8)
    result = _Rendered(
        raw=raw,
        raw_landmarks=np.stack(landmarks),
        boxes=np.stack(boxes),
        aligned=[encode_image(crop, fmt) for crop in crops],
        aligned_landmarks=_pixels(aligned.keypoints, CROP),
        roll=np.array(roll, np.float32),
    )
    if split == _TEST:
        detection, keypoints = warp_faces(batch, points, box_crop_matrix(torch.from_numpy(result.boxes)), CROP)
        detection = detection.round().clamp(0, 255).to(torch.uint8)
        result.unaligned = [encode_image(crop, fmt) for crop in detection]
        result.unaligned_landmarks = _pixels(keypoints, CROP)
    if split == _TRAIN:
        result.raw = []  # training keeps only the aligned crops
    return result


def _render_all(config: SynthConfig, split: int, count: int, progress: bool, desc: str) -> list[_Rendered]:
    tasks = [(config, split, index) for index in range(count)]
    if config.workers <= 1:
        return [_render_identity(task) for task in tqdm(tasks, desc=desc, unit="id", disable=not progress)]
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(config.workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        iterator = pool.imap(_render_identity, tasks, chunksize=4)  # ordered: output independent of workers
        return list(tqdm(iterator, total=count, desc=desc, unit="id", disable=not progress))


def _pairs(config: SynthConfig) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """``[(id_a, k_a, id_b, k_b)]`` and ``issame``: half same (distinct photo pairs), half different, shuffled."""
    rng = np.random.default_rng([config.seed, _PAIRS])
    n = config.test_images_per_id
    same = [(j, a, j, b) for j in range(config.test_ids) for a in range(n) for b in range(a + 1, n)]
    positives = (config.pairs + 1) // 2
    chosen = [same[i] for i in rng.choice(len(same), positives, replace=False)]
    negatives = []
    while len(negatives) < config.pairs - positives:
        ja, jb = rng.choice(config.test_ids, 2, replace=False)
        negatives.append((int(ja), int(rng.integers(n)), int(jb), int(rng.integers(n))))
    pairs = chosen + negatives
    issame = np.array([True] * positives + [False] * len(negatives))
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order], issame[order]


def _write_test_set(out: Path, name: str, entries: list[bytes], landmarks: np.ndarray, issame: np.ndarray,
                    boxes: np.ndarray | None = None) -> list[Path]:  # fmt: skip
    return write_verification_bin(out / "test" / f"{name}.bin", entries, issame, landmarks, boxes)


def _preview(path: Path, test: list[_Rendered], rows: int = 6, photos: int = 3) -> None:
    """Rows of test identities: raw photos (landmarks red, box green), then aligned and detection crops."""
    tiles: list[list[Image.Image]] = []
    for rendered in test[:rows]:
        row = []
        for k in range(min(photos, len(rendered.raw))):
            with Image.open(io.BytesIO(rendered.raw[k])) as img:
                tile = img.convert("RGB")
            draw = ImageDraw.Draw(tile)
            draw.rectangle([float(v) for v in rendered.boxes[k]], outline=(0, 255, 0))
            for x, y, _ in rendered.raw_landmarks[k]:
                draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 0, 0))
            row.append(tile)
        for crops, points in (
            (rendered.aligned, rendered.aligned_landmarks),
            (rendered.unaligned, rendered.unaligned_landmarks),
        ):
            with Image.open(io.BytesIO(crops[0])) as img:
                tile = img.convert("RGB")
            draw = ImageDraw.Draw(tile)
            for x, y, _ in points[0]:
                draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 0, 0))
            row.append(tile)
        tiles.append(row)
    cell = max(max(t.size) for row in tiles for t in row) + 4
    sheet = Image.new("RGB", (cell * max(len(r) for r in tiles), cell * len(tiles)), (255, 255, 255))
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * cell + (cell - tile.size[0]) // 2, r * cell + (cell - tile.size[1]) // 2))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def generate(config: SynthConfig, out_dir: str | os.PathLike[str], progress: bool = True,
             overwrite: bool = False) -> dict[str, Path]:  # fmt: skip
    """Render SynthFace into ``out_dir`` (layout in the module docstring); returns ``{name: path}`` written.

    A folder that already holds a SynthFace of the same config is reused as it is (its paths are returned);
    one of another config is an error unless ``overwrite``. An interrupted run (its marker file
    ``synthface.partial`` is left behind) is rendered again from scratch. Only SynthFace's own ``train/`` and
    ``test/`` are ever removed.
    """
    out = Path(out_dir)
    manifest_path, partial = out / MANIFEST, out / PARTIAL
    if manifest_path.is_file() and not overwrite:
        previous = json.loads(manifest_path.read_text())
        if _same_output(previous.get("config", {}), config):
            return {name: out / rel for name, rel in previous["files"].items()}
        raise ValueError(f"{out} holds a SynthFace of another config; pass overwrite (--overwrite) to replace it")
    ours = manifest_path.is_file() or partial.is_file()
    if not ours and ((out / "train").exists() or (out / "test").exists()):
        raise ValueError(f"{out} has train/ or test/ folders not written by SynthFace; choose an empty folder")
    atomic_write_text(partial, json.dumps(config.to_dict()) + "\n")  # marks the folder as ours while rendering
    manifest_path.unlink(missing_ok=True)
    for sub in ("train", "test"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    start = time.perf_counter()
    train = _render_all(config, _TRAIN, config.ids, progress, "synth train")
    test = _render_all(config, _TEST, config.test_ids, progress, "synth test")
    files: dict[str, Path] = {}
    rows = []
    for index, rendered in enumerate(train):
        for k, (encoded, points) in enumerate(zip(rendered.aligned, rendered.aligned_landmarks)):
            name = f"{index:05d}/{k:03d}.{'jpg' if config.image_format == 'jpeg' else 'png'}"
            atomic_write_bytes(out / "train" / name, encoded)
            rows.append((name, points))
    files["train"] = out / "train"
    write_landmark_csv(out / "train" / "landmarks.csv", rows)
    files["train_landmarks"] = out / "train" / "landmarks.csv"
    if config.recordio:
        faces = [(encoded, index) for index, r in enumerate(train) for encoded in r.aligned]
        if config.image_format != "jpeg":  # RecordIO holds JPEG
            faces = [(decode_image(encoded, "synth"), label) for encoded, label in faces]
        write_face_recordio(out / "train.rec", faces)
        landmarks = np.concatenate([r.aligned_landmarks for r in train])
        atomic_write_bytes(out / "train.landmarks.npy", _npy(landmarks))
        files.update(
            train_rec=out / "train.rec", train_idx=out / "train.idx", train_rec_landmarks=out / "train.landmarks.npy"
        )
    pairs, issame = _pairs(config)
    photos = [p for pair in pairs for p in ((pair[0], pair[1]), (pair[2], pair[3]))]
    for name, entries, points, boxes in (
        ("aligned", "aligned", "aligned_landmarks", None),
        ("unaligned", "unaligned", "unaligned_landmarks", None),
        ("raw", "raw", "raw_landmarks", "boxes"),
    ):
        written = _write_test_set(
            out,
            name,
            [getattr(test[j], entries)[k] for j, k in photos],
            np.stack([getattr(test[j], points)[k] for j, k in photos]),
            issame,
            None if boxes is None else np.stack([getattr(test[j], boxes)[k] for j, k in photos]),
        )
        files[name] = written[0]
        for extra in written[1:]:
            files[f"{name}_{extra.name.split('.')[-2]}"] = extra
    _preview(out / "preview.png", test)
    files["preview"] = out / "preview.png"
    rolls = np.concatenate([r.roll for r in test])
    manifest = {
        "config": config.to_dict(),
        "counts": {
            "train_ids": config.ids,
            "train_images": len(rows),
            "test_ids": config.test_ids,
            "test_photos": config.test_ids * config.test_images_per_id,
            "pairs": len(issame),
            "same_pairs": int(issame.sum()),
        },
        "test_roll_degrees": {"mean_abs": float(np.abs(rolls).mean()), "max_abs": float(np.abs(rolls).max())},
        "landmarks": "pixel indices of each image; order left eye, right eye, nose, left mouth, right mouth",
        "seconds": round(time.perf_counter() - start, 2),
        "files": {name: path.relative_to(out).as_posix() for name, path in files.items()},
    }
    files["manifest"] = manifest_path
    manifest["files"]["manifest"] = MANIFEST
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    partial.unlink()
    return files


def _same_output(saved: dict, config: SynthConfig) -> bool:
    """Whether a saved config renders the same set (``workers`` changes nothing)."""
    current = json.loads(json.dumps(config.to_dict()))
    return {k: v for k, v in saved.items() if k != "workers"} == {k: v for k, v in current.items() if k != "workers"}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
