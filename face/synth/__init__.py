"""SynthFace: synthetic face identities whose identity lives in geometry relative to the five landmarks,
photographed with pose, expression, illumination, occluders, blur and low resolution, and written in the
formats of :mod:`face.data` (see :mod:`face.synth.render` for why it is built this way)."""

from face.synth.config import PRESETS, SynthConfig, synth_config
from face.synth.generate import generate
from face.synth.render import Camera, Identity, Photo, render_photo, sample_identity

__all__ = [
    "PRESETS",
    "Camera",
    "Identity",
    "Photo",
    "SynthConfig",
    "generate",
    "render_photo",
    "sample_identity",
    "synth_config",
]
