"""Face backbones: the authors' ViT (none / iRPE / KP-RPE) on :mod:`kprpe.core`, and their checkpoints.

``build_model("vit_small" | "vit_base" | "vit_tiny" | {...})`` builds a :class:`FaceViT`;
``load_pretrained(path)`` loads a CVLface checkpoint (folder or file) or one written by
``save_pretrained(model, folder)``.
"""

from .pretrained import load_pretrained, save_pretrained
from .vit import PRESETS, RPE_KINDS, FaceViT, build_model

__all__ = ["PRESETS", "RPE_KINDS", "FaceViT", "build_model", "load_pretrained", "save_pretrained"]
