"""The grid of a sweep run by parallel workers or submitit: the same runs as one after another, claims that no two
processes share, a killed sweep that restarts without retraining, failures and dead workers that do not stop the
others, and workers on the parent's own GPUs. No test waits for a race: a run that must be mid-way when the sweep
dies holds its claim until the kill, and the kill comes from the sweep's first run, after it finished. Every file a
test writes is under its own tmp_path (no port, no shared cache), so two test sessions can run at once."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import tiny_overrides
from lit_infoprompt.analysis import runs as analysis_runs
from lit_infoprompt.sweep import grid, locks, pool
from lit_infoprompt.sweep.comparison_runs import compare
from lit_infoprompt.sweep.grid import grid_jobs
from lit_infoprompt.sweep.args import parse_sweep
from lit_infoprompt.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def sweep_args(model_dir, out, *extra):
    return [*tiny_overrides(model_dir, out, "trainer.max_steps=4", "trainer.val_every=2", "archive=null"),
            "methods=[prompt_tuning,infoprompt_head]", "seeds=[13,21]", *extra]


def per_run(out: Path) -> dict:
    """(method, seed) -> the run's scores and curve, for every run a comparison used."""
    runs = {}
    for line in (out / "runs.txt").read_text().split():
        summary = json.loads((Path(line) / "summary.json").read_text())
        keep = {k: v for k, v in summary.items() if k.startswith("test_") or k in ("best_dev", "best_step", "dev_auc")}
        curve = [row.split(",")[:2] + row.split(",")[3:] for row in (Path(line) / "curve.csv").read_text().splitlines()]
        runs[(summary["method"], summary["seed"])] = (keep, curve)  # curve without its seconds column
    return runs


@pytest.mark.subprocess
def test_two_workers_give_the_same_runs_as_one_process(roberta_dir, tmp_path):
    sequential = compare(sweep_args(roberta_dir, tmp_path / "one"))
    parallel = compare(sweep_args(roberta_dir, tmp_path / "two", "workers=2", "threads=1"))
    assert per_run(sequential) == per_run(parallel) and len(per_run(parallel)) == 4
    one, two = (json.loads((out / "summary.json").read_text()) for out in (sequential, parallel))
    assert one == two  # the whole comparison: tables, paired tests, power, constant predictor, lr choice
    assert (sequential / "summary.md").read_text() == (parallel / "summary.md").read_text()
    assert not list((tmp_path / "two").rglob("*.lock"))  # every claim released


def hold(lock, acquired, release):
    with locks.claim(Path(lock)):
        acquired.set()
        release.wait()


def held_by_a_process(lock: Path):
    """A spawned process holding ``lock`` until its ``release`` event is set: (process, release)."""
    context = multiprocessing.get_context("spawn")
    acquired, release = context.Event(), context.Event()
    holder = context.Process(target=hold, args=(str(lock), acquired, release))
    holder.start()
    assert acquired.wait(300)
    return holder, release


def never_waits(monkeypatch):
    """Make a claimant fail instead of waiting when it finds the lock held."""
    real = locks._held

    def held(lock):
        assert not real(lock), "the lock's holder counts as alive"
        return False

    monkeypatch.setattr(locks, "_held", held)


