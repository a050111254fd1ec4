"""SynthGait: a synthetic Gait3D, in Gait3D's raw layout and as OpenGait pickles.

::

    from kprpe_gait.data.synth import SynthConfig, generate
    summary = generate("synthgait-small", SynthConfig.preset("small", seed=0))

writes (see :mod:`kprpe_gait.data.formats` for the pickle contract)::

    DIR/raw/2D_Silhouettes/<id>/<cam_video>/<seq>/human_crop_f<frame>.png   person-crop silhouettes
    DIR/raw/2D_Poses/<id>/<cam_video>/<seq>/human_crop_f<frame>.txt          pose-estimator output
    DIR/pkl/<id>/<cam_video>/<seq>/{00-sils,01-joints}.pkl                  raw/ run through pretreat-gait3d
    DIR/pkl-misaligned/...                                                   TEST_SET sequences, misaligned
    DIR/partition.json                                                       TRAIN_SET / TEST_SET / PROBE_SET
    DIR/preview.png                                                          contact sheet to look at
    DIR/synthgait.json                                                       settings, seed, counts (written last)

Each identity has its own body (segment lengths, shoulder/hip/limb widths, head size, clothing bulk)
and walking pattern (cadence, stride, knee lift, arm swing, asymmetry, ...; :mod:`.walker`). Each of its
sequences gets, independently of the identity, a camera (elevation, corridor direction), a walking
direction (side views both ways, oblique, front/back), speed, length, camera distance with drift,
clothing (coat, backpack, hand bag) and a start phase. Frames are rendered as filled body parts
(:mod:`.render`) in a person crop with detector-like margins. The pose files hold the exact COCO-17
joints of the model plus pose-estimator errors: Gaussian jitter (larger on the far side of the body
and at the extremities), occasional outliers and left/right leg swaps, lower confidence on occluded
joints, missing joints (confidence 0). Some silhouette frames are missing or broken (nearly empty,
dropped by OpenGait's filter) and some pose files are missing, so pairing matters.

``pkl/`` is produced by running :func:`kprpe_gait.data.pretreat.pretreat_gait3d` on ``raw/``; the
misaligned split applies :mod:`.misalign` to ``pkl/``'s test sequences. Everything is a function of the
seed: every identity, sequence and misalignment has its own random stream derived from
``(seed, purpose, identity index, sequence index)``, so output bytes do not depend on ``workers``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from . import walker as W
from .formats import NUM_JOINTS, PARTITION_KEYS, probe_key
from .io import (
    atomic_save_png,
    atomic_write_bytes,
    clean_staging,
    format_pose_line,
    load_sequence,
    sequence_complete,
    write_sequence,
)
from .misalign import MisalignConfig, misalign_sequence
from .pretreat import POSE_DIR_NAME, SIL_DIR_NAME, pretreat_gait3d, run_tasks
from .preview import contact_sheet
from .render import Outfit, Projector, body_shapes, rasterize, shapes_bbox

GENERATOR_VERSION = 1
SETTINGS_NAME = "synthgait.json"

# purposes of the random streams (part of the seed sequence, so streams never overlap)
_PLAN, _IDENTITY, _SEQUENCE, _CAMERA, _MISALIGN, _SPLIT, _PROBE = range(7)

VIDEO_SIZE = (1920, 1080)  # the virtual video frame the crop origins (pose files' leading numbers) refer to


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


@dataclass(frozen=True)
class SynthConfig:
    """SynthGait settings. ``SynthConfig.preset(name, **overrides)`` gives the named sizes.

    Attributes:
        num_ids / num_train_ids: identities in all / in TRAIN_SET (the rest is TEST_SET).
        seqs_per_id: sequences per identity.
        min_frames / max_frames: frames rendered per sequence (before drops), inclusive.
        person_height: range of the person's height in raw crop pixels (camera distance).
        pose_noise: range of the per-sequence pose-estimator noise std, fraction of stature.
        joint_missing_prob / joint_outlier_prob: per joint and frame.
        limb_swap_prob: per frame, the estimator swaps the left and right leg.
        sil_drop_prob / pose_drop_prob / sil_broken_prob: per frame, no PNG / no pose file / a
            nearly empty PNG.
        misalign: ranges of the misaligned test split.
    """

    num_ids: int = 80
    num_train_ids: int = 50
    seqs_per_id: int = 5
    min_frames: int = 20
    max_frames: int = 60
    person_height: tuple[int, int] = (72, 140)
    fps: float = 25.0
    num_cameras: int = 40
    seed: int = 0
    pose_noise: tuple[float, float] = (0.004, 0.012)
    joint_missing_prob: float = 0.02
    joint_outlier_prob: float = 0.01
    limb_swap_prob: float = 0.01
    sil_drop_prob: float = 0.02
    pose_drop_prob: float = 0.01
    sil_broken_prob: float = 0.01
    misalign: MisalignConfig = field(default_factory=MisalignConfig)

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(f"SynthConfig: {msg}")

        if self.num_ids < 2 or not 1 <= self.num_train_ids < self.num_ids:
            bad(f"need num_ids >= 2 and 1 <= num_train_ids < num_ids, got {self.num_ids}, {self.num_train_ids}")
        if self.num_ids > 10000:
            bad(f"ids are 4-digit strings, so num_ids <= 10000, got {self.num_ids}")
        if self.seqs_per_id < 1:
            bad(f"seqs_per_id must be >= 1, got {self.seqs_per_id}")
        if not 1 <= self.min_frames <= self.max_frames:
            bad(f"need 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")
        if not 32 <= self.person_height[0] <= self.person_height[1]:
            bad(f"person_height must be an increasing range from >= 32 px, got {self.person_height}")
        if not 0 <= self.pose_noise[0] <= self.pose_noise[1]:
            bad(f"pose_noise must be an increasing range >= 0, got {self.pose_noise}")
        for name in (
            "joint_missing_prob",
            "joint_outlier_prob",
            "limb_swap_prob",
            "sil_drop_prob",
            "pose_drop_prob",
            "sil_broken_prob",
        ):
            if not 0 <= getattr(self, name) <= 0.5:
                bad(f"{name} must be in [0, 0.5], got {getattr(self, name)}")
        if self.fps <= 0 or self.num_cameras < 1:
            bad(f"fps must be > 0 and num_cameras >= 1, got {self.fps}, {self.num_cameras}")

    @classmethod
    def preset(cls, name: str, **overrides) -> SynthConfig:
        """A named size (:data:`PRESETS`) with some fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown SynthGait size {name!r}; choose from {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["person_height"], d["pose_noise"] = list(self.person_height), list(self.pose_noise)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"SynthConfig: unknown keys {sorted(unknown)}")
        data = dict(data)
        if isinstance(data.get("misalign"), dict):
            data["misalign"] = MisalignConfig(**data["misalign"])
        for key in ("person_height", "pose_noise"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


#: named sizes; ``tiny`` runs in seconds (tests), ``small`` feeds ``kprpe-gait demo``
PRESETS: dict[str, dict] = {
    "tiny": {
        "num_ids": 8,
        "num_train_ids": 4,
        "seqs_per_id": 3,
        "min_frames": 20,
        "max_frames": 26,
        "person_height": (64, 90),
    },
    "small": {
        "num_ids": 80,
        "num_train_ids": 50,
        "seqs_per_id": 5,
        "min_frames": 20,
        "max_frames": 60,
        "person_height": (72, 140),
    },
    "medium": {
        "num_ids": 300,
        "num_train_ids": 200,
        "seqs_per_id": 6,
        "min_frames": 20,
        "max_frames": 100,
        "person_height": (80, 180),
    },
    "large": {
        "num_ids": 4000,
        "num_train_ids": 3000,
        "seqs_per_id": 6,
        "min_frames": 20,
        "max_frames": 100,
        "person_height": (80, 200),
    },
}


@dataclass(frozen=True)
class SeqSpec:
    """One sequence to generate: ``identity/camid{cam}_videoid{video}/{seq_name}``."""

    id_index: int
    seq_index: int
    identity: str
    cam: int
    video: int
    seq_name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.identity, f"camid{self.cam}_videoid{self.video}", self.seq_name)


