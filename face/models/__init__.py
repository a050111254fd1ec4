"""Face backbones on :mod:`kprpe.core`: the authors' ViT (none / iRPE / KP-RPE) and Swin (KP-RPE / Swin V2's
bias / none), and their checkpoints.

``build_model("vit_small" | "vit_base" | "swin_small" | "swin_base" | ... | {...})`` builds a
:class:`FaceViT` or :class:`FaceSwin`; ``load_pretrained(path)`` loads a CVLface checkpoint (folder or file,
either architecture, inferred from its keys) or one written by ``save_pretrained(model, folder)``.
"""

from .build import ARCHS, PRESETS, arch_of, build_model
from .pretrained import load_pretrained, save_pretrained
from .swin import FaceSwin
from .vit import RPE_KINDS, FaceViT

__all__ = [
    "ARCHS", "PRESETS", "RPE_KINDS", "FaceSwin", "FaceViT", "arch_of", "build_model", "load_pretrained",
    "save_pretrained",
]  # fmt: skip
