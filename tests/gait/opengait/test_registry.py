"""The registered evaluator: OpenGait's way of passing config keys, and the metrics file it can write."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from kprpe_gait.opengait.registry import evaluate_Gait3D_KPRPE, write_json_atomic


def opengait_valid_args(func, cfg):
    """What OpenGait's utils.get_valid_args keeps of a config section: the keys in getfullargspec(func).args."""
    expected = inspect.getfullargspec(func)[0]
    return {k: v for k, v in cfg.items() if k in expected}


def test_signature_exposes_results_file_to_opengait():
    assert inspect.isfunction(evaluate_Gait3D_KPRPE)
    assert inspect.getfullargspec(evaluate_Gait3D_KPRPE)[0] == [
        "data",
        "dataset_name",
        "metric",
        "partition",
        "results_file",
    ]


def test_metrics_are_returned_and_written(tmp_path):
    # two identities; probe A is nearest to its own gallery sequence, probe B to A's
    emb = np.array([[0.0], [0.1], [1.0], [0.35]], dtype=np.float32)[:, :, None].repeat(3, axis=2)  # (4, 1, 3)
    data = {"embeddings": emb, "labels": ["A", "A", "B", "B"], "types": ["c0", "c1", "c0", "c1"],
            "views": ["s0"] * 4}  # fmt: skip
    partition = tmp_path / "partition.json"
    partition.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": ["A", "B"], "PROBE_SET": ["A-c0-s0", "B-c1-s0"]}))
    cfg = {"eval_func": "evaluate_Gait3D_KPRPE", "metric": "euc", "partition": str(partition),
           "results_file": str(tmp_path / "out" / "results.json"), "sampler": {}}  # fmt: skip
    results = evaluate_Gait3D_KPRPE(data, "SynthGait", **opengait_valid_args(evaluate_Gait3D_KPRPE, cfg))
    assert results["scalar/test_accuracy/Rank-1"] == pytest.approx(50.0)
    assert results["scalar/test_accuracy/mAP"] == pytest.approx(75.0)  # AP 1 and 1/2
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == pytest.approx(results)


def test_write_json_atomic_leaves_no_temporary_files(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_json_atomic(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "b.json", {"x": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.opengait
def test_config_names_register_the_opengait_model_classes_not_the_network(opengait_module):
    opengait_module("modeling.base_model")  # puts OpenGait on sys.path, or skips
    from kprpe_gait.models import SwinGait2D
    from kprpe_gait.opengait import models, registry

    registries = registry.register()
    assert registries["models"] == ["SwinGait2D", "SwinGait2DKPRPE"]
    import modeling.models as og_models

    assert (
        og_models.SwinGait2D is models.OpenGaitSwinGait2D
        and og_models.SwinGait2DKPRPE is models.OpenGaitSwinGait2DKPRPE
    )
    assert models.OpenGaitSwinGait2D.__name__ != SwinGait2D.__name__  # one name, one class