def identity_name(index: int) -> str:
    return f"{index:04d}"


def plan_sequences(cfg: SynthConfig) -> list[SeqSpec]:
    """Every sequence of the data set, in identity order (cameras drawn per identity, not by id)."""
    specs = []
    for i in range(cfg.num_ids):
        rng = _rng(cfg.seed, _PLAN, i)
        counts: dict[tuple[int, int], int] = {}
        for k in range(cfg.seqs_per_id):
            cam, video = int(rng.integers(0, cfg.num_cameras)), int(rng.integers(1, 4))
            n = counts.get((cam, video), 0)
            counts[(cam, video)] = n + 1
            specs.append(SeqSpec(i, k, identity_name(i), cam, video, f"seq{n}"))
    return specs


def split_identities(cfg: SynthConfig) -> tuple[list[str], list[str]]:
    """``(train ids, test ids)``, a seeded random split."""
    order = _rng(cfg.seed, _SPLIT).permutation(cfg.num_ids)
    test = sorted(identity_name(int(i)) for i in order[: cfg.num_ids - cfg.num_train_ids])
    train = sorted(identity_name(int(i)) for i in order[cfg.num_ids - cfg.num_train_ids :])
    return train, test


def identity_params(cfg: SynthConfig, id_index: int) -> tuple[W.Body, W.Gait]:
    rng = _rng(cfg.seed, _IDENTITY, id_index)
    return W.sample_body(rng), W.sample_gait(rng)


