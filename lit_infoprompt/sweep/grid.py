"""Run a sweep's grid of independent runs: in this process, in a local pool of workers, or as SLURM jobs (submitit).

A grid is a list of ``Job``s (one run each: its config, composed once, and its arm, seed and rate). Every way of running it does the same per run (``execute``):
resolve the config, **claim** the run, reuse it when finished, resume it when a checkpoint exists, else train it.

* ``workers=1`` (default): one after another in this process, one backbone for all runs (today's ``compare``).
* ``workers=N``: N worker processes pull runs from the grid. Each keeps its backbone for all its runs. With GPUs
  each worker sees one of this process's GPUs (round robin over its ``CUDA_VISIBLE_DEVICES``, so 2 workers per GPU
  share it) and every run is ``on_one_gpu``; on CPU the cores are split (``threads`` per worker, default
  cores // N). A worker that dies is replaced and its run tried again (``_pool``). ``workers=auto``: the visible
  GPUs; on CPU one process with every core (on the 2-core development machine, 2 one-thread workers took 1.01x the
  time of one two-thread process for a 6-run CB grid: ``make bench-workers``).
* ``launcher=submitit``: one SLURM job per run (a job array) through submitit, each running ``execute`` as the
  ``train`` command does, so a cluster sweep leaves the same run directories; ``submitit_cluster=local`` runs
  the jobs as local processes (how the tests use it).

Claims (``locks.claim``): a run is held through ``<out_dir>/.claims/<run key>.lock``, so two workers or two sweeps never
train the same run, and a killed sweep restarts where it stopped (a dead holder's lock is taken over). A failing
run (a bad value, a non-finite loss, a crash) is reported with one line and does not stop the others.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from lit_infoprompt.config import GPU_ACCELERATORS, Config, load_config
from lit_infoprompt.devices import gpu_count
from lit_infoprompt.experiment import Arm
from lit_infoprompt.sweep import memory
from lit_infoprompt.sweep.locks import claim, run_key

log = logging.getLogger(__name__)


_BACKBONES: Dict[str, tuple] = {}  # per process: model settings -> (backbone, tokenizer)


@dataclass
class Job:
    """One run of a grid: its config, composed once when the grid is made (``model.name=auto`` and
    ``trainer.precision=auto`` still unresolved: ``job_config`` resolves a copy where the run is made), the arm it
    is a run of, its seed and prompt lr (None: the configured one), and the runs to reuse first where they match."""

    config: Config
    arm: Arm
    seed: int
    prompt_lr: Optional[float] = None
    prefer: tuple = ()  # run directories to reuse first (an archived experiment's own runs: analysis.runs.find_run)

    @property
    def label(self) -> str:
        """The arm's name: what failures, progress lines and the comparison call this run's arm."""
        return self.arm.name

    @property
    def method(self) -> str:
        """The arm's method preset."""
        return self.arm.method


@dataclass
class Launch:
    """How a sweep runs its grid (``compare``/``robustness`` arguments workers=, threads=, launcher=, slurm_*=)."""

    workers: object = 1  # a count, or "auto"
    threads: Optional[int] = None  # torch threads per worker on CPU (default: cores // workers)
    launcher: str = "local"  # local | submitit
    submitit_cluster: Optional[str] = None  # None: SLURM when srun exists, else local processes; or local | debug
    slurm: Dict[str, object] = field(default_factory=dict)  # partition, gpus, cpus, time (minutes), mem_gb, array


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)



def visible_gpus(accelerator: str = "auto") -> List[str]:
    """The GPUs this process may give its workers, as ``CUDA_VISIBLE_DEVICES`` names them: the entries of this
    process's own list where it has one (indices, or UUIDs such as ``MIG-...``: kept as strings), else 0..n-1. None
    when the runs are set to another accelerator (``trainer.accelerator=cpu``) or no GPU is visible."""
    if str(accelerator).lower() not in GPU_ACCELERATORS:
        return []
    count = gpu_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not count or listed is None:
        return [str(i) for i in range(count)]
    return [name.strip() for name in listed.split(",") if name.strip()][:count]


