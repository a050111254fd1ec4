"""MTCNN (``facenet-pytorch``) as a face detector front-end: boxes, five landmarks and scores.

An optional extra: its weights ship inside the ``facenet-pytorch`` wheel (nothing is downloaded), but the
wheel pins torch < 2.3, so it is installed without its dependencies::

    pip install "kprpe[detect]"                      # requests, which facenet-pytorch imports
    pip install --no-deps facenet-pytorch==2.6.0

facenet-pytorch imports ``torchvision`` for one function, ``torchvision.ops.boxes.batched_nms`` (plus
``torchvision.transforms.functional``, used only by its face-extraction helpers, which this module does not
call). When torchvision imports, it is used. When it does not -- absent, or the PyPI wheel beside a CPU
build of torch, which fails with ``operator torchvision::nms does not exist`` -- facenet-pytorch is imported
with a stand-in ``torchvision`` that holds only :func:`face.detect.nms.batched_nms` (same results as
torchvision's, tested); the stand-in is in ``sys.modules`` only while facenet-pytorch's modules load, so
nothing else ever sees it. :attr:`MTCNNDetector.nms_source` says which NMS runs and why.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from face.detect.base import Detections, FaceDetector
from face.detect.nms import batched_nms

__all__ = ["INSTALL_HINT", "MTCNNDetector", "load_facenet_mtcnn"]

INSTALL_HINT = 'pip install "kprpe[detect]" && pip install --no-deps facenet-pytorch==2.6.0'


def _stand_in_torchvision() -> dict[str, types.ModuleType]:
    """Module objects for exactly the names facenet-pytorch imports from torchvision."""

    def unavailable(name: str):
        raise AttributeError(
            f"torchvision.transforms.functional.{name}: torchvision does not import here; face.detect runs "
            "MTCNN's detection only, which does not need it"
        )

    root = types.ModuleType("torchvision", "stand-in for facenet-pytorch's import; see face.detect.mtcnn")
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    boxes.batched_nms = ops.batched_nms = batched_nms
    functional.__getattr__ = unavailable
    root.ops, ops.boxes, root.transforms, transforms.functional = ops, boxes, transforms, functional
    return {m.__name__: m for m in (root, ops, boxes, transforms, functional)}


@contextlib.contextmanager
def _torchvision_replaced() -> Iterator[None]:
    """Put the stand-in in ``sys.modules`` for the duration; restore what was there (leftovers included)."""
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "torchvision"}
    for name in saved:
        del sys.modules[name]
    stand_in = _stand_in_torchvision()
    sys.modules.update(stand_in)
    try:
        yield
    finally:
        for name in stand_in:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _torchvision_problem() -> str | None:
    """None when ``torchvision.ops`` imports, else why not."""
    try:
        importlib.import_module("torchvision.ops")
    except Exception as e:  # noqa: BLE001 -- a broken install raises RuntimeError / OSError, not ImportError
        return f"{type(e).__name__}: {e}"
    return None


def load_facenet_mtcnn() -> tuple[type, types.ModuleType, str]:
    """Import facenet-pytorch's MTCNN.

    Returns:
        ``(MTCNN class, its detect_face module, nms_source)``; ``nms_source`` names the NMS in use and, for
        the stand-in, why torchvision was not used.

    Raises:
        ImportError: naming the ``detect`` extra and the install commands when facenet-pytorch (or a module
            it imports) is missing.
    """
    problem = _torchvision_problem()
    try:
        if problem is None:
            mtcnn = importlib.import_module("facenet_pytorch.models.mtcnn")
        else:
            with _torchvision_replaced():
                mtcnn = importlib.import_module("facenet_pytorch.models.mtcnn")
        detect_face = importlib.import_module("facenet_pytorch.models.utils.detect_face")
    except ImportError as e:
        raise ImportError(
            f"the MTCNN detector needs the optional extra 'detect' ({e}); install it with: {INSTALL_HINT} "
            "(or give the landmarks in a CSV with --landmarks)"
        ) from e
    if getattr(detect_face, "batched_nms", None) is batched_nms:
        source = f"face.detect.nms.batched_nms (torchvision unusable: {problem or 'imported before it was'})"
    else:
        import torchvision

        source = f"torchvision {torchvision.__version__}"
    return mtcnn.MTCNN, detect_face, source


class MTCNNDetector(FaceDetector):
    """Boxes, five landmarks and scores from MTCNN (P-Net, R-Net, O-Net cascade; facenet-pytorch's weights).

    Args:
        min_face_size: smallest face side searched for, in pixels (MTCNN's ``minsize``).
        thresholds: score thresholds of the three stages.
        factor: scale step of the image pyramid.
        device: where the networks run.
        batch_size: photos of one size detected in one pass of the cascade.

    Attributes:
        nms_source: which ``batched_nms`` facenet-pytorch calls (torchvision, or :mod:`face.detect.nms` and
            why torchvision was not usable).

    Boxes and landmarks come as MTCNN gives them (its boxes carry MATLAB's +-1 pixel conventions, well below
    the detector's own error); faces are ordered by decreasing score; landmark confidence is 1.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        if min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 (P-Net's window), got {min_face_size}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size
        mtcnn_class, module, self.nms_source = load_facenet_mtcnn()
        self._detect_face = module.detect_face
        self.min_face_size = int(min_face_size)
        self.thresholds = [float(t) for t in thresholds]
        self.factor = float(factor)
        self.device = torch.device(device)
        self.networks = mtcnn_class(
            min_face_size=self.min_face_size, thresholds=self.thresholds, factor=self.factor, device=self.device
        ).eval()

    def __repr__(self) -> str:
        return (
            f"MTCNNDetector(min_face_size={self.min_face_size}, thresholds={self.thresholds}, "
            f"factor={self.factor}, device={self.device}, batch_size={self.batch_size}, nms={self.nms_source!r})"
        )

    def detect(self, images: Sequence[torch.Tensor], keys: Sequence[str] | None = None) -> list[Detections]:
        """Faces on each photo; photos of one size go through the networks together, ``batch_size`` at a
        time (facenet-pytorch batches only equal sizes), so a folder of same-size photos costs fewer passes.
        The result of a photo does not depend on its batch (tested)."""
        for image in images:
            if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
                raise ValueError(f"images must be (3, H, W) uint8 RGB tensors, got {tuple(image.shape)} {image.dtype}")
        results: list[Detections] = [Detections.empty()] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            if min(image.shape[1:]) >= self.min_face_size:  # else no pyramid level fits: MTCNN would fail on it
                by_size.setdefault((int(image.shape[1]), int(image.shape[2])), []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for i, found in zip(chunk, self._detect_batch(torch.stack([images[i] for i in chunk]))):
                    results[i] = found
        return results

    def _detect_batch(self, batch: torch.Tensor) -> list[Detections]:
        """MTCNN on ``(B, 3, H, W)`` uint8 photos of one size."""
        nets = self.networks
        with torch.no_grad():
            boxes, points = self._detect_face(
                batch.permute(0, 2, 3, 1),  # (B, H, W, 3), the layout facenet-pytorch takes
                self.min_face_size,
                nets.pnet,
                nets.rnet,
                nets.onet,
                self.thresholds,
                self.factor,
                self.device,
            )
        out = []
        for image_boxes, image_points in zip(boxes, points):
            found = np.asarray(image_boxes, dtype=np.float32).reshape(-1, 5)  # (F, x0 y0 x1 y1 score)
            marks = np.asarray(image_points, dtype=np.float32).reshape(-1, 5, 2)
            order = np.argsort(-found[:, 4], kind="stable")
            found, marks = torch.from_numpy(found[order]), torch.from_numpy(marks[order])
            confidence = torch.ones(marks.shape[0], 5, 1)
            out.append(Detections(found[:, :4], torch.cat([marks, confidence], -1), found[:, 4]))
        return out