@dataclass(frozen=True)
class CameraSetup:
    """A fixed camera: how much it looks down, the corridor direction people mostly walk along, and
    its distance (person height in pixels before per-sequence variation)."""

    elevation: float
    corridor: float
    height_px: float


def camera_setup(cfg: SynthConfig, cam: int) -> CameraSetup:
    rng = _rng(cfg.seed, _CAMERA, cam)
    lo, hi = cfg.person_height
    return CameraSetup(np.deg2rad(rng.uniform(0.0, 25.0)), rng.uniform(0.0, np.pi), rng.uniform(lo, hi))


@dataclass(frozen=True)
class SeqParams:
    """Everything about one sequence that is not the identity."""

    gait_speed: float
    outfit: Outfit
    camera: W.Camera
    num_frames: int
    height_px: float
    drift: float  # relative change of the person's pixel height over the sequence
    phase0: float
    start_frame: int
    noise: float
    margins: tuple[float, float, float, float]  # left, right, top, bottom, fractions of height
    video_origin: tuple[float, float]

    def scale_at(self, index: int) -> float:
        """The person's height in pixels at frame ``index`` (linear drift centred on the sequence)."""
        return self.height_px * (1.0 + self.drift * (index / max(self.num_frames - 1, 1) - 0.5))


def sequence_params(cfg: SynthConfig, spec: SeqSpec, rng: np.random.Generator) -> SeqParams:
    setup = camera_setup(cfg, spec.cam)
    r = rng.random()
    if r < 0.75:  # along the camera's corridor, either way
        yaw = setup.corridor + (np.pi if rng.random() < 0.5 else 0.0) + rng.normal(0.0, np.deg2rad(15))
    else:  # anywhere
        yaw = rng.uniform(0, 2 * np.pi)
    outfit = Outfit(
        bulk=rng.uniform(0.96, 1.06),
        coat=rng.uniform(0.12, 0.3) if rng.random() < 0.25 else 0.0,
        backpack=rng.uniform(0.06, 0.12) if rng.random() < 0.15 else 0.0,
        bag_side=int(rng.choice([-1, 1])) if rng.random() < 0.15 else 0,
    )
    lo, hi = cfg.person_height
    height = float(np.clip(setup.height_px * rng.uniform(0.85, 1.15), lo, hi))
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    # walking towards (away from) the camera makes the person grow (shrink)
    drift = -0.25 * np.sin(yaw) * num_frames / 60 + rng.normal(0.0, 0.03)
    return SeqParams(
        gait_speed=rng.uniform(0.85, 1.15),
        outfit=outfit,
        camera=W.Camera(float(yaw), float(setup.elevation)),
        num_frames=num_frames,
        height_px=height,
        drift=float(drift),
        phase0=rng.uniform(0, 1),
        start_frame=int(rng.integers(0, 30000)),
        noise=rng.uniform(*cfg.pose_noise),
        margins=(rng.uniform(0.04, 0.12), rng.uniform(0.04, 0.12), rng.uniform(0.02, 0.07), rng.uniform(0.01, 0.05)),
        video_origin=(rng.uniform(300, 1500), rng.uniform(100, 500)),
    )


