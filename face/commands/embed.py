"""``kprpe-face embed``: raw photos -> face detection -> 112x112 crops + landmarks -> embeddings.

``kprpe-face embed --images DIR --model PATH --out FILE.npz [--align | --no-align] [--landmarks CSV
[--boxes CSV]]`` finds every photo under ``DIR`` (recursively: ``.jpg .jpeg .png .bmp .webp .tif .tiff .ppm
.pgm .gif``), takes one face per photo from a detector front-end -- MTCNN (the optional extra ``detect``)
or, with ``--landmarks``, a landmark CSV (:class:`face.detect.CsvLandmarks`) -- crops it (aligned to the
ArcFace template, or the detection box resized; :mod:`face.detect.inputs` documents the landmark
handling), and embeds it with a model from :func:`face.models.load_pretrained`, in batches.

Every photo is accounted for: the output's ``keys`` list every photo found (and every CSV row whose photo
is absent) with a ``status`` of ``"ok"`` or the reason it was skipped (no face, unreadable, unsupported
image mode, too few landmarks on the photo, ...); the skipped ones are printed too. Arrays in the ``.npz``
(``N`` = number of keys; rows of skipped keys are NaN):

* ``keys`` ``(N,)`` str, ``status`` ``(N,)`` str, ``skipped`` ``(M,)`` str ``"key: reason"``;
* ``embeddings`` ``(N, D)`` float32, unnormalised (L2-normalise to compare);
* ``landmarks`` ``(N, 5, 3)`` float32: the model's keypoints, ``(x, y)`` in ``[0, 1]`` of the crop +
  confidence; ``photo_landmarks`` ``(N, 5, 3)`` the same in pixels of the photo;
* ``boxes`` ``(N, 4)`` (``x0, y0, x1, y1``), ``scores`` ``(N,)``, ``faces`` ``(N,)`` int (faces found on the
  photo; the best-scored one, or ``--face largest``, is embedded), ``matrices`` ``(N, 2, 3)`` photo ->
  crop pixel maps, ``dropped`` ``(N,)`` int (landmarks treated as missing);
* ``info``: a JSON string (model, front-end, crop, NMS used by MTCNN).

Photos are read with their EXIF orientation applied (as OpenCV does); modes other than 8-bit (16-bit or
float images) are skipped with the reason rather than guessed at.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from kprpe.io import atomic_open

if TYPE_CHECKING:
    from face.detect import Detections

__all__ = ["PHOTO_SUFFIXES", "embed_photos", "list_photos", "read_photo"]

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif"})
#: 8-bit PIL modes converted to RGB; anything else (16-bit, 32-bit int / float) is skipped.
EIGHT_BIT_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
)
FACE_CHOICES = ("best", "largest")


def list_photos(folder: Path) -> list[str]:
    """Photo files under ``folder`` (recursively, hidden files excluded) as sorted relative POSIX paths."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if (
            path.suffix.lower() in PHOTO_SUFFIXES
            and path.is_file()
            and not any(p.startswith(".") for p in relative.parts)
        ):
            found.append(relative.as_posix())
    return sorted(found)


def read_photo(path: Path) -> torch.Tensor:
    """A photo file -> ``(3, H, W)`` uint8 RGB tensor, EXIF orientation applied.

    Raises:
        ValueError: the reason it cannot be used (not a decodable image, a mode that is not 8-bit, no pixels).
    """
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            mode = image.mode
            pixels = np.asarray(image.convert("RGB")) if mode in EIGHT_BIT_MODES else None
    except Exception as e:  # noqa: BLE001 -- any decoder failure skips this one photo, with the reason recorded
        raise ValueError(f"unreadable image ({type(e).__name__}: {e})") from None
    if pixels is None:
        raise ValueError(f"unsupported image mode {mode!r} (8-bit images only)")
    if pixels.size == 0:
        raise ValueError("image has no pixels")
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


