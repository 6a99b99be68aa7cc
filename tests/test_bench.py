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
