import numpy as np
import pytest
import torch
from PIL import Image

from face.data import DISTRACTOR_LABEL, FaceFolder, box_crop_matrix, read_identification_folder, warp_faces
from face.landmarks import write_landmark_csv


def _save(path, height=20, width=16, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((height, width, 3), value, np.uint8)
    array[0, 0] = 255
    Image.fromarray(array).save(path)


def test_face_folder_labels_and_landmarks(tmp_path):
    for ident, count in (("bob", 2), ("alice", 1)):
        for k in range(count):
            _save(tmp_path / ident / f"{k}.png", value=10 * k)
    points = np.arange(10, dtype=np.float64).reshape(5, 2)
    rows = [("alice/0.png", points), ("bob/0.png", points + 1), ("bob/1.png", points + 2)]
    write_landmark_csv(tmp_path / "landmarks.csv", rows)
    data = FaceFolder(tmp_path, tmp_path / "landmarks.csv")
    assert data.classes == ["alice", "bob"] and data.labels.tolist() == [0, 1, 1]
    image, landmarks, label = data[2]
    assert image.shape == (3, 20, 16) and image.dtype == torch.uint8 and label == 1 and image[0, 1, 1] == 10
    np.testing.assert_allclose(landmarks[:, :2].numpy(), points + 2)
    write_landmark_csv(tmp_path / "short.csv", rows[:2])
    with pytest.raises(ValueError, match=r"1 image\(s\) under .* have no row in .*short.csv: \['bob/1.png'\]"):
        FaceFolder(tmp_path, tmp_path / "short.csv")
    relaxed = FaceFolder(tmp_path, tmp_path / "short.csv", missing="nan")
    assert relaxed.unlisted == ["bob/1.png"] and torch.isnan(relaxed[2][1][:, :2]).all()
    write_landmark_csv(tmp_path / "stray.csv", rows + [("carol/0.png", points)])
    with pytest.raises(ValueError, match="lists 1 image.*carol/0.png"):
        FaceFolder(tmp_path, tmp_path / "stray.csv")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        FaceFolder(tmp_path / "nowhere")


def test_identification_folder_tinyface_layout(tmp_path):
    _save(tmp_path / "Probe" / "1_1.png", 40, 20)
    _save(tmp_path / "Probe" / "2_7.png")
    _save(tmp_path / "Gallery_Match" / "1_2.png")
    _save(tmp_path / "Gallery_Match" / "2_1.png")
    _save(tmp_path / "Gallery_Distractor" / "x.png")
    points = np.array([[0.0, 0.0], [19, 39], [9.5, 19.5], [5, 30], [15, 30]])
    write_landmark_csv(tmp_path / "landmarks.csv", [("Probe/1_1.png", points)])
    data = read_identification_folder(tmp_path, size=8)
    assert data.probe.labels.tolist() == [1, 2]
    assert data.gallery.labels.tolist() == [1, 2, DISTRACTOR_LABEL]
    image, landmarks = data.probe.item(0)
    assert image.shape == (3, 8, 8)
    # pixel centres scale: x by 8/20, y by 8/40; the image centre stays the centre
    expected = (torch.tensor(points, dtype=torch.float32) + 0.5) * torch.tensor([8 / 20, 8 / 40]) - 0.5
    torch.testing.assert_close(landmarks[:, :2], expected)
    torch.testing.assert_close(data.probe.resized_landmarks()[0], landmarks)
    assert torch.isnan(data.probe.item(1)[1][:, :2]).all()
    _save(tmp_path / "Probe" / "noid.png")
    with pytest.raises(ValueError, match="noid.png: file name must start with an integer"):
        read_identification_folder(tmp_path)


def test_box_crop_of_a_same_size_box_is_a_slice_and_landmarks_follow():
    image = torch.randint(0, 256, (1, 3, 160, 150), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    box = torch.tensor([[10.0, 20.0, 122.0, 132.0]])  # 112 x 112, integer edges
    landmarks = torch.tensor([[[30.0, 40.0, 1.0], [80, 41, 1], [55, 60, 1], [40, 90, 1], [75, 90, 1]]])
    crops, keypoints = warp_faces(image, landmarks, box_crop_matrix(box), (112, 112))
    assert torch.equal(crops[0], image[0, :, 20:132, 10:122])
    expected = (landmarks[0, :, :2] - torch.tensor([10.0, 20.0]) + 0.5) / 112
    torch.testing.assert_close(keypoints[0, :, :2], expected)
    # a box twice the crop size: box edges land on crop edges (continuous coordinates)
    matrix = box_crop_matrix(torch.tensor([[0.0, 0.0, 224.0, 224.0]]))[0].double()
    corner = matrix @ torch.tensor([-0.5, -0.5, 1.0], dtype=torch.float64)  # pixel index of the box's corner
    torch.testing.assert_close(corner, torch.tensor([-0.5, -0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="no area"):
        box_crop_matrix(torch.tensor([[5.0, 5.0, 5.0, 9.0]]))