class _Rows:
    """Per-key results in key order; rows of skipped keys stay NaN (``faces`` / ``dropped``: 0)."""

    def __init__(self, keys: list[str], dim: int) -> None:
        count = len(keys)
        self.keys = keys
        self.status = ["pending"] * count
        self.embeddings = np.full((count, dim), np.nan, np.float32)
        self.landmarks = np.full((count, 5, 3), np.nan, np.float32)
        self.photo_landmarks = np.full((count, 5, 3), np.nan, np.float32)
        self.boxes = np.full((count, 4), np.nan, np.float32)
        self.scores = np.full(count, np.nan, np.float32)
        self.matrices = np.full((count, 2, 3), np.nan, np.float64)
        self.faces = np.zeros(count, np.int64)
        self.dropped = np.zeros(count, np.int64)


def _choose(found: Detections, how: str) -> int:
    """Index of the face to embed: the first (front-ends order faces best first) or the largest box."""
    if how == "largest":
        sides = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
        return int(torch.nan_to_num(sides, nan=-1.0).argmax())
    return 0


def embed_photos(
    images: Path,
    model_path: Path,
    out: Path,
    align: bool = True,
    landmarks: Path | None = None,
    boxes: Path | None = None,
    batch_size: int = 32,
    face: str = "best",
    min_face_size: int = 20,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, int]:
    """Embed the photos under ``images`` into ``out`` (see the module docstring); returns status counts.

    Raises:
        FileNotFoundError: ``images`` is not a folder, the model or a CSV is absent.
        ValueError: bad arguments, a malformed CSV, a model that cannot be loaded.
        ImportError: MTCNN requested (no ``landmarks``) without the ``detect`` extra.
    """
    from face.detect import CsvLandmarks, MTCNNDetector
    from face.detect.inputs import prepare_face
    from face.models import load_pretrained

    if not images.is_dir():
        raise FileNotFoundError(f"--images {images} is not a folder")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if face not in FACE_CHOICES:
        raise ValueError(f"--face must be one of {FACE_CHOICES}, got {face!r}")
    if boxes is not None and landmarks is None:
        raise ValueError("--boxes needs --landmarks (the CSV front-end)")
    detector = (
        CsvLandmarks(landmarks, boxes)
        if landmarks is not None
        else MTCNNDetector(min_face_size, device=device, batch_size=batch_size)
    )
    photos = list_photos(images)
    listed = set(photos)
    keys = photos + ([k for k in detector.names() if k not in listed] if isinstance(detector, CsvLandmarks) else [])
    if not keys:
        raise ValueError(f"no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) under {images}")
    model = load_pretrained(model_path).to(device).eval()
    size = tuple(model.img_size)
    rows = _Rows(keys, model.output_dim)

    batch: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        index = [i for i, _, _ in batch]
        crops = torch.stack([image for _, image, _ in batch]).to(device)
        keypoints = torch.stack([points for _, _, points in batch]).to(device)
        with torch.inference_mode():
            rows.embeddings[index] = model(crops, keypoints).float().cpu().numpy()
        for i in index:
            rows.status[i] = "ok"
        batch.clear()

    def embed_found(i: int, photo: torch.Tensor, found: Detections) -> None:
        """Choose a face of photo ``i``, prepare its model input and queue it (or record why not)."""
        try:
            rows.faces[i] = len(found)
            if len(found) == 0:
                raise ValueError(
                    "no landmarks for it in the CSV" if isinstance(detector, CsvLandmarks) else "no face found"
                )
            chosen = found.pick(_choose(found, face))
            rows.boxes[i], rows.scores[i] = chosen.boxes[0].numpy(), float(chosen.scores[0])
            rows.photo_landmarks[i] = chosen.landmarks[0].numpy()
            prepared = prepare_face(photo, chosen, align, size)
        except ValueError as e:
            rows.status[i] = str(e)
            return
        rows.landmarks[i], rows.matrices[i], rows.dropped[i] = (
            prepared.keypoints.numpy(),
            prepared.matrix.numpy(),
            prepared.dropped,
        )
        batch.append((i, prepared.image, prepared.keypoints))
        if len(batch) == batch_size:
            flush()

    # photos are read and detected batch_size at a time: the detector batches photos of one size
    pending: list[tuple[int, str, torch.Tensor]] = []

    def detect_pending() -> None:
        found_all = detector.detect([photo for _, _, photo in pending], [key for _, key, _ in pending])
        for (i, _, photo), found in zip(pending, found_all):
            embed_found(i, photo, found)
        pending.clear()

    for i, key in enumerate(tqdm(keys, desc="embed", unit="photo", disable=not progress)):
        path = images / key
        if Path(key).is_absolute() or ".." in Path(key).parts:
            rows.status[i] = "not inside --images (the landmark CSV must list relative paths)"
            continue
        if not path.is_file():
            rows.status[i] = "photo not found (listed in the landmark CSV)"
            continue
        try:
            pending.append((i, key, read_photo(path)))
        except ValueError as e:
            rows.status[i] = str(e)
            continue
        if len(pending) == batch_size:
            detect_pending()
    detect_pending()
    flush()

    skipped = [f"{key}: {status}" for key, status in zip(keys, rows.status) if status != "ok"]
    info = {
        "model": str(model_path),
        "model_config": {k: v for k, v in model.config.items() if k != "backend"},
        "front_end": detector.name,
        "crop": "aligned" if align else "detection",
        "size": list(size),
    }
    if isinstance(detector, MTCNNDetector):
        info["mtcnn"] = {"min_face_size": detector.min_face_size, "nms": detector.nms_source}
    else:
        info["landmarks"], info["boxes"] = str(landmarks), None if boxes is None else str(boxes)
    with atomic_open(out, "wb") as handle:
        np.savez(
            handle,
            keys=np.array(keys, dtype=str),
            status=np.array(rows.status, dtype=str),
            skipped=np.array(skipped, dtype=str),
            embeddings=rows.embeddings,
            landmarks=rows.landmarks,
            photo_landmarks=rows.photo_landmarks,
            boxes=rows.boxes,
            scores=rows.scores,
            faces=rows.faces,
            matrices=rows.matrices,
            dropped=rows.dropped,
            info=np.array(json.dumps(info)),
        )
    counts = {
        "photos": len(keys),
        "embedded": len(keys) - len(skipped),
        "skipped": len(skipped),
        "with_dropped_landmarks": int((rows.dropped > 0).sum()),
    }
    for line in skipped:
        print(f"skipped {line}")
    return counts


