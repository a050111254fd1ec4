import json

import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_tool):
    return load_tool("bench_models")


def test_variants_list_baseline_first_and_say_why_some_are_skipped(bench):
    names, skipped = bench.variants("vit_s", "cpu")
    assert names[0] == "none" and "irpe" in names and "kprpe:reference" in names
    assert "kprpe:triton" in skipped and "CUDA" in skipped["kprpe:triton"]
    names, _ = bench.variants("swingait", "cpu")
    assert names[0] == "swin" and "kprpe:sdpa" in names


@pytest.mark.parametrize(
    "model, variant", [("swingait", "kprpe:reference"), ("vit_b", "kprpe:sdpa"), ("face_swin_s", "kprpe:sdpa"),
                       ("face_swin_s", "cpb")],
)  # fmt: skip
def test_worker_measures_training_and_evaluation(bench, model, variant):
    result = bench.worker(model, variant, "cpu", False, 2, (2, 1, 2), repeats=1, warmup=0, tiny=True)
    assert result["train_per_s"] > 0 and result["eval_per_s"] > 0 and result["peak_mib"] >= 0
    assert result["items"] == (4 if model == "swingait" else 2)


def test_flex_training_on_cpu_is_reported_unavailable_not_faked(bench):
    result = bench.worker("vit_s", "kprpe:flex", "cpu", False, 1, (1, 1, 1), repeats=1, warmup=0, tiny=True)
    assert result["train_per_s"] is None and result["eval_per_s"] > 0


def test_main_writes_a_table_with_ratios_to_the_baseline(bench, tmp_path, capsys):
    out = tmp_path / "rows.json"
    argv = ["--device", "cpu", "--models", "vit_s", "--variants", "kprpe:reference", "--tiny", "--batch", "2",
            "--repeats", "1", "--warmup", "0", "--json", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["none", "kprpe:reference"]
    assert all("error" not in r and r["train_per_s"] > 0 for r in rows)
    table = capsys.readouterr().out
    assert "| face ViT-S | none |" in table and "1.00x" in table and "kprpe:reference" in table


def test_face_models_measure_inference_only_interleaved(bench, tmp_path):
    names, _ = bench.variants("face_s", "cpu")
    assert names[:2] == ["none", "irpe"] and "kprpe:sdpa" in names
    results = bench.eval_worker("face_s", ["none", "kprpe:sdpa"], "cpu", False, 2, (1, 1, 1), repeats=2, warmup=0,
                                tiny=True)  # fmt: skip
    assert len(results) == 2 and all(r["train_per_s"] is None and r["eval_per_s"] > 0 for r in results)
    net = bench.build("face_s", "kprpe:sdpa", True, torch.device("cpu"))
    assert net.config["rpe"] == "kprpe" and net.config["backend"] == "sdpa" and net.kprpe.proj.weight.abs().sum() > 0
    out = tmp_path / "rows.json"
    argv = ["--device", "cpu", "--models", "face_s", "--variants", "kprpe:sdpa", "--eval-only", "--tiny", "--batch",
            "2", "--repeats", "1", "--warmup", "0", "--json", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["none", "kprpe:sdpa"] and all(r["eval_per_s"] > 0 for r in rows)