@dataclass(frozen=True)
class RawFrame:
    """One rendered frame: the crop, its exact joints (continuous crop pixels) and the crop's origin."""

    image: np.ndarray
    joints: np.ndarray  # (17, 2)
    origin: tuple[int, int]


def render_frame(
    body: W.Body, gait: W.Gait, params: SeqParams, index: int, fps: float, rng: np.random.Generator
) -> RawFrame:
    """Render frame ``index`` of a sequence into a detector-like person crop."""
    t = index / fps
    pose = W.pose_3d(body, gait, t, params.phase0)
    scale = params.scale_at(index)
    proj = Projector(params.camera, scale, (0.0, 0.0))
    shapes = body_shapes(pose, body, params.outfit, proj)
    x0, y0, x1, y1 = shapes_bbox(shapes)
    ml, mr, mt, mb = (m * scale * rng.uniform(0.7, 1.3) for m in params.margins)
    cx0, cy0 = int(np.floor(x0 - ml)), int(np.floor(y0 - mt))
    width, height = int(np.ceil(x1 + mr)) - cx0, int(np.ceil(y1 + mb)) - cy0
    image = rasterize(shapes, width, height, offset=(cx0, cy0))
    joints = proj(pose.points[:NUM_JOINTS]) - np.array([cx0, cy0])
    # the crop's place in the virtual video frame: walking moves it across the image
    walked = 1.1 * t * gait.cadence * scale * np.cos(params.camera.yaw)
    origin = (
        int(np.clip(params.video_origin[0] + walked, 0, VIDEO_SIZE[0] - 1)),
        int(np.clip(params.video_origin[1], 0, VIDEO_SIZE[1] - 1)),
    )
    return RawFrame(image, joints, origin)


_FAR_SIDE_JOINTS = {1: (1, 3, 5, 7, 9, 11, 13, 15), -1: (2, 4, 6, 8, 10, 12, 14, 16)}
_JOINT_NOISE = np.array([1.0] * 5 + [1.0, 1.0, 1.3, 1.3, 1.7, 1.7, 1.1, 1.1, 1.3, 1.3, 1.6, 1.6])
_LEG_SWAP = ((13, 14), (15, 16))


