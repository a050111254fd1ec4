"""OpenGait's crop: every branch byte-identical to a literal re-statement of OpenGait's loop with ``cv2``, and the
dot test of the replayed geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _gait_data_helpers import dot_edge, dot_frame, dot_joint

from kprpe_gait.data.crop import DROP_NO_CENTER, DROP_TOO_FEW_PIXELS, crop_silhouette


def opengait_loop(img: np.ndarray, img_size: int = 64) -> np.ndarray | None:
    """OpenGait's ``imgs2pickle`` per-frame body written out step by step (``cv2`` as there)."""
    if img.sum() <= 10000:
        return None
    y_sum = img.sum(axis=1)
    y_top = (y_sum != 0).argmax(axis=0)
    y_btm = (y_sum != 0).cumsum(axis=0).argmax(axis=0)
    img = img[y_top : y_btm + 1, :]
    ratio = img.shape[1] / img.shape[0]
    img = cv2.resize(img, (int(img_size * ratio), img_size), interpolation=cv2.INTER_CUBIC)
    x_csum = img.sum(axis=0).cumsum()
    x_center = None
    for idx, csum in enumerate(x_csum):
        if csum > img.sum() / 2:
            x_center = idx
            break
    if not x_center:
        return None
    half_width = img_size // 2
    left, right = x_center - half_width, x_center + half_width
    if left <= 0 or right >= img.shape[1]:
        left += half_width
        right += half_width
        pad = np.zeros((img.shape[0], half_width))
        img = np.concatenate([pad, img, pad], axis=1)
    return img[:, left:right].astype("uint8")


def dot_centroid(out: np.ndarray, near: np.ndarray, body_cols: tuple[float, float], radius: float) -> np.ndarray:
    """Intensity centroid (continuous pixels) of the bright blob around ``near``, outside the body's columns."""
    ys, xs = np.mgrid[0 : out.shape[0], 0 : out.shape[1]] + 0.5
    box = (np.abs(xs - near[0]) <= radius) & (np.abs(ys - near[1]) <= radius)
    box &= (xs < body_cols[0] - 1) | (xs > body_cols[1] + 1)
    w = out.astype(np.float64) * box
    assert w.sum() > 0, "dot not found in the crop"
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


