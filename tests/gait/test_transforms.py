import numpy as np
import pytest
import torch

from kprpe_gait.data.formats import COCO_FLIP_ORDER
from kprpe_gait.transforms import AugmentParams, JointAugment, cut_sides, normalize_joints, warp_sequence

SIZE = 64


def dot_sequence(seed: int = 0, size: tuple[int, int] = (SIZE, SIZE)):
    """One frame per joint, each showing only that joint as a small Gaussian dot (sigma 1.2 px)."""
    rng = np.random.default_rng(seed)
    h, w = size
    xy = np.stack([rng.uniform(0.3 * w, 0.7 * w, 17), rng.uniform(0.3 * h, 0.7 * h, 17)], axis=-1)
    joints = np.concatenate([xy, np.ones((17, 1))], axis=-1)[None].repeat(17, axis=0).astype(np.float32)  # (T=17, J, 3)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    sils = np.stack([255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.2**2)) for x, y in xy])
    return sils.astype(np.float32), joints


def centroids(sils: np.ndarray) -> np.ndarray:
    h, w = sils.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    mass = sils.sum(axis=(1, 2))
    return np.stack([(sils * xs).sum(axis=(1, 2)) / mass, (sils * ys).sum(axis=(1, 2)) / mass], axis=-1)


def assert_dots_on_joints(sils, joints, flip: bool, tol: float = 1.0):
    """Frame t shows original joint t; after a flip that joint sits at index COCO_FLIP_ORDER[t]."""
    where = [COCO_FLIP_ORDER[t] if flip else t for t in range(17)]
    expected = np.stack([joints[t, where[t], :2] for t in range(17)])
    err = np.linalg.norm(centroids(sils) - expected, axis=-1)
    assert err.max() < tol, f"dot centroids off by up to {err.max():.3f} px"


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("flip", dict(flip_prob=1.0)),
        ("rotate", dict(rotate_prob=1.0, rotate_degree=25)),
        ("perspective", dict(perspective_prob=1.0)),
        ("affine", dict(affine_prob=1.0, scale_range=(0.8, 1.2), max_translate=0.1)),
        ("all", dict(perspective_prob=1.0, affine_prob=1.0, flip_prob=1.0, rotate_prob=1.0)),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_joint_drawn_on_the_silhouette_stays_on_it(kind, kwargs, seed):
    base = dict(perspective_prob=0.0, affine_prob=0.0, flip_prob=0.0, rotate_prob=0.0)
    aug = JointAugment(**{**base, **kwargs}, seed=seed)
    sils, joints = dot_sequence(seed)
    params = aug.sample(SIZE, SIZE)
    assert kind in params.applied or kind == "all" and len(params.applied) == 4
    out_sils, out_joints = aug.apply(sils, joints, params)
    assert out_sils.dtype == np.float32 and out_sils.shape == sils.shape
    assert_dots_on_joints(out_sils, out_joints, params.flip, tol=0.3 if kind == "flip" else 1.0)
    moved = np.linalg.norm(out_joints[..., :2] - joints[..., :2], axis=-1).max()
    assert moved > 1.0  # the transform did something


def test_cut_keeps_dots_on_joints_numpy_and_torch():
    sils, joints = dot_sequence(3)
    cut_sils, cut_joints = cut_sides(sils, joints)
    assert cut_sils.shape == (17, 64, 44) and np.allclose(cut_joints[..., 0], joints[..., 0] - 10)
    assert_dots_on_joints(cut_sils, cut_joints, flip=False, tol=0.2)
    t_sils, t_joints = cut_sides(torch.from_numpy(sils), torch.from_numpy(joints), cut=5)
    assert t_sils.shape == (17, 64, 54) and torch.allclose(t_joints[..., 0], torch.from_numpy(joints[..., 0] - 5))
    assert np.allclose(joints, dot_sequence(3)[1])  # inputs untouched
    with pytest.raises(ValueError, match="cannot cut"):
        cut_sides(sils, joints, cut=32)