def plan_workers(launch: Launch, accelerator: str = "auto") -> tuple[int, int, List[Optional[str]]]:
    """(workers, threads per worker, the device of each worker: a ``CUDA_VISIBLE_DEVICES`` entry of this process,
    or None on CPU)."""
    gpus = visible_gpus(accelerator)
    if launch.workers == "auto":
        workers = len(gpus) or 1  # CPU: measured no faster split into workers (make bench-workers)
    else:
        workers = int(launch.workers)
    threads = launch.threads or max(1, cpu_count() // workers)
    devices = [gpus[i % len(gpus)] for i in range(workers)] if gpus else [None] * workers
    return workers, threads, devices


def on_one_gpu(job: Job) -> Job:
    """The job as a local grid on GPUs runs it: each worker sees one GPU, and an explicit accelerator makes a worker
    that sees none fail instead of training on CPU. Part of the run's config, so the parent looks for finished runs
    with it too (the same run key as the worker's). On CPU jobs are left alone: runs keep trainer.accelerator=auto
    and still match the runs made before (the archive's)."""
    config = copy.deepcopy(job.config)
    config.trainer.accelerator, config.trainer.devices = "gpu", 1
    return replace(job, config=config)


def crowding_warning(config, devices: Sequence[Optional[str]]) -> Optional[str]:
    """One line when the workers that share a GPU would not fit in its memory (``memory.workers_warning``'s
    estimate from the backbone's shape, batch, tokens and precision); None when they fit, on CPU, or when the
    backbone's config or the GPU cannot be read."""
    per_gpu = max(Counter(d for d in devices if d is not None).values(), default=0)
    if per_gpu <= 1:
        return None
    try:
        import torch
        from transformers import AutoConfig

        shape = AutoConfig.from_pretrained(config.model.name).to_dict()
        gpu_gib = torch.cuda.get_device_properties(0).total_memory / memory.GIB
    except Exception:  # noqa: BLE001 - a warning only: never stop a grid for it
        return None
    if not all(key in shape for key in ("num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size")):
        return None
    return memory.workers_warning(shape, config.data.batch_size, config.model.max_length + config.prompt.length,
                                  config.trainer.precision, config.model.dtype, per_gpu, gpu_gib,
                                  name=Path(str(config.model.name)).name)


def grid_jobs(overrides: Sequence[str], methods: Sequence[Union[str, Arm]], seeds: Sequence[int],
              prompt_lrs: Sequence[Optional[float]] = (None,), values: Optional[Dict[str, object]] = None,
              origins: Optional[dict] = None) -> List[Job]:
    """Every (arm, prompt lr, seed) as a run of the grid, its config composed here, once: the typed ``values``
    (an experiment's settings), the arm's preset, seed and prompt lr (None keeps the configured one), then the
    ``overrides`` (text: the command line's, an experiment file's) and the arm's own. An arm is a preset's name or
    an ``Arm`` (a preset with overrides of its own)."""
    arms = [m if not isinstance(m, str) else Arm(m, m) for m in methods]
    jobs = []
    for a in arms:
        for lr in prompt_lrs:
            for seed in seeds:
                settings = {**(values or {}), "method": a.method, "seed": seed}
                if lr is not None:
                    settings["optim.prompt_lr"] = lr
                config = load_config([*overrides, *a.overrides], origins=origins, values=settings)
                jobs.append(Job(config, a, seed, lr))
    return jobs


# -- one run ---------------------------------------------------------------------------------------------
def job_config(job: Job, planned: bool = False) -> Config:
    """A copy of the job's config as its run will save it (``model.name=auto`` and ``trainer.precision=auto``
    resolved): what the parent's lookup of finished runs, a worker's claim and the run itself must all see
    alike. ``planned``: for a plan, without torch and without fetching anything: the backbone as a run would
    resolve it from what is cached or reachable, precision ``auto`` as 32-true off a GPU and bf16-mixed on one
    (the GPUs the project targets have bf16)."""
    config = copy.deepcopy(job.config)
    if planned:
        from lit_infoprompt import hub
        from lit_infoprompt.devices import planned_on_gpu

        if config.model.name == hub.DEFAULT_MODEL:
            paper = hub.in_hf_cache(hub.PAPER_BACKBONE) or hub.hub_reachable()
            config.model.name = hub.PAPER_BACKBONE if paper else str(hub.models_dir() / hub.FALLBACK_NAME)
        if config.trainer.precision == "auto":
            config.trainer.precision = "bf16-mixed" if planned_on_gpu(config.trainer.accelerator) else "32-true"
        return config
    from lit_infoprompt.hub import resolve_backbone
    from lit_infoprompt.train.runner import resolve_precision

    resolve_backbone(config)
    resolve_precision(config)
    return config


def backbone_for(model_config) -> tuple:
    from lit_infoprompt.model.backbone import load_backbone

    key = json.dumps(model_config.__dict__, sort_keys=True, default=str)
    if key not in _BACKBONES:
        _BACKBONES[key] = load_backbone(model_config)
    return _BACKBONES[key]


def execute(job: Job) -> dict:
    """Reuse, resume or train one run; never raises: a failure comes back as {"error": one line}."""
    from lit_infoprompt.analysis.runs import find_run
    from lit_infoprompt.train.runner import run

    started = time.perf_counter()
    try:
        config = job_config(job)
        config.trainer.progress_bar = False  # the grid prints one line per finished run instead
        with claim(Path(config.out_dir) / ".claims" / f"{run_key(config)}.lock"):
            run_dir, finished = find_run(config)
            if finished:
                return _reused(run_dir)
            if run_dir is not None:
                log.warning("resuming %s", run_dir)
                config.resume = str(run_dir)
            summary = run(config, *backbone_for(config.model))
        return {"run_dir": summary["run_dir"], "reused": False, "seconds": time.perf_counter() - started,
                **_scores(Path(summary["run_dir"]) / "summary.json")}
    except Exception as err:  # noqa: BLE001 - every failure is reported, the grid goes on
        first = str(err).splitlines()[0] if str(err) else ""
        return {"error": f"{type(err).__name__}: {first}", "seconds": time.perf_counter() - started}


def _reused(run_dir: Path) -> dict:
    """The result of a run found finished: reused, not trained."""
    return {"run_dir": str(run_dir), "reused": True, **_scores(run_dir / "summary.json")}


def _scores(summary_path: Path) -> dict:
    summary = json.loads(summary_path.read_text())
    test = next((k for k in summary if k.startswith("test_")), None)
    return {"best_dev": summary.get("best_dev"), "test_metric": test, "test": summary.get(test)}


# -- the grid --------------------------------------------------------------------------------------------
class Progress:
    """One line per finished run and a count with an estimate of the time left."""

    def __init__(self, total: int, parallel: int):
        self.total, self.parallel, self.done, self.trained_seconds, self.trained = total, parallel, 0, 0.0, 0
        self.started = time.perf_counter()

    def line(self, job: Job, result: dict) -> str:
        self.done += 1
        lr = "" if job.prompt_lr is None else f" lr {job.prompt_lr:g}"
        what = f"{job.label} seed {job.seed}{lr}"
        if "error" in result:
            status = f"FAILED: {result['error']}"
        else:
            status = (f"best dev {result['best_dev']:.4f}, {result['test_metric']} {result['test']:.4f}, "
                      + ("reused" if result["reused"] else f"{result['seconds']:.0f} s"))
            if not result["reused"]:
                self.trained_seconds += result["seconds"]
                self.trained += 1
        left = self.total - self.done
        eta = ""
        if left and self.trained:
            eta = f"; about {math.ceil(self.trained_seconds / self.trained * left / self.parallel / 60)} min left"
        return f"[{self.done}/{self.total}] {what}: {status}{eta}"


def run_grid(jobs: Sequence[Job], launch: Launch, report=print, target: Callable[[Job], dict] = execute) -> List[dict]:
    """Every job's result (in job order): {"run_dir", "reused", ...} or {"error"}. Finished runs are found first and
    not sent to any worker. ``target`` runs one job (``execute``; the tests wrap it)."""
    from lit_infoprompt.analysis.runs import find_run

    workers, threads, devices = len(jobs) or 1, 0, []
    if launch.launcher == "local" and jobs:
        workers, threads, devices = plan_workers(launch, jobs[0].config.trainer.accelerator)
        if any(d is not None for d in devices):
            jobs = [on_one_gpu(job) for job in jobs]
    results: List[Optional[dict]] = [None] * len(jobs)
    pending = []
    for i, job in enumerate(jobs):
        config = job_config(job)  # as the worker will see it: the same config, the same run found
        if i == 0 and (crowded := crowding_warning(config, devices)):
            report(f"WARNING {crowded}")
        run_dir, finished = find_run(config, job.prefer)
        if finished:
            results[i] = _reused(run_dir)
        else:
            pending.append(i)
    if launch.launcher != "local":
        workers = len(pending) or 1
    progress = Progress(len(jobs), max(1, min(workers, len(pending) or 1)))
    for i, result in enumerate(results):
        if result is not None:
            report(progress.line(jobs[i], result))
    if launch.launcher == "submitit":
        _submitit(jobs, pending, launch, results, progress, report)
    elif workers <= 1 or len(pending) <= 1:
        for i in pending:
            results[i] = target(jobs[i])
            report(progress.line(jobs[i], results[i]))
    else:
        _pool(jobs, pending, workers, threads, devices, results, progress, report, target)
    return results


def _pool(jobs, pending, workers, threads, devices, results, progress, report, target=execute) -> None:
    """``pending`` on ``workers`` worker processes (``pool.run_pool``: a dead worker is replaced, its run tried again)."""
    from lit_infoprompt.sweep.pool import run_pool

    def done(i: int, result: dict) -> None:
        results[i] = result
        report(progress.line(jobs[i], result))

    run_pool(jobs, pending, workers, threads, devices, target, done, report)


def _submitit(jobs, pending, launch: Launch, results, progress, report) -> None:
    try:
        import submitit
    except ImportError:
        from lit_infoprompt.errors import InputError
        raise InputError("launcher=submitit needs the 'submitit' package: pip install submitit") from None
    if not pending:
        return
    out_dir = Path(jobs[pending[0]].config.out_dir)
    executor = submitit.AutoExecutor(folder=out_dir / "submitit" / "%j", cluster=launch.submitit_cluster)
    slurm = launch.slurm
    parameters = {"timeout_min": int(slurm.get("time", 60)), "name": "lit_infoprompt"}
    if slurm.get("gpus") is not None:
        parameters["gpus_per_node"] = int(slurm["gpus"])
    if slurm.get("cpus") is not None:
        parameters["cpus_per_task"] = int(slurm["cpus"])
    if slurm.get("mem_gb") is not None:
        parameters["mem_gb"] = float(slurm["mem_gb"])
    if slurm.get("partition"):
        parameters["slurm_partition"] = str(slurm["partition"])
    if slurm.get("array") is not None:
        parameters["slurm_array_parallelism"] = int(slurm["array"])
    executor.update_parameters(**parameters)
    submitted = executor.map_array(execute, [jobs[i] for i in pending])
    index = {id(job): i for job, i in zip(submitted, pending)}
    for job in submitit.helpers.as_completed(submitted):
        i = index[id(job)]
        try:
            results[i] = job.result()
        except Exception as err:  # noqa: BLE001 - the job died without a result (time limit, node failure)
            first = str(err).strip().splitlines()
            results[i] = {"error": f"job {job.job_id} died: {first[-1] if first else type(err).__name__}"}
        report(progress.line(jobs[i], results[i]))