def test_a_claimed_run_waits_for_its_holder_and_a_dead_holder_is_taken_over(tmp_path, monkeypatch):
    lock = tmp_path / ".claims" / "cb-prompt_tuning-seed13.lock"
    holder, release = held_by_a_process(lock)
    second = threading.Event()

    def claimant():
        with locks.claim(lock):
            second.set()

    thread = threading.Thread(target=claimant, daemon=True)
    thread.start()
    assert not second.wait(3 * locks.POLL_S)  # the holder holds it until released, however slow the machine
    release.set()
    holder.join()
    thread.join(300)
    assert second.is_set() and holder.exitcode == 0 and not lock.exists()
    # a holder killed while holding: its lock names a dead process of this host, so it is taken over at once
    holder, _ = held_by_a_process(lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert lock.exists()
    never_waits(monkeypatch)
    with locks.claim(lock):
        pass
    assert not lock.exists()


def test_a_claim_whose_holder_was_killed_but_not_reaped_is_taken_over(tmp_path, monkeypatch):
    # a killed sweep's workers are left to PID 1, which in a container may never reap them: zombies hold nothing
    lock = tmp_path / ".claims" / "cb-prompt_tuning-seed13.lock"
    holder, _ = held_by_a_process(lock)
    os.kill(holder.pid, signal.SIGKILL)
    os.waitid(os.P_PID, holder.pid, os.WEXITED | os.WNOWAIT)  # it has died; not reaped, so a zombie
    assert Path(f"/proc/{holder.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    never_waits(monkeypatch)
    with locks.claim(lock):
        pass
    holder.join()


def first_run_then_kill(job):
    """The killed sweep's runs (in its workers): prompt_tuning seed 13 trains, then SIGKILLs the sweep's process
    group (the sweep and every worker) once another run holds its claim; every other run takes its claim and holds it
    until the kill. So exactly one run has finished, and one claim is left by a killed worker."""
    config = grid.job_config(job)  # as grid.execute sees it before it names the claim
    claims_dir = Path(config.out_dir) / ".claims"
    if (job.method, job.seed) == ("prompt_tuning", 13):
        grid.execute(job)
        while not list(claims_dir.glob("*.lock")):  # the other worker's run has not claimed yet
            threading.Event().wait(0.05)
        os.killpg(0, signal.SIGKILL)
    with locks.claim(claims_dir / f"{locks.run_key(config)}.lock"):
        threading.Event().wait()  # until killed


def sweep_killed_after_its_first_run(args):
    """The sweep of the killed-sweep test, run in its own process group: the grid ``compare`` would run, each run
    through ``first_run_then_kill``."""
    sweep = parse_sweep(args)
    jobs = grid_jobs(sweep.overrides, sweep.methods, sweep.seeds, sweep.prompt_lrs)
    grid.run_grid(jobs, sweep.launch, target=first_run_then_kill)


def test_a_killed_sweep_restarts_without_retraining_finished_runs(roberta_dir, tmp_path):
    out_dir = tmp_path / "runs"
    args = sweep_args(roberta_dir, out_dir, "workers=2", "threads=1")
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import test_grid; "
              f"test_grid.sweep_killed_after_its_first_run({args!r})")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with (tmp_path / "sweep.log").open("w") as log:
        sweep = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=log, stderr=log,
                                 start_new_session=True)
        try:
            status = sweep.wait(timeout=1200)  # against a hang only: the sweep's first run kills it
        finally:
            if sweep.poll() is None:
                os.killpg(sweep.pid, signal.SIGKILL)
                sweep.wait()
    assert status == -signal.SIGKILL, (tmp_path / "sweep.log").read_text()[-3000:]
    finished = {p: p.read_bytes() for p in out_dir.rglob("summary.json")}
    assert [p.parts[-4:-2] for p in finished] == [("prompt_tuning", "seed13")]
    assert len(list(out_dir.rglob("*.lock"))) == 1  # held by a killed worker
    out = compare(args)
    for path, content in finished.items():
        assert path.read_bytes() == content  # reused, not trained again
    runs = per_run(out)
    assert set(runs) == {(m, s) for m in ("prompt_tuning", "infoprompt_head") for s in (13, 21)}
    assert not list(out_dir.rglob("*.lock"))


@pytest.mark.subprocess
def test_a_failing_run_is_reported_and_the_others_finish(roberta_dir, tmp_path):
    # a prompt learning rate of 1e30 makes the loss non-finite: those runs fail, the others finish
    out = compare(sweep_args(roberta_dir, tmp_path / "runs", "workers=2", "threads=1", "prompt_lrs=[1e-3,1e30]"))
    summary = json.loads((out / "summary.json").read_text())
    failed = summary["failed_runs"]
    assert {(f["method"], f["seed"], f["prompt_lr"]) for f in failed} <= {
        (m, s, 1e30) for m in ("prompt_tuning", "infoprompt_head") for s in (13, 21)} and failed
    assert all("NonFiniteLoss" in f["error"] for f in failed)
    assert all(row["prompt_lr"] == [1e-3] for row in summary["methods"].values())
    assert all(len(row["seeds"]) == 2 for row in summary["methods"].values())
    assert "run(s) failed** and are not in the tables" in (out / "summary.md").read_text()