def estimate_pose(
    exact: np.ndarray,
    image_size: tuple[int, int],
    scale: float,
    params: SeqParams,
    cfg: SynthConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """A pose estimator's view of the exact joints.

    Args:
        exact: ``(17, 2)`` exact joints in continuous crop pixels.
        image_size: ``(width, height)`` of the crop.
        scale: the person's height in pixels.

    Returns:
        ``(17, 3)`` in the estimator's pixel-index convention (``x - 0.5``), confidence in ``[0, 1]``.
    """
    far = params.camera.far_side_weight()
    conf = rng.uniform(0.7, 0.97, NUM_JOINTS)
    sigma = params.noise * scale * _JOINT_NOISE
    far_idx = list(_FAR_SIDE_JOINTS[params.camera.far_side()])
    conf[far_idx] *= 1.0 - 0.5 * far * rng.uniform(0.5, 1.0, len(far_idx))
    sigma[far_idx] *= 1.0 + far
    xy = exact + rng.normal(0.0, 1.0, (NUM_JOINTS, 2)) * sigma[:, None]
    outlier = rng.random(NUM_JOINTS) < cfg.joint_outlier_prob
    if outlier.any():
        angle = rng.uniform(0, 2 * np.pi, outlier.sum())
        dist = rng.uniform(0.05, 0.15, outlier.sum()) * scale
        xy[outlier] += np.stack([np.cos(angle), np.sin(angle)], axis=1) * dist[:, None]
        conf[outlier] *= rng.uniform(0.3, 0.7, outlier.sum())
    if rng.random() < cfg.limb_swap_prob:
        for a, b in _LEG_SWAP:
            xy[[a, b]] = xy[[b, a]]
    out = np.zeros((NUM_JOINTS, 3))
    out[:, 0] = np.clip(xy[:, 0] - 0.5, 0, image_size[0] - 1)
    out[:, 1] = np.clip(xy[:, 1] - 0.5, 0, image_size[1] - 1)
    out[:, 2] = conf
    missing = rng.random(NUM_JOINTS) < cfg.joint_missing_prob
    out[missing] = 0.0
    return out


def _broken_silhouette(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A segmentation failure: a few white pixels left (OpenGait's filter drops the frame)."""
    out = np.zeros_like(image)
    ys, xs = np.nonzero(image)
    keep = rng.choice(len(ys), size=min(len(ys), int(rng.integers(1, 30))), replace=False)
    out[ys[keep], xs[keep]] = 255
    return out


@dataclass(frozen=True)
class _RenderTask:
    cfg: SynthConfig
    spec: SeqSpec
    raw_root: Path


def render_sequence(task: _RenderTask) -> dict:
    """Render one sequence into ``raw/``; returns its frame counts (rendered, without silhouette, without
    pose, without either, with a broken silhouette)."""
    cfg, spec = task.cfg, task.spec
    body, gait = identity_params(cfg, spec.id_index)
    rng = _rng(cfg.seed, _SEQUENCE, spec.id_index, spec.seq_index)
    params = sequence_params(cfg, spec, rng)
    gait = W.with_speed(gait, params.gait_speed)
    sil_dir = task.raw_root.joinpath(SIL_DIR_NAME, *spec.key)
    pose_dir = task.raw_root.joinpath(POSE_DIR_NAME, *spec.key)
    # raw files are written directly: the data set is complete only once synthgait.json exists
    sil_dir.mkdir(parents=True, exist_ok=True)
    pose_dir.mkdir(parents=True, exist_ok=True)
    counts = {
        "frames": params.num_frames,
        "silhouette_missing": 0,
        "pose_missing": 0,
        "both_missing": 0,
        "silhouette_broken": 0,
    }
    for index in range(params.num_frames):
        frame = render_frame(body, gait, params, index, cfg.fps, rng)
        height, width = frame.image.shape
        pose = estimate_pose(frame.joints, (width, height), params.scale_at(index), params, cfg, rng)
        name = f"human_crop_f{params.start_frame + index:05d}"
        drop_sil, drop_pose, broken = rng.random(3) < (cfg.sil_drop_prob, cfg.pose_drop_prob, cfg.sil_broken_prob)
        if drop_sil:
            counts["silhouette_missing"] += 1
        else:
            image = _broken_silhouette(frame.image, rng) if broken else frame.image
            counts["silhouette_broken"] += int(broken)
            Image.fromarray(image).save(sil_dir / f"{name}.png", format="PNG")
        if drop_pose:
            counts["pose_missing"] += 1
            counts["both_missing"] += int(drop_sil)
        else:
            (pose_dir / f"{name}.txt").write_text(format_pose_line(pose, frame.origin))
    return counts


@dataclass(frozen=True)
class _MisalignTask:
    cfg: SynthConfig
    spec: SeqSpec
    src: Path
    dst: Path


def misalign_task(task: _MisalignTask) -> bool:
    """Write the misaligned copy of one pretreated sequence; ``False`` when it has no pickles."""
    if not sequence_complete(task.src):
        return False
    sils, joints = load_sequence(task.src)
    rng = _rng(task.cfg.seed, _MISALIGN, task.spec.id_index, task.spec.seq_index)
    write_sequence(task.dst, *misalign_sequence(sils, joints, rng, task.cfg.misalign))
    return True


def make_partition(cfg: SynthConfig, specs: list[SeqSpec], pkl_root: Path) -> dict[str, list[str]]:
    """TRAIN_SET / TEST_SET ids and one probe per test id among its written sequences."""
    train, test = split_identities(cfg)
    test_set = set(test)
    by_id: dict[str, list[SeqSpec]] = {}
    for spec in specs:
        if spec.identity in test_set and sequence_complete(pkl_root.joinpath(*spec.key)):
            by_id.setdefault(spec.identity, []).append(spec)
    probes = []
    for identity in test:
        candidates = by_id.get(identity, [])
        if candidates:
            pick = candidates[int(_rng(cfg.seed, _PROBE, candidates[0].id_index).integers(len(candidates)))]
            probes.append(probe_key(*pick.key))
    return dict(zip(PARTITION_KEYS, (train, test, probes)))


def preview_keys(specs: list[SeqSpec]) -> list[tuple[str, str, str]]:
    """Sequences the preview may show: the first sequence of every identity, in identity order."""
    return [spec.key for spec in specs if spec.seq_index == 0]


def _check_out_dir(out_dir: Path, cfg: SynthConfig) -> dict | None:
    """``None`` to generate; the stored summary when ``out_dir`` already holds this exact data set."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder")
    settings = out_dir / SETTINGS_NAME
    if settings.is_file():
        stored = json.loads(settings.read_text())
        if stored.get("config") == cfg.to_dict() and stored.get("version") == GENERATOR_VERSION:
            return stored
        raise FileExistsError(f"{out_dir}: holds a SynthGait data set with other settings; choose another --out")
    if any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir}: not empty and has no {SETTINGS_NAME} (an interrupted run?); delete it or choose another --out"
        )
    return None


def generate(
    out_dir: str | os.PathLike, config: SynthConfig | None = None, *, workers: int = 1, progress: bool = True
) -> dict:
    """Generate SynthGait into ``out_dir`` (see the module docstring for the layout).

    ``out_dir`` must be absent or empty; if it already holds a complete data set with the same settings
    (``synthgait.json`` is written last), nothing is redone and the stored summary is returned.

    Returns:
        the summary stored in ``synthgait.json``: settings, counts of sequences and frames, the
        pretreatment summary and the partition sizes.
    """
    cfg = config or SynthConfig()
    out_dir = Path(out_dir)
    stored = _check_out_dir(out_dir, cfg)
    if stored is not None:
        return stored
    out_dir.mkdir(parents=True, exist_ok=True)
    raw, pkl, mis = out_dir / "raw", out_dir / "pkl", out_dir / "pkl-misaligned"
    specs = plan_sequences(cfg)

    render_counts = {"frames": 0, "silhouette_missing": 0, "pose_missing": 0, "both_missing": 0, "silhouette_broken": 0}
    for counts in run_tasks(
        [_RenderTask(cfg, s, raw) for s in specs], render_sequence, workers, "synth: render", progress
    ):
        for k, v in counts.items():
            render_counts[k] += v

    pre = pretreat_gait3d(raw / SIL_DIR_NAME, raw / POSE_DIR_NAME, pkl, workers=workers, progress=progress)

    test_set = set(split_identities(cfg)[1])
    mis_tasks = [
        _MisalignTask(cfg, s, pkl.joinpath(*s.key), mis.joinpath(*s.key)) for s in specs if s.identity in test_set
    ]
    misaligned = sum(run_tasks(mis_tasks, misalign_task, workers, "synth: misalign", progress))
    clean_staging(mis, remove=True)  # write_sequence staged the pickles there

    partition = make_partition(cfg, specs, pkl)
    atomic_write_bytes(out_dir / "partition.json", (json.dumps(partition, indent=2) + "\n").encode())

    atomic_save_png(out_dir / "preview.png", contact_sheet(raw, preview_keys(specs)))

    summary = {
        "generator": "SynthGait",
        "version": GENERATOR_VERSION,
        "config": cfg.to_dict(),
        "sequences": len(specs),
        "raw": render_counts,
        "pretreat": pre.to_dict(),
        "misaligned_sequences": int(misaligned),
        "partition": {k: len(v) for k, v in partition.items()},
    }
    atomic_write_bytes(out_dir / SETTINGS_NAME, (json.dumps(summary, indent=2) + "\n").encode())
    return summary
