"""The CSV front-end and the box of a face known only by its landmarks."""

import math

import pytest
import torch

from face.align import ARCFACE_TEMPLATE
from face.detect import CsvLandmarks, Detections, box_from_landmarks, landmarks_inside, read_box_csv, write_box_csv
from face.landmarks import write_landmark_csv


def test_box_from_landmarks_is_the_template_frame_scaled_and_shifted():
    scale, shift = 1.7, torch.tensor([30.0, 12.0])
    points = ARCFACE_TEMPLATE * scale + shift  # a face exactly the template, bigger and moved
    box = box_from_landmarks(points[None])[0]
    # The template frame spans pixel indices [-0.5, 111.5], i.e. box coordinates [0, 112].
    low, high = shift - 0.5 * scale + 0.5, shift + 111.5 * scale + 0.5
    assert box.tolist() == pytest.approx([*low.tolist(), *high.tolist()], abs=1e-4)
    missing = torch.cat([points, torch.ones(5, 1)], -1)
    missing[2] = torch.tensor([math.nan, math.nan, 0.0])  # the nose is not known: same box from the others
    assert box_from_landmarks(missing[None])[0].tolist() == pytest.approx(box.tolist(), abs=1e-4)
    missing[:4, 2] = 0  # one landmark left: no box
    assert torch.isnan(box_from_landmarks(missing[None])).all()


def test_box_from_landmarks_of_a_rotated_face_keeps_its_centre_and_size():
    angle = math.radians(20)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = ARCFACE_TEMPLATE.mean(0)
    points = (ARCFACE_TEMPLATE - centre) @ rotation.T * 2 + centre * 2 + 5
    box = box_from_landmarks(points[None])[0]
    straight = box_from_landmarks((ARCFACE_TEMPLATE * 2 + 5)[None])[0]
    size, straight_size = box[2:] - box[:2], straight[2:] - straight[:2]
    # Least squares without rotation finds the scale times cos(angle): the box grows by 1 / cos(angle).
    assert size.tolist() == pytest.approx((straight_size / math.cos(angle)).tolist(), rel=1e-4)
    assert ((box[:2] + box[2:]) / 2).tolist() == pytest.approx(((straight[:2] + straight[2:]) / 2).tolist(), abs=3)


def test_landmarks_inside_uses_the_pixel_extent():
    points = torch.tensor([[-0.5, 0.0], [99.5, 49.5], [-0.6, 10.0], [10.0, 49.6], [math.nan, 1.0]])
    assert landmarks_inside(points, (50, 100)).tolist() == [True, True, False, False, False]


def test_csv_front_end_reads_landmarks_and_boxes(tmp_path):
    a = ARCFACE_TEMPLATE * 2 + 10
    b = torch.cat([ARCFACE_TEMPLATE + 3, torch.ones(5, 1)], -1)
    b[4] = torch.tensor([math.nan, math.nan, 0.0])
    write_landmark_csv(tmp_path / "marks.csv", [("x/a.jpg", a), ("b.png", b)])
    write_box_csv(tmp_path / "boxes.csv", [("x/a.jpg", (5.0, 6.0, 250.0, 240.0), 0.93)])
    front = CsvLandmarks(tmp_path / "marks.csv", tmp_path / "boxes.csv")
    assert front.names() == ["x/a.jpg", "b.png"] and "b.png" in front and "c.png" not in front
    found = front.detect([torch.zeros(3, 4, 4, dtype=torch.uint8)] * 3, ["x/a.jpg", "b.png", "c.png"])
    assert [len(f) for f in found] == [1, 1, 0]
    assert found[0].boxes[0].tolist() == [5.0, 6.0, 250.0, 240.0] and found[0].scores.tolist() == pytest.approx([0.93])
    assert found[0].landmarks[0, :, :2].flatten().tolist() == pytest.approx(a.flatten().tolist(), abs=1e-4)
    assert found[1].boxes[0].tolist() == pytest.approx(box_from_landmarks(b[None])[0].tolist())  # no box given
    assert torch.isnan(found[1].landmarks[0, 4, :2]).all() and found[1].landmarks[0, 4, 2] == 0
    with pytest.raises(ValueError, match="one key per image"):
        front.detect([torch.zeros(3, 4, 4, dtype=torch.uint8)])


def test_box_csv_errors_name_file_and_line(tmp_path):
    path = tmp_path / "boxes.csv"
    for body, message in [
        ("image,x0,y0,x1,y1\na.jpg,1,2,3\n", r"boxes.csv:2: expected image,x0,y0,x1,y1\[,score\]"),
        ("image,x0,y0,x1,y1\na.jpg,1,2,3,x\n", "boxes.csv:2: could not convert"),
        ("image,x0,y0,x1,y1\na.jpg,5,2,3,4\n", r"boxes.csv:2: box .* x1 > x0"),
        ("image,x0,y0,x1,y1\na.jpg,1,2,3,4\na.jpg,1,2,3,4\n", "boxes.csv:3: 'a.jpg' has a box already"),
        ("name,x0\n", "header starting with 'image'"),
        ("image,x0,y0,x1,y1\n", "no box rows"),
    ]:
        path.write_text(body)
        with pytest.raises(ValueError, match=message):
            read_box_csv(path)
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        read_box_csv(tmp_path / "absent.csv")


def test_csv_front_end_rejects_duplicates_and_orphan_boxes(tmp_path):
    marks = tmp_path / "marks.csv"
    write_landmark_csv(marks, [("a.jpg", ARCFACE_TEMPLATE), ("a.jpg", ARCFACE_TEMPLATE)])
    with pytest.raises(ValueError, match="'a.jpg' is listed twice"):
        CsvLandmarks(marks)
    write_landmark_csv(marks, [("a.jpg", ARCFACE_TEMPLATE)])
    write_box_csv(tmp_path / "boxes.csv", [("b.jpg", (0, 0, 10, 10), 1.0)])
    with pytest.raises(ValueError, match=r"boxes for 1 image\(s\) without landmarks .*b.jpg"):
        CsvLandmarks(marks, tmp_path / "boxes.csv")


def test_detections_check_their_shapes():
    assert len(Detections.empty()) == 0
    with pytest.raises(ValueError, match="Detections need boxes"):
        Detections(torch.zeros(2, 4), torch.zeros(1, 5, 3), torch.zeros(2))