HELP = "embed raw photos: detect faces (MTCNN or a landmark CSV), crop to 112x112, run a model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--model", type=Path, required=True, help="checkpoint file or folder (face.load_pretrained)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz (keys, status, embeddings, ...)")
    crop = parser.add_mutually_exclusive_group()
    crop.add_argument(
        "--align", dest="align", action="store_true", default=True, help="align to the ArcFace template (default)"
    )
    crop.add_argument(
        "--no-align", dest="align", action="store_false", help="detection crop: the box resized, landmarks moved along"
    )
    parser.add_argument(
        "--landmarks", type=Path, help="landmark CSV (image, x0, y0, ..., x4, y4[, c0..c4]) instead of MTCNN"
    )
    parser.add_argument("--boxes", type=Path, help="box CSV (image, x0, y0, x1, y1[, score]) for --landmarks")
    parser.add_argument("--batch-size", type=int, default=32, help="faces per model call (default 32)")
    parser.add_argument("--face", choices=FACE_CHOICES, default="best", help="which face of a photo with several")
    parser.add_argument(
        "--min-face-size", type=int, default=20, help="MTCNN's smallest face side in pixels (default 20)"
    )
    parser.add_argument("--device", default="cpu", help="device of the model (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        counts = embed_photos(
            args.images,
            args.model,
            args.out,
            align=args.align,
            landmarks=args.landmarks,
            boxes=args.boxes,
            batch_size=args.batch_size,
            face=args.face,
            min_face_size=args.min_face_size,
            device=args.device,
            progress=not args.no_progress,
        )
    except ImportError as e:  # the optional extra: one line with the install command, not a traceback
        raise OSError(str(e)) from e
    print(f"embedded {counts['embedded']} of {counts['photos']} photo(s), skipped {counts['skipped']} -> {args.out}")
    if counts["with_dropped_landmarks"]:
        print(
            f"{counts['with_dropped_landmarks']} photo(s) had landmarks outside the photo or far off the crop, "
            "used as missing (see 'dropped' in the output)"
        )
    return 0
