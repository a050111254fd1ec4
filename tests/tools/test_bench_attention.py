import pytest


@pytest.fixture(scope="module")
def bench(load_tool):
    return load_tool("bench_attention")


def test_worker_measures_forward_and_backward(bench):
    result = bench.worker(2, "sdpa", "cpu", "float32", batch=8, repeats=1)
    assert result["fwd_ms"] > 0 and result["fwdbwd_ms"] > 0 and result["peak_mib"] >= 0
    flex = bench.worker(2, "flex", "cpu", "float32", batch=2, repeats=1)
    assert flex["fwdbwd_ms"] is None  # no CPU backward in PyTorch: reported, not faked


def test_results_section_is_replaced_not_duplicated(bench, tmp_path):
    path = tmp_path / "RESULTS.md"
    bench.write_results("first\n", "k", path)
    bench.write_results("other\n", "j", path)
    bench.write_results("second\n", "k", path)
    text = path.read_text()
    assert "second" in text and "first" not in text and "other" in text
    assert text.count("<!-- k -->") == 1