# (height, width, body (top, bottom, left, right), dot (x, y), radius): one case per branch
CASES = {
    "downscale+pad_left_edge": (240, 150, (12, 230, 10, 40), (120.3, 97.6), 9.0),  # x_c - 32 <= 0
    "downscale+pad_right_edge": (200, 400, (10, 190, 330, 380), (300.4, 120.7), 8.0),  # x_c + 32 >= width
    "downscale+no_pad": (200, 400, (20, 190, 150, 230), (262.4, 60.8), 8.0),
    "upscale+no_pad": (48, 90, (4, 44, 30, 48), (52.6, 30.3), 3.0),
    "upscale+pad": (40, 30, (0, 40, 2, 10), (22.2, 18.9), 3.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dot_lands_on_replayed_joint(case: str) -> None:
    """A dot drawn at a joint on the raw frame lands, after the crop, on the replayed joint."""
    height, width, body, dot, radius = CASES[case]
    img = dot_frame(height, width, body, dot, radius, edge=dot_edge(body[1] - body[0]))
    result = crop_silhouette(img)
    assert result.dropped is None
    g = result.geometry
    assert ("no_pad" not in case) == g.padded
    if "left_edge" in case:
        assert g.left <= 0
    if "right_edge" in case:
        assert g.left > 0 and g.left + 64 >= g.out_width
    assert ("upscale" in case) == (g.scale_y > 1)
    joint = np.array(dot_joint(img, body))
    assert np.abs(joint - dot).max() < 0.3
    mapped = g.map_points(joint)
    assert 0 < mapped[0] < 64 and 0 < mapped[1] < 64
    body_cols = (body[2] * g.scale_x - g.left, body[3] * g.scale_x - g.left)
    got = dot_centroid(result.image, mapped, body_cols, radius * g.scale_y + 2)
    np.testing.assert_allclose(got, mapped, atol=0.1)
    # the affine-matrix form is the same map
    np.testing.assert_allclose(g.matrix() @ np.array([*joint, 1.0]), mapped)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_opengait_loop(case: str) -> None:
    height, width, body, dot, radius = CASES[case]
    img = dot_frame(height, width, body, dot, radius)
    expected = opengait_loop(img)
    result = crop_silhouette(img)
    assert result.image.shape == (64, 64) and result.image.dtype == np.uint8
    np.testing.assert_array_equal(result.image, expected)


def test_vertical_extent_is_rows_with_any_foreground() -> None:
    img = np.zeros((100, 60), np.uint8)
    img[10:80, 20:40] = 255
    img[5, 50] = 255  # a single pixel above the body sets the top
    g = crop_silhouette(img).geometry
    assert (g.y_top, g.height, g.src_width, g.out_width) == (5, 75, 60, int(64 * 60 / 75))
    # a point on the top edge of row 5 maps to y = 0, the bottom edge of row 79 to y = 64
    np.testing.assert_allclose(g.map_points(np.array([[0.0, 5.0], [0.0, 80.0]]))[:, 1], [0.0, 64.0])


def test_empty_frame_threshold() -> None:
    img = np.zeros((100, 50), np.uint8)
    img[10:49, 20] = 255  # 39 pixels: sum 9945 <= 10000
    assert crop_silhouette(img).dropped == DROP_TOO_FEW_PIXELS
    img[49, 20] = 255  # 40 pixels: 10200
    assert crop_silhouette(img).dropped is None


def test_centre_at_column_zero_is_dropped() -> None:
    img = np.zeros((100, 10), np.uint8)
    img[:, 0] = 255  # all mass in the first column: OpenGait's ``if not x_center`` drops it
    assert opengait_loop(img) is None
    assert crop_silhouette(img).dropped == DROP_NO_CENTER


def test_rejects_wrong_input() -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        crop_silhouette(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="2-D uint8"):
        crop_silhouette(np.zeros((10, 10), np.float32))
    g = crop_silhouette(dot_frame(*CASES["upscale+pad"][:-1], 3.0)).geometry
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        g.map_points(np.zeros((3, 3)))


def random_silhouette(rng: np.random.Generator) -> np.ndarray:
    """A raw frame of random size holding a few random ellipses (binary, or grey with some probability),
    sometimes nearly empty or squeezed into the first columns (OpenGait's two drop rules)."""
    height, width = int(rng.integers(8, 400)), int(rng.integers(8, 300))  # resized width >= 1
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    img = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(1, height / 2 + 1), rng.uniform(0.5, width / 3 + 1)
        img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 255 if rng.random() < 0.8 else rng.integers(1, 255)
    kind = rng.random()
    if kind < 0.1:  # a segmentation failure: a few pixels
        img[img > 0] = 0
        n = int(rng.integers(1, 50))
        img[rng.integers(0, height, n), rng.integers(0, width, n)] = 255
    elif kind < 0.15:  # everything in the first columns
        img[:, 2:] = 0
    return img


def test_random_frames_match_opengait_loop_bit_for_bit() -> None:
    """Kept frames byte-identical to OpenGait's loop with ``cv2``; dropped frames dropped by both."""
    rng = np.random.default_rng(0)
    kept = dropped = 0
    for _ in range(300):
        img = random_silhouette(rng)
        expected, result = opengait_loop(img), crop_silhouette(img)
        if expected is None:
            assert result.dropped is not None
            dropped += 1
            continue
        assert result.dropped is None
        np.testing.assert_array_equal(result.image, expected)
        kept += 1
    assert kept > 200 and dropped > 20  # both paths exercised
