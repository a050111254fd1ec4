"""Fixtures shared by the face tests."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face.align import ARCFACE_TEMPLATE

#: image -> (template, media) of the default tiny IJB set, and its template pairs (label 1 = same person)
IJB_TIDS = {"1.jpg": (7, 100), "2.jpg": (7, 100), "3.jpg": (7, 101), "4.jpg": (9, 100), "5.jpg": (12, 102)}
IJB_PAIRS = [(7, 9, 0), (7, 12, 1), (9, 12, 0), (12, 7, 1)]


def _write_ijb(root: Path, name: str = "ijbc", tids=None, pairs=None, seed: int = 0, search=None) -> Path:
    """A tiny IJB folder (insightface's layout): random loose crops whose landmarks are a scaled, shifted
    ArcFace template, faceness scores in [0.5, 1], the template file in reverse order (joined by name).
    ``search``: ``{"1N_gallery_G1": [(template, subject), ...], ...}`` written as the 1:N CSV lists."""
    tids = IJB_TIDS if tids is None else tids
    pairs = IJB_PAIRS if pairs is None else pairs
    rng = np.random.default_rng(seed)
    (root / "loose_crop").mkdir(parents=True)
    (root / "meta").mkdir()
    lines = []
    for image in tids:
        h, w = rng.integers(90, 160, size=2)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "loose_crop" / image, quality=95)
        points = ARCFACE_TEMPLATE.numpy() * min(h, w) / 130 + rng.uniform(0, 10, size=2)
        score = rng.uniform(0.5, 1.0)
        lines.append(" ".join([image] + [f"{v:.3f}" for v in points.reshape(-1)] + [f"{score:.4f}"]))
    (root / "meta" / f"{name}_name_5pts_score.txt").write_text("\n".join(lines) + "\n")
    rows = [f"{image} {t} {m}" for image, (t, m) in reversed(list(tids.items()))]
    (root / "meta" / f"{name}_face_tid_mid.txt").write_text("\n".join(rows) + "\n")
    (root / "meta" / f"{name}_template_pair_label.txt").write_text("".join(f"{a} {b} {c}\n" for a, b, c in pairs))
    for stem, rows in (search or {}).items():
        body = "".join(f"{t},{s},img/{t}_{k}.jpg\n" for k, (t, s) in enumerate(rows))
        (root / "meta" / f"{name}_{stem}.csv").write_text("TEMPLATE_ID,SUBJECT_ID,FILENAME\n" + body)
    return root


@pytest.fixture
def write_ijb():
    """``write_ijb(root, name="ijbc", tids=None, pairs=None, seed=0)`` writes a tiny IJB folder at ``root``."""
    return _write_ijb
