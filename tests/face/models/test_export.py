"""The whole face model (images + landmarks -> embedding) exports to ONNX and matches onnxruntime."""

import pytest
import torch

from face.models import build_model


@pytest.mark.filterwarnings(
    "ignore::torch.jit.TracerWarning", "ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning"
)
@pytest.mark.parametrize(
    "preset, rpe, backend",
    [
        ("vit_tiny", "kprpe", "sdpa"), ("vit_tiny", "kprpe", "reference"), ("vit_tiny", "irpe", "sdpa"),
        ("vit_tiny", "none", "auto"), ("swin_tiny", "kprpe", "sdpa"), ("swin_tiny", "kprpe", "reference"),
        ("swin_tiny", "cpb", "auto"),
    ],
)  # fmt: skip
def test_face_model_exports_to_onnx(tmp_path, preset, rpe, backend):
    """TorchScript exporter with a dynamic batch. (``dynamo=True`` also exports with backend='reference',
    but takes ~40 s for this tiny model: too slow for CI.)"""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    depth = {"depth": 2} if preset == "vit_tiny" else {}
    model = build_model({"preset": preset, **depth, "rpe": rpe, "backend": backend}).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "kprpe" in name or ".rpe." in name or name.endswith("logit_scale"):
                p.normal_(0, 0.5)
    images, landmarks = torch.rand(2, 3, 112, 112) * 2 - 1, torch.rand(2, 5, 3)
    path = tmp_path / "face.onnx"
    torch.onnx.export(
        model, (images, landmarks), str(path), input_names=["images", "landmarks"], output_names=["embedding"],
        dynamic_axes={"images": {0: "batch"}, "landmarks": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = torch.rand(3, 5, 3)
    other[0, 1, :2] = float("nan")  # a missing landmark, and one with confidence 0
    other[2, 4, 2] = 0
    for x, lm in ((images, landmarks), (torch.rand(3, 3, 112, 112) * 2 - 1, other)):
        feeds = {"images": x.numpy(), "landmarks": lm.numpy()}
        # without KP-RPE the landmarks are unused and the exporter drops that input
        (y,) = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        with torch.no_grad():
            expected = model(x, lm)
        assert torch.isfinite(torch.from_numpy(y)).all()
        torch.testing.assert_close(torch.from_numpy(y), expected, rtol=1e-4, atol=1e-4)
