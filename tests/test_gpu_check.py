"""The GPU check script runs whole on CPU (--device cpu --tiny, the committed tiny model): every section reports
numbers or an error string, a section over its budget is killed without losing the others, a machine without CUDA
gets one line. Also the memory estimate against what a training step keeps for backward, the bundle's bf16 copy of
a model, and the report's tables. Timings are never asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "acceptance"), str(ROOT / "benchmarks")]
TINY = ROOT / "tests" / "fixtures" / "models" / "tiny-roberta"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
ENV.pop("OUT", None)


def gpu_check(*args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "acceptance" / "gpu_check.py"), *args], capture_output=True,
                          text=True, env=ENV, cwd=ROOT, timeout=timeout)


def numbers(value) -> list:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "gpu_check.json"
    result = gpu_check("--device", "cpu", "--tiny", "--ddp-cpu", "--out", str(out))
    return result, json.loads(out.read_text()), out


@pytest.mark.slow
def test_the_dry_run_reports_every_section_with_numbers_or_an_error(dry_run):
    import gpu_check as script

    result, report, out = dry_run
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert list(report["sections"]) == script.ORDER
    for name, section in report["sections"].items():
        assert section["status"] in ("ok", "error"), (name, section)
        if section["status"] == "error":
            assert isinstance(section["error"], str) and section["error"], name
        else:
            assert numbers({k: v for k, v in section.items() if k not in ("seconds", "budget_s")}), name
            assert isinstance(section["summary"], str) and section["summary"], name
    # on this machine every section runs; whether bf16 agrees is the GPU's question, not this test's
    assert all(s["status"] == "ok" for s in report["sections"].values()), result.stdout
    assert set(report["checks"]) == {"every_section_ran", "bf16_mixed_agrees_with_fp32",
                                     "two_workers_share_the_device", "ddp_two_processes"}
    assert isinstance(report["checks"]["bf16_mixed_agrees_with_fp32"], bool)
    # a compact summary: one line per section and a last line, the log beside the JSON
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(script.ORDER) + 2 and lines[-1].startswith("gpu-check: 7 ok")
    assert (out.parent / "gpu_check.log").is_file()


@pytest.mark.slow
def test_the_dry_run_sections_measure_what_they_name(dry_run):
    _, report, _ = dry_run
    s = report["sections"]
    assert s["bench_hand"]["shape"] == "tiny"
    for key in ("4x24", "4x40"):  # bench.py's hand loop at the tiny plan's two shapes
        assert set(s["bench_hand"][key]["methods"]) == {"prompt_tuning", "infoprompt", "peft"}
    for mode in ("bf16-mixed", "bf16-weights"):
        row = s["bench_lightning"][mode]
        assert row["ours"]["timed_steps"] == row["peft"]["timed_steps"] == 3 and row["ours/peft"] > 0
        assert row["ours"]["padded_width_max"] <= 64  # the datamodule's padded batches, model.max_length=64
    rows = s["memory"]["rows"]
    assert {(r["mode"], r["batch"], r["tokens"]) for r in rows} == {
        (m, b, t) for m in ("fp32", "bf16-mixed", "bf16-weights") for b in (2, 4) for t in (20, 36)}
    assert all(r["saved_mib"] > 0 and r["peak_mib"] is None for r in rows)  # no allocator peak on CPU
    assert set(s["precision"]["runs"]) == {"32-true", "bf16-mixed"} and s["precision"]["steps"] == 6
    assert set(s["precision"]["diffs"]) == {"best_dev", "test_acc", "test_f1_macro"}
    assert s["workers"]["devices"] == [None, None] and "same_scores_as_alone" in s["workers"]
    assert s["ddp"]["processes"] == 2 and s["ddp"]["backend"] == "gloo"


def test_a_section_over_its_budget_is_killed_and_the_next_runs_in_a_new_process(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = gpu_check("--device", "cpu", "--tiny", "--sections", "bench_hand,env", "--budget", "bench_hand=1",
                       "--stall", "bench_hand=120", "--out", str(out), timeout=120)
    report = json.loads(out.read_text())
    assert result.returncode == 1
    assert report["sections"]["bench_hand"]["status"] == "error"
    assert "timed out" in report["sections"]["bench_hand"]["error"]
    assert report["sections"]["env"]["status"] == "ok" and report["checks"]["every_section_ran"] is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_in_one_line(tmp_path):
    result = gpu_check("--out", str(tmp_path / "gpu_check.json"), timeout=120)
    assert result.returncode == 4
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no CUDA device here")
    assert not (tmp_path / "gpu_check.json").exists()
    shell = subprocess.run(["bash", str(ROOT / "acceptance" / "gpu_check.sh")], capture_output=True, text=True,
                           env={**ENV, "PYTHON": sys.executable}, cwd=ROOT, timeout=120)
    assert shell.returncode == 4 and shell.stdout.strip() == lines[0]


@pytest.mark.slow
def test_the_memory_estimate_matches_what_a_training_step_keeps_for_backward():
    """The estimate's activation (and autocast-copy) term against saved-tensor hooks over one step of a small
    random RoBERTa, in each mode."""
    from types import SimpleNamespace

    import gpu_sections
    from lit_infoprompt.sweep import memory

    ctx = SimpleNamespace(device=torch.device("cpu"))
    shape = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 256, "vocab_size": 1000,
             "max_position_embeddings": 64}
    backbone = gpu_sections.random_roberta("tiny", 1000, 1, "float32", ctx.device, 64)
    for mode in memory.MODES:
        if mode == "bf16-weights":
            backbone.model.to(torch.bfloat16)
        row = gpu_sections.measure_step(ctx, backbone, mode, 4, 24, 4, shape)
        assert 0.85 < row["saved/estimate"] < 1.15, row


def test_the_memory_estimate_sizes_workers_per_gpu():
    from lit_infoprompt.sweep import memory

    large = memory.SHAPES["roberta-large"]
    small = memory.estimate(large, 8, 144, "fp32")
    big = memory.estimate(large, 32, 272, "fp32")
    assert 2 < small["peak_gib"] < 4 and big["peak_gib"] > 10  # the meta-device range
    assert memory.estimate(large, 32, 272, "bf16-weights")["peak_gib"] < big["peak_gib"]
    assert memory.mode_of("bf16-mixed", "float32") == "bf16-mixed" and memory.mode_of("32-true", "bfloat16") == \
        "bf16-weights" and memory.mode_of("32-true", "float32") == "fp32"
    assert memory.workers_warning(large, 8, 144, "32-true", "float32", 2, gpu_gib=80) is None
    warning = memory.workers_warning(large, 32, 272, "32-true", "float32", 8, gpu_gib=80, name="roberta-large")
    assert warning.startswith("8 workers per GPU may not fit: roberta-large") and "\n" not in warning
    assert memory.workers_that_fit(big["worker_gib"], 80) < 8


def test_the_bundle_holds_a_bf16_copy_and_the_wheels_under_the_limit(tmp_path):
    import gpu_bundle
    from importlib import metadata

    from lit_infoprompt.config import ModelConfig
    from lit_infoprompt.model.backbone import load_backbone

    out = tmp_path / "bundle"
    wheel_dir = out / "whl"
    wheel_dir.mkdir(parents=True)
    version = metadata.version("omegaconf")  # a wheel already there: nothing is downloaded
    import zipfile
    with zipfile.ZipFile(wheel_dir / f"omegaconf-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"omegaconf-{version}.dist-info/METADATA", "Name: omegaconf\nRequires-Dist: PyYAML>=5.1.0\n")
    assert gpu_bundle.main(["--out", str(out), "--model", str(TINY)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["wheels"][0]["requires"] == ["PyYAML>=5.1.0"] and manifest["total_mib"] < 60
    model_dir = out / "all-MiniLM-L6-v2-bf16"
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == "bfloat16"
    assert (model_dir / "model.safetensors").stat().st_size < 0.6 * (TINY / "model.safetensors").stat().st_size
    backbone, _ = load_backbone(ModelConfig(name=str(model_dir)))
    assert backbone.dtype == torch.float32  # cast to model.dtype, as the runs do


@pytest.mark.slow
def test_the_report_renders_every_section(dry_run):
    import gpu_report

    _, report, _ = dry_run
    text = gpu_report.report(report)
    for heading in ("Hand loop", "`trainer.fit` on padded CB batches", "Peak memory", "fp32 against bf16-mixed",
                    "2 workers on cpu", "2 gloo processes"):
        assert heading in text, heading
