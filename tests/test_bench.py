"""The benchmark script runs its GPU-shaped path on CPU and reports every section (timings are not
asserted: tests never time things)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def test_bench_synthetic_path_reports_all_sections(tmp_path):
    import bench

    out = tmp_path / "bench.json"
    bench.main(["--shape", "tiny", "--steps", "2", "--warmup", "1", "--seq-len", "24", "--batch-size", "4",
                "--dtype", "bfloat16", "--json", str(out)])
    result = json.loads(out.read_text())
    assert set(result["methods"]) == {"prompt_tuning", "infoprompt", "peft"}
    for row in result["methods"].values():
        assert row["step_median_ms"] > 0 and row["eval_examples_per_s"] > 0 and row["gpu_peak_mb"] is None
    assert {"infoprompt/prompt_tuning", "prompt_tuning/peft", "checkpoint/backbone"} <= set(result["ratios"])
    assert result["batch"] == [4, 24] and "prompt_free_cache_s/infoprompt" in result["one_off"]


def test_bench_workers_bound_is_the_per_run_slowdown_shared_by_the_workers():
    import bench_workers

    sequential = {"prompt_tuning/13": {"seconds": 10.0}, "infoprompt/13": {"seconds": 30.0}}
    parallel = {"prompt_tuning/13": {"seconds": 18.0}, "infoprompt/13": {"seconds": 58.0}}
    bound = bench_workers.split_bound(sequential, parallel, workers=2)
    assert bound == {"run_seconds_sequential": 40.0, "run_seconds_parallel": 76.0, "slowdown": 1.9, "bound": 0.95}
    assert bench_workers.split_bound(sequential, sequential, workers=4)["bound"] == 0.25
    try:
        bench_workers.split_bound(sequential, {"prompt_tuning/13": {"seconds": 1.0}}, workers=2)
    except ValueError as err:
        assert "different runs" in str(err)
    else:
        raise AssertionError("different runs were compared")
