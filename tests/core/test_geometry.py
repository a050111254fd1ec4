import math

import pytest
import torch

from kprpe.core import keypoint_offsets, patch_centers, split_keypoints


def test_patch_centers_are_row_major_xy_in_unit_square():
    grid = patch_centers(2, 3)
    expected = torch.tensor(
        [[1 / 6, 1 / 4], [3 / 6, 1 / 4], [5 / 6, 1 / 4], [1 / 6, 3 / 4], [3 / 6, 3 / 4], [5 / 6, 3 / 4]]
    )
    torch.testing.assert_close(grid, expected)
    assert patch_centers(4, 4, dtype=torch.float64).dtype == torch.float64


def test_split_keypoints_marks_nan_and_low_confidence_invalid_without_nan():
    kp = torch.tensor([[[0.2, 0.3, 0.9], [math.nan, 0.5, 0.9], [0.4, 0.4, 0.0], [0.6, 0.6, 0.3], [0.1, math.inf, 1.0]]])
    coords, valid = split_keypoints(kp, 5, min_confidence=0.25)
    assert valid.tolist() == [[True, False, False, True, False]]
    assert torch.isfinite(coords).all()
    assert coords[0, 1].tolist() == [0.0, 0.0] and coords[0, 0].tolist() == pytest.approx([0.2, 0.3])
    coords, valid = split_keypoints(kp[..., :2], 5)
    assert valid.tolist() == [[True, False, True, True, False]]  # no confidence: only non-finite is invalid


@pytest.mark.parametrize(
    "kp, n, match",
    [
        (torch.rand(2, 5), None, r"\(B, L, 2\)"),
        (torch.rand(2, 5, 4), None, r"\(B, L, 2\)"),
        (torch.rand(2, 4, 2), 5, "built for 5"),
        (torch.ones(2, 5, 2, dtype=torch.int64), None, "floating point"),
    ],
)
def test_split_keypoints_errors(kp, n, match):
    with pytest.raises((ValueError, TypeError), match=match):
        split_keypoints(kp, n)


def test_offsets_are_grid_minus_keypoint_interleaved_and_zero_when_invalid():
    grid = patch_centers(2, 2)
    coords = torch.tensor([[[0.25, 0.5], [0.9, 0.1]]])
    valid = torch.tensor([[True, False]])
    d = keypoint_offsets(coords, valid, grid)
    assert d.shape == (1, 4, 4)
    # token 3 centre (0.75, 0.75): [dx0, dy0, dx1, dy1]
    torch.testing.assert_close(d[0, 3], torch.tensor([0.5, 0.25, 0.0, 0.0]))
