"""SynthFace configuration: sizes, nuisance strengths, presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from kprpe.config import check_keys

__all__ = ["PRESETS", "SynthConfig", "synth_config"]


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`face.synth.generate` renders.

    Sizes:
        ids / images_per_id: training identities and aligned training images per identity.
        test_ids / test_images_per_id: held-out identities (disjoint from training) and their photos.
        pairs: verification pairs (half same, half different; at least 10 for 10 folds).
        photo_size: side of the raw photos in pixels.

    Nuisances (per image):
        max_roll / roll_std: in-plane rotation in degrees, normal with ``roll_std`` clipped at ``max_roll``.
        max_yaw: out-of-plane turn in degrees, uniform in ``[-max_yaw, max_yaw]`` (the nose and mouth shift).
        scale: face size in the photo relative to the 112-pixel aligned crop, uniform in the range.
        box_scale / box_aspect / box_shift: the detector box: side = ``box_scale`` x the aligned crop's extent
            (looser than the alignment, as real detection crops are), height / width in ``box_aspect``,
            centre off by a normal error of ``box_shift`` x the side on each axis; axis-aligned, so roll stays
            in the detection crop.
        occluder_prob: probability of an occluder (sunglasses / glasses on the face, or a blob over it).
        max_blur: Gaussian blur sigma up to this (photo pixels).
        low_res_prob / low_res_factor: probability and downscale range of a low-resolution round trip.
        max_noise: Gaussian pixel noise sigma up to this (grey levels).

    Output:
        recordio: also write ``train.rec`` / ``train.idx`` (+ ``train.landmarks.npy``).
        image_format: ``"jpeg"`` (quality 95) or ``"png"`` for every written image.
        seed: everything is a function of the seed (not of ``workers``).
        workers: rendering processes.
    """

    ids: int = 300
    images_per_id: int = 10
    test_ids: int = 100
    test_images_per_id: int = 4
    pairs: int = 600
    photo_size: int = 160
    max_roll: float = 30.0
    roll_std: float = 12.0
    max_yaw: float = 15.0
    scale: tuple[float, float] = (0.75, 1.0)
    box_scale: tuple[float, float] = (1.05, 1.35)
    box_aspect: tuple[float, float] = (1.0, 1.2)
    box_shift: float = 0.05
    occluder_prob: float = 0.2
    max_blur: float = 1.2
    low_res_prob: float = 0.3
    low_res_factor: tuple[float, float] = (1.5, 3.5)
    max_noise: float = 6.0
    recordio: bool = False
    image_format: str = "jpeg"
    seed: int = 0
    workers: int = 1

    def __post_init__(self) -> None:
        for name in ("ids", "images_per_id", "test_ids", "test_images_per_id", "photo_size", "workers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SynthFace {name} must be at least 1, got {getattr(self, name)}")
        if self.test_ids < 2 or self.test_images_per_id < 2:
            raise ValueError(
                "SynthFace needs test_ids >= 2 and test_images_per_id >= 2 to form same and different pairs"
            )
        if self.pairs < 10:
            raise ValueError(f"SynthFace pairs must be at least 10 (10 folds), got {self.pairs}")
        most_positive = self.test_ids * self.test_images_per_id * (self.test_images_per_id - 1) // 2
        if (self.pairs + 1) // 2 > most_positive:
            raise ValueError(
                f"{self.pairs} pairs need {(self.pairs + 1) // 2} distinct same pairs; {self.test_ids} test ids x "
                f"{self.test_images_per_id} photos give only {most_positive}: raise test_ids or test_images_per_id"
            )
        if self.image_format not in ("jpeg", "png"):
            raise ValueError(f"image_format must be 'jpeg' or 'png', got {self.image_format!r}")
        for name in ("scale", "box_scale", "box_aspect", "low_res_factor"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"SynthFace {name} must be a range 0 < low <= high, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


#: ``tiny``: seconds, for tests. ``demo``: the demo's set (about a minute on one core).
PRESETS: dict[str, SynthConfig] = {
    "tiny": SynthConfig(ids=6, images_per_id=3, test_ids=5, test_images_per_id=3, pairs=20, photo_size=128),
    "demo": SynthConfig(),
}


def synth_config(preset: str = "demo", **overrides) -> SynthConfig:
    """A preset with overrides (unknown keys raise, naming the valid ones); ``None`` values are ignored."""
    if preset not in PRESETS:
        raise ValueError(f"unknown SynthFace preset {preset!r}; presets: {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    check_keys("SynthFace config", overrides, [f.name for f in fields(SynthConfig)])
    tuples = {k: tuple(v) for k, v in overrides.items() if isinstance(v, list)}
    return replace(PRESETS[preset], **{**overrides, **tuples})