@pytest.mark.subprocess
def test_the_submitit_local_executor_runs_a_small_grid(roberta_dir, tmp_path):
    pytest.importorskip("submitit")
    out = compare([*tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2",
                                   "archive=null"), "methods=[prompt_tuning]", "seeds=[13,21]",
                   "launcher=submitit", "submitit_cluster=local", "slurm_time=10"])
    assert set(per_run(out)) == {("prompt_tuning", 13), ("prompt_tuning", 21)}
    assert list((tmp_path / "runs/submitit").rglob("*_result.pkl"))  # the jobs ran through submitit


@pytest.mark.parametrize("arg,message", [("workers=0", "workers"), ("workers=two", "workers"),
                                         ("launcher=ray", "launcher"), ("slurm_time=-5", "slurm_time")])
def test_bad_launch_settings_are_one_error(arg, message):
    with pytest.raises(InputError, match=message):
        parse_sweep([arg])


def test_worker_plan_splits_the_cores(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(grid, "gpu_count", lambda: 0)
    monkeypatch.setattr(grid, "cpu_count", lambda: 8)
    assert grid.plan_workers(grid.Launch(workers=2)) == (2, 4, [None, None])
    assert grid.plan_workers(grid.Launch(workers="auto")) == (1, 8, [None])  # CPU: one process, every core
    monkeypatch.setattr(grid, "gpu_count", lambda: 2)
    assert grid.plan_workers(grid.Launch(workers="auto")) == (2, 4, ["0", "1"])
    assert grid.plan_workers(grid.Launch(workers=4))[2] == ["0", "1", "0", "1"]  # two small runs per GPU
    assert grid.plan_workers(grid.Launch(workers=2), "cpu") == (2, 4, [None, None])  # runs set to CPU: no GPU


@pytest.mark.parametrize("visible", ["2,3", "MIG-5c1b3a9e-0d2f-5e8c-9a1b-2c3d4e5f6a7b,MIG-77a0c6e2-1b3c-5d4e-8f9a-0b1c2d3e4f5a"])
def test_the_worker_plan_indexes_the_parents_gpu_list(monkeypatch, visible):
    # a shared node (CUDA_VISIBLE_DEVICES=2,3), SLURM, MIG: worker k gets the parent's k-th entry, never index k
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setattr(grid, "gpu_count", lambda: 2)
    names = visible.split(",")
    assert grid.plan_workers(grid.Launch(workers="auto"))[2] == names
    assert grid.plan_workers(grid.Launch(workers=3))[2] == [names[0], names[1], names[0]]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(grid, "gpu_count", lambda: 0)
    assert grid.plan_workers(grid.Launch(workers=2))[2] == [None, None]


def seen(job):
    """A stand-in run (in a worker): what the worker saw, without training."""
    return {"run_dir": "", "reused": False, "seconds": 0.0, "best_dev": 0.5, "test_metric": "test_acc", "test": 0.5,
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "accelerator": job.config.trainer.accelerator, "pid": os.getpid()}


@pytest.mark.subprocess
def test_workers_run_on_the_parents_gpus_with_the_gpu_accelerator(roberta_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(grid, "gpu_count", lambda: 2)  # the parent's; the workers only report what they see
    jobs = grid_jobs(tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.accelerator=auto"), ["prompt_tuning"],
                     [13, 21, 42, 87])
    results = grid.run_grid(jobs, grid.Launch(workers=2, threads=1), report=lambda line: None, target=seen)
    by_worker = {}
    for result in results:
        by_worker.setdefault(result["pid"], set()).add(result["visible"])
        assert result["accelerator"] == "gpu"  # none falls back to CPU unseen
    assert sorted(v for devices in by_worker.values() for v in devices) == ["2", "3"]  # one GPU each, theirs


ARCHIVE = ROOT / "docs/results"


def archived_job(out_dir) -> grid.Job:
    """The grid job of an archived CPU run (docs/results: trainer.accelerator=auto, made on CPU)."""
    return grid.grid_jobs(["task=mrpc", "data.dir=../shared/data", "data.protocol=budget",
                           "model.name=/root/.cache/lit_infoprompt/models/all-MiniLM-L6-v2", "trainer.max_steps=300",
                           f"out_dir={out_dir}", f"archive={ARCHIVE}"], ["infoprompt"], [42])[0]


def test_the_parent_looks_for_finished_runs_as_its_workers_would_run_them(tmp_path, monkeypatch):
    trained = []
    # on CPU a grid adds nothing: the archived CPU run is still found and reused, nothing is trained
    monkeypatch.setattr(grid, "gpu_count", lambda: 0)
    [result] = grid.run_grid([archived_job(tmp_path)], grid.Launch(workers=2), report=lambda line: None,
                             target=trained.append)
    assert result["reused"] and Path(result["run_dir"]).is_relative_to(ARCHIVE / "runs/mrpc") and not trained
    # on GPUs the parent looks with the workers' overrides (the same run key): the CPU run is not reused for a GPU one
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(grid, "gpu_count", lambda: 2)
    looked, real = [], analysis_runs.find_run
    monkeypatch.setattr(analysis_runs, "find_run", lambda config, prefer=(): looked.append(config.trainer.accelerator) or
                        real(config))
    [result] = grid.run_grid([archived_job(tmp_path)], grid.Launch(workers=2), report=lambda line: None, target=seen)
    assert looked == ["gpu"] and result["accelerator"] == "gpu"


def dies(job):
    """A run (in a worker) that SIGKILLs its own worker: seed 21 every time, seed 42 the first time only (the file
    GRID_TEST_KILLED_ONCE marks it); else the real run."""
    once = Path(os.environ["GRID_TEST_KILLED_ONCE"])
    if job.seed == 42 and not once.exists():
        once.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if job.seed == 21:
        os.kill(os.getpid(), signal.SIGKILL)
    return grid.execute(job)


@pytest.mark.subprocess
def test_a_dead_worker_is_replaced_and_a_run_that_kills_it_twice_fails_alone(roberta_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GRID_TEST_KILLED_ONCE", str(tmp_path / "killed-once"))
    jobs = grid_jobs(tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2",
                                    "archive=null"), ["prompt_tuning"], [13, 21, 42])
    lines = []
    ok, killer, once = grid.run_grid(jobs, grid.Launch(workers=2, threads=1), report=lines.append, target=dies)
    assert "error" not in ok and "error" not in once and not once["reused"]  # 42 trained by a new worker
    assert killer["error"] == (f"WorkerDied: its worker process died {pool.TRIES} times, the last killed by SIGKILL "
                               f"(out of memory?)")
    assert sum("died (killed by SIGKILL); the run goes to a new worker" in line for line in lines) == 2  # 21, 42
    assert sum("prompt_tuning seed 21: FAILED: WorkerDied" in line for line in lines) == 1
    assert not list((tmp_path / "runs").rglob("*.lock"))


def test_workers_that_would_not_fit_on_one_gpu_are_named_in_one_line(roberta_dir, monkeypatch):
    from types import SimpleNamespace

    import torch

    from lit_infoprompt.config import load_config
    from lit_infoprompt.sweep import memory

    config = load_config(tiny_overrides(roberta_dir, Path("runs"), "trainer.precision=32-true"))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=80 * memory.GIB))
    assert grid.crowding_warning(config, [None, None]) is None  # CPU
    assert grid.crowding_warning(config, ["0", "1"]) is None  # one worker per GPU
    assert grid.crowding_warning(config, ["0", "0", "0"]) is None  # three tiny workers fit in 80 GiB
    # each worker needs the CUDA context (0.6 GiB) at least, and 1 GiB stays free: on 1.2 GiB none fits
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=1.2 * memory.GIB))
    line = grid.crowding_warning(config, ["0", "0", "0"])
    assert line.startswith("3 workers per GPU may not fit:") and "use fewer WORKERS" in line
