import math

import numpy as np
import pytest
import torch

from face.align import normalise_landmarks
from face.landmarks import flip_landmarks, read_landmark_csv, write_landmark_csv


def _image_with_marks(width: int, height: int, points: np.ndarray) -> np.ndarray:
    """An (H, W) image whose pixel at landmark k holds k + 1 (integer pixel landmarks)."""
    image = np.zeros((height, width), np.int64)
    for k, (x, y) in enumerate(points):
        image[int(y), int(x)] = k + 1
    return image


def test_flip_pixel_landmarks_follow_the_mirrored_image():
    points = np.array([[3, 4], [11, 4], [7, 8], [4, 12], [10, 12]], np.float64)  # a face on a 16x20 image
    image = _image_with_marks(16, 20, points)
    mirrored = image[:, ::-1]
    flipped = flip_landmarks(points, width=16)
    for k, (x, y) in enumerate(flipped):
        # the k-th flipped landmark sits on the mark of its mirror partner
        assert mirrored[int(y), int(x)] == [2, 1, 3, 5, 4][k]
    # left eye stays the one with the smaller x
    assert flipped[0, 0] < flipped[1, 0] and flipped[3, 0] < flipped[4, 0]


def test_flip_normalised_agrees_with_pixel_flip_and_keeps_confidence_and_nan():
    points = torch.tensor(
        [[[30.0, 40.0, 0.9], [80.0, 41.0, 0.8], [55.0, 60.0, 1.0], [math.nan, math.nan, 0.0], [75.0, 90.0, 0.7]]]
    )
    size = (112, 120)  # (H, W)
    by_pixels = normalise_landmarks(flip_landmarks(points, width=size[1]), size)
    by_unit = flip_landmarks(normalise_landmarks(points, size))
    torch.testing.assert_close(by_pixels, by_unit, equal_nan=True)
    assert by_unit[0, :, 2].tolist() == pytest.approx([0.8, 0.9, 1.0, 0.7, 0.0])
    assert torch.isnan(by_unit[0, 4, :2]).all()
    # involution, and the input is not modified
    torch.testing.assert_close(flip_landmarks(flip_landmarks(points, 120), 120), points, equal_nan=True)
    assert points[0, 0, 0] == 30.0


def test_flip_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 5, 2\|3\)"):
        flip_landmarks(torch.zeros(2, 4, 2))


def test_csv_round_trip_with_missing_and_confidence(tmp_path):
    rows = [
        ("a/1.png", np.array([[1.25, 2.5], [3, 4], [5, 6], [7, 8], [9, 10.0001]])),
        ("b/2.jpg", torch.tensor([[1.0, 2, 0.5], [math.nan, 4, 1], [5, 6, 0], [7, 8, 1], [9, 10, 0.25]])),
    ]
    assert write_landmark_csv(tmp_path / "l.csv", rows) == 2
    (n1, p1), (n2, p2) = read_landmark_csv(tmp_path / "l.csv")
    assert (n1, n2) == ("a/1.png", "b/2.jpg")
    np.testing.assert_allclose(p1[:, :2].numpy(), rows[0][1], atol=1e-4)
    assert p1[:, 2].tolist() == [1.0] * 5
    assert p2[:, 2].tolist() == [0.5, 0.0, 0.0, 1.0, 0.25]
    assert torch.isnan(p2[1:3, :2]).all() and p2[0, 0] == 1.0


def test_csv_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_landmark_csv(tmp_path / "nowhere.csv")
    with pytest.raises(ValueError, match="'x.png'.*\\(5, 2\\|3\\)"):
        write_landmark_csv(tmp_path / "bad.csv", [("x.png", np.zeros((4, 2)))])