def test_flip_is_an_exact_mirror_and_swaps_left_right():
    sils, joints = dot_sequence(4)
    aug = JointAugment(perspective_prob=0, flip_prob=1, rotate_prob=0)
    out, out_joints = aug(sils, joints)
    np.testing.assert_allclose(out, sils[:, :, ::-1], atol=1e-3)
    np.testing.assert_allclose(out_joints[:, 1, 0], SIZE - joints[:, 2, 0])  # left eye <- mirrored right eye
    np.testing.assert_allclose(out_joints[:, 0, 0], SIZE - joints[:, 0, 0])  # nose stays the nose


def test_normalize_joints_uses_the_frame_size_and_keeps_confidence():
    joints = np.array([[[22.0, 32.0, 0.7], [0.0, 64.0, 0.0]]], dtype=np.float32)
    out = normalize_joints(joints, 64, 44)
    np.testing.assert_allclose(out, [[[0.5, 0.5, 0.7], [0.0, 1.0, 0.0]]])
    t = normalize_joints(torch.from_numpy(joints), 64, 44)
    assert torch.is_tensor(t) and torch.allclose(t, torch.from_numpy(out))


def test_identity_draw_returns_the_input_and_seeds_replay():
    sils, joints = dot_sequence(5)
    none = JointAugment(perspective_prob=0, flip_prob=0, rotate_prob=0)
    out, out_joints = none(sils, joints)
    assert np.array_equal(out, sils) and np.array_equal(out_joints, joints)
    a = JointAugment(perspective_prob=0.5, flip_prob=0.5, rotate_prob=0.5, affine_prob=0.5, seed=7)
    b = JointAugment(perspective_prob=0.5, flip_prob=0.5, rotate_prob=0.5, affine_prob=0.5, seed=7)
    for _ in range(5):
        (sa, ja), (sb, jb) = a(sils, joints), b(sils, joints)
        assert np.array_equal(sa, sb) and np.array_equal(ja, jb)
    p1 = a.sample(64, 64, np.random.default_rng(3))
    p2 = a.sample(64, 64, np.random.default_rng(3))
    assert np.array_equal(p1.matrix, p2.matrix) and p1.applied == p2.applied


def test_missing_joints_stay_missing_without_warnings():
    sils, joints = dot_sequence(6)
    joints[:, 4, :2] = np.nan
    joints[:, 4, 2] = 0.0
    aug = JointAugment(perspective_prob=1, flip_prob=0, rotate_prob=1, seed=0)
    with np.errstate(all="raise"):
        _, out = aug(sils, joints)
    assert np.isnan(out[:, 4, :2]).all() and (out[:, 4, 2] == 0).all()
    assert np.isfinite(np.delete(out, 4, axis=1)).all()


def test_warp_sequence_with_identity_and_translation():
    sils, _ = dot_sequence(7)
    np.testing.assert_allclose(warp_sequence(sils, np.eye(3)), sils, atol=1e-3)
    shift = np.array([[1, 0, 3], [0, 1, -2], [0, 0, 1]], dtype=np.float64)
    out = warp_sequence(sils, shift)
    np.testing.assert_allclose(out[:, 10:50, 13:53], sils[:, 12:52, 10:50], atol=1e-3)


def test_clear_errors():
    sils, joints = dot_sequence(8)
    aug = JointAugment(flip_prob=1.0)
    with pytest.raises(ValueError, match="17 frames but joints have 3"):
        aug(sils, joints[:3])
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        aug(sils, joints[..., 0])
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        aug(sils[0], joints)
    with pytest.raises(ValueError, match="flip_order covers 17"):
        aug(sils, joints[:, :5])
    with pytest.raises(ValueError, match="drawn for"):
        aug.apply(sils, joints, AugmentParams(np.eye(3), False, (32, 32), ("affine",)))
    with pytest.raises(ValueError, match="rotate_prob"):
        JointAugment(rotate_prob=1.5)
