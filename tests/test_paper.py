"""``make paper``: the paper's grid (conf/experiment/paper/) planned here without a GPU, torch or the hub (runs,
memory per worker, workers per GPU size, GPU-hours, the SLURM array), and run end to end on the tiny model with the
documented shrink keys, locally and through submitit's local executor: one grid, each experiment's comparison, the
report of the folder into its own file, and a second call that trains nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_overrides
from lit_infoprompt.__main__ import main
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep import cost, memory
from lit_infoprompt.sweep.paper import PAPER_DIR, paper_plan, parse_paper_args, paper_plan_text

ROOT = Path(__file__).resolve().parents[1]
TASKS = {("sst2", "budget64"), ("sst2", "budget256"), ("mrpc", "budget64"), ("mrpc", "budget256"),
         ("cola", "budget64"), ("cola", "budget256"), ("rte", "budget64"), ("rte", "budget256"), ("cb", "16shot"),
         ("rte", "16shot"), ("boolq", "16shot"), ("wic", "16shot"), ("copa", "16shot"), ("semeval", "budget256")}
ARMS = {"prompt_tuning", "infoprompt", "infoprompt_head", "infoprompt_rep", "prompt_tuning_bottleneck",
        "infoprompt_plus"}


def test_the_grid_is_the_papers():
    p = parse_paper_args([])
    assert {(e.task, e.split) for e in p.experiments} == TASKS
    for e in p.experiments:
        assert set(e.arms) == ARMS and e.baseline == "prompt_tuning" and e.model == "roberta-large"
        assert e.steps == 1000 and len(e.seeds) == 5 and e.prompt_lrs == [0.001, 0.01]


def test_the_plan_runs_here_without_torch_and_says_what_it_costs():
    code = ("import sys\nfrom lit_infoprompt.__main__ import main\nrc = main(['paper', 'plan=true', 'gpus=16'])\n"
            "assert 'torch' not in sys.modules, 'the plan imported torch'\nsys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "paper grid: 14 experiments" in text and "840 runs" in text
    need = memory.estimate(memory.SHAPES["roberta-large"], 8, 272, "bf16-mixed")["worker_gib"]
    assert f"GPU memory per worker: {need:.1f} GiB" in text
    fits = [memory.workers_that_fit(need, gib) for gib, _ in cost.GPUS.values()]
    assert "workers that fit: A100 40GB {}, H100 80GB {}, H200 141GB {}".format(*fits) in text
    assert fits[0] < fits[1] < fits[2]
    for gpu in cost.GPUS:
        line = next(x for x in text.splitlines() if x.startswith(f"  {gpu}: "))
        hours = float(line.split(": ")[1].split(" GPU-hours")[0])
        on_16 = float(line.split("h on 1 GPU, ")[1].split(" h on 16 GPUs")[0])
        assert hours > 0 and abs(on_16 - hours / 16) <= 0.15  # 840 similar runs pack evenly onto 16 GPUs (0.1 h shown)
    assert "--array=0-839%<slurm_array> --gpus-per-node=1" in text
    assert all(a.split(" (")[0][:40] in text for a in cost.ASSUMPTIONS)  # the assumptions are printed


def test_a_measured_step_replaces_the_assumed_one(tmp_path):
    check = tmp_path / "gpu_check.json"
    check.write_text(json.dumps({"sections": {"env": {"gpus": [{"name": "NVIDIA H200"}]}, "bench_hand": {
        "16x128": {"methods": {"prompt_tuning": {"step_median_ms": 40.0}}},
        "32x256": {"methods": {"prompt_tuning": {"step_median_ms": 120.0}}}}}}))
    measured = cost.measured_ms_per_token(str(check))
    assert measured == {"device": "NVIDIA H200", "ms_per_token": 120.0 / (32 * 256), "from": "32x256"}
    p = parse_paper_args(["only=paper-cb-16shot", f"gpu_check={check}"])
    text = paper_plan_text(p, paper_plan(p))
    assert "measured by make gpu-check on NVIDIA H200" in text and "  NVIDIA H200: " in text


def test_a_shrunk_grid_may_not_write_the_papers_results():
    with pytest.raises(InputError, match="seeds= shrink the grid"):
        parse_paper_args(["seeds=13"])
    assert parse_paper_args(["seeds=13", "plan=true"]).experiments[0].seeds == [13]  # a plan writes nothing
    assert len(parse_paper_args(["only=paper-cb-16shot,paper-wic-16shot"]).experiments) == 2  # whole experiments
    with pytest.raises(InputError, match="keep the baseline prompt_tuning"):
        parse_paper_args(["arms=infoprompt", "archive=/tmp/x", "results=/tmp/x.md"])
    with pytest.raises(InputError, match="no experiment paper-nope"):
        parse_paper_args(["only=paper-nope"])


def shrunk(roberta_dir, tmp_path, *extra):
    return ["only=paper-cb-16shot", "arms=prompt_tuning,infoprompt", "seeds=13", "prompt_lrs=0.01", "steps=2",
            f"model={roberta_dir}", f"archive={tmp_path / 'docs/results'}", f"results={tmp_path / 'docs/RESULTS.md'}",
            *tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2"), *extra]


def finished(root: Path) -> set:
    return {p.parent for p in root.rglob("summary.json") if p.parent.name.startswith("version_")}


@pytest.mark.parametrize("launcher", ["local", "submitit"])
@pytest.mark.train
def test_make_paper_runs_the_shrunk_grid_end_to_end(roberta_dir, tmp_path, capsys, launcher):
    if launcher == "submitit":
        pytest.importorskip("submitit")
    extra = ["launcher=submitit", "submitit_cluster=local", "slurm_time=10"] if launcher == "submitit" else []
    assert main(["paper", *shrunk(roberta_dir, tmp_path, *extra)]) == 0
    runs = finished(tmp_path / "runs")
    assert len(runs) == 2  # 1 experiment x 2 arms x 1 seed x 1 rate
    if launcher == "submitit":
        assert list((tmp_path / "runs/submitit").rglob("*_result.pkl"))  # the runs went through submitit
    comparison = tmp_path / "runs/compare/paper-cb-16shot/summary.json"
    assert set(json.loads(comparison.read_text())["methods"]) == {"prompt_tuning", "infoprompt"}
    text = (tmp_path / "docs/RESULTS.md").read_text()
    assert (tmp_path / "docs/results/compare/paper-cb-16shot/spec.json").is_file()  # archived under its own name
    lack = text.split("## What the declared experiments still lack")[1]
    assert "- `paper-cb-16shot` (compare: cb 16-shot, 1000 steps" in lack  # the shrunk grid is not the file's
    assert "- `paper-sst2-budget64` (compare: sst2 budget 64, 1000 steps" in lack and "not run yet; 60 of 60" in lack
    folders = set((tmp_path / "runs").rglob("version_*"))
    assert main(["paper", *shrunk(roberta_dir, tmp_path, *extra)]) == 0  # resumable: trains only what is missing
    assert set((tmp_path / "runs").rglob("version_*")) == folders and finished(tmp_path / "runs") == runs


def test_the_paper_folder_is_only_read_by_make_paper():
    """conf/experiment/paper/ is the paper's grid: make report of the project's own evidence does not walk it."""
    from lit_infoprompt.sweep.reporting import experiment_files

    names = {p.stem for p in experiment_files(PAPER_DIR.parent)}
    assert names and not any(n.startswith("paper-") for n in names)
