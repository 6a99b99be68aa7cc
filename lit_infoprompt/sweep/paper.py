"""``make paper``: the paper's grid, the experiment files of ``conf/experiment/paper/``, planned, costed and run with
one command.

``paper plan=true`` (no torch, no GPU, no hub): the runs (done, to train), GPU memory per worker at the grid's shapes
(``sweep.memory``), how many workers fit on a 40, 80 and 141 GB GPU, GPU-hours and wall-clock on one GPU and on N
from the per-step cost model (``sweep.cost``, its assumptions printed; a ``make gpu-check`` JSON replaces them),
and the SLURM job array ``launcher=submitit`` submits. ``paper`` trains every missing run of every experiment as one
grid (locally: workers pinned to the visible GPUs; ``launcher=submitit``: one job array), resumable like any grid,
writes each experiment's comparison, then the report of the folder into its own results file.

A shrunk grid (``only=``, ``arms=``, ``seeds=``, ``steps=``, ``model=``, ``prompt_lrs=``: a smoke test, e.g. the
tiny model with a few steps) is not the paper's: it must name its own ``archive=`` and ``results=``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep import cost, memory
from lit_infoprompt.sweep.args import list_items
from lit_infoprompt.experiment import EXPERIMENTS_DIR, Experiment, load_experiment
from lit_infoprompt.sweep.experiment_runs import run_experiment
from lit_infoprompt.sweep.grid import job_config
from lit_infoprompt.sweep.plan import LAUNCH_PREFIXES, RunIndex, backbone_name, jobs_of, plan
from lit_infoprompt.sweep.reporting import experiment_files

PAPER_DIR = EXPERIMENTS_DIR / "paper"
ARCHIVE = "docs/paper/results"
RESULTS = "docs/paper/RESULTS.md"
SHRINK = ("only", "arms", "seeds", "steps", "model", "prompt_lrs")
OWN = (*SHRINK, "plan", "experiments", "results", "gpus", "gpu_check")


@dataclass
class Paper:
    folder: Path
    experiments: List[Experiment]
    extra: List[str] = field(default_factory=list)  # machine settings and launch keys, as for make experiment
    out_dir: str = "runs"
    archive: str = ARCHIVE
    results: str = RESULTS
    planned: bool = False
    shrunk: List[str] = field(default_factory=list)  # the shrink keys given
    gpus: int = 8  # N of the plan's wall-clock on N GPUs
    gpu_check: Optional[str] = None  # a make gpu-check JSON whose measured step replaces the cost model's


def shrink(e: Experiment, keys: Dict[str, str]) -> Experiment:
    """The experiment with the grid's shrink keys applied (one error line for an arm or value it cannot take)."""
    changes: dict = {}
    if "arms" in keys:
        wanted = list_items(keys["arms"])
        unknown = [a for a in wanted if a not in e.arms]
        if unknown or not wanted:
            raise InputError(f"arms={keys['arms']}: {e.name} has no arm {', '.join(unknown) or '(none given)'} "
                             f"(its arms: {', '.join(e.arms)})")
        baseline = e.baseline or next(iter(e.arms))
        if baseline not in wanted:
            raise InputError(f"arms={keys['arms']}: keep the baseline {baseline}, every other arm is paired with it")
        changes["arms"] = {a: e.arms[a] for a in e.arms if a in wanted}
    try:
        if "seeds" in keys:
            changes["seeds"] = [int(s) for s in list_items(keys["seeds"])]
        if "steps" in keys:
            changes["steps"] = int(keys["steps"])
        if "prompt_lrs" in keys:
            changes["prompt_lrs"] = [float(v) for v in list_items(keys["prompt_lrs"])]
    except ValueError as err:
        raise InputError(f"paper: {err}") from None
    if "model" in keys:
        changes["model"] = keys["model"]
    return replace(e, **changes)


def parse_paper_args(args: List[str]) -> Paper:
    """``paper [plan=true] [experiments=<folder>] [only=a,b] [arms=..] [seeds=..] [steps=N] [model=..]
    [prompt_lrs=..] [out_dir=runs] [archive=docs/paper/results] [results=docs/paper/RESULTS.md] [gpus=N]
    [gpu_check=<json>] [key=value ...]``."""
    bad = [a for a in args if "=" not in a]
    if bad:
        raise InputError(f"paper: '{bad[0]}' is not key=value (paper [plan=true] [only=<names>] [seeds=..] ...)")
    keys = {a.partition("=")[0]: a.partition("=")[2] for a in args}
    folder = Path(keys.get("experiments") or PAPER_DIR)
    experiments = [load_experiment(str(p)) for p in experiment_files(folder)]
    if not experiments:
        raise InputError(f"no experiment files in {folder}")
    if "only" in keys:
        wanted, names = list_items(keys["only"]), [e.name for e in experiments]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise InputError(f"only={keys['only']}: no experiment {unknown[0]} in {folder} (known: {', '.join(names)})")
        experiments = [e for e in experiments if e.name in wanted]
    experiments = [shrink(e, keys) for e in experiments]
    out_dir = keys.get("out_dir", "runs")
    archive, results = keys.get("archive", ARCHIVE), keys.get("results", RESULTS)
    shrunk = [k for k in SHRINK if k in keys]
    planned = keys.get("plan", "").lower() in ("1", "true", "yes")
    changed = [k for k in shrunk if k != "only"]  # only= runs some experiments in full: still the paper's
    if changed and not planned and (archive == ARCHIVE or results == RESULTS):
        raise InputError(f"paper: {', '.join(k + '=' for k in changed)} shrink the grid, which is then not the "
                         f"paper's: give it its own archive=<folder> and results=<file> (not {ARCHIVE}, {RESULTS})")
    try:
        gpus = int(keys.get("gpus", 8))
    except ValueError:
        raise InputError(f"gpus: expected a number of GPUs, got {keys['gpus']!r}") from None
    extra = [a for a in args if a.partition("=")[0] not in OWN and not a.startswith(("out_dir=", "archive="))]
    extra += [f"out_dir={out_dir}", f"archive={archive}"]
    return Paper(folder, experiments, extra, out_dir, archive, results, planned, shrunk, max(1, gpus),
                 keys.get("gpu_check"))


# -- the plan ------------------------------------------------------------------------------------------------------
def backbone_shape(name: str) -> Optional[dict]:
    """The layers and widths of a backbone: a known name (``memory.SHAPES``) or a folder's config.json."""
    key = backbone_name(name)
    if key in memory.SHAPES:
        return memory.SHAPES[key]
    config = Path(str(name)).expanduser() / "config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        if all(k in data for k in ("num_hidden_layers", "hidden_size", "intermediate_size")):
            return data
    return None


@dataclass
class ExperimentPlan:
    experiment: Experiment
    runs: int
    done: int
    config: object  # one run's config: the shape every run of it shares
    precision: str = "auto"  # trainer.precision as the files set it (auto: bf16-mixed on a GPU)


def plan_experiment(e: Experiment, p: Paper, index: RunIndex) -> ExperimentPlan:
    """Runs wanted and done (looked up run by run only where the run folders hold runs of this task and backbone:
    elsewhere none can be done, and the lookup is skipped), and one run's config."""
    jobs, _ = jobs_of(e, p.extra, p.out_dir, p.archive)
    config = job_config(jobs[0], planned=True)
    precision = str(jobs[0].config.trainer.precision)
    same = [r for r in index.finished if r.get("task") == e.task and backbone_name(r.get("backbone")) ==
            backbone_name(config.model.name)]
    done = len(plan(e, p.extra, p.out_dir, p.archive, index=index).done) if same else 0
    return ExperimentPlan(e, len(jobs), done, config, precision)


def check_paper(p: Paper, planned: bool = False) -> None:
    """Before the plan or any run: each experiment's arms, backbone and data, once (``before_runs``)."""
    from lit_infoprompt.sweep.before_runs import check_experiment

    for e in p.experiments:
        check_experiment(e, p.extra, planned=planned, model_given="model" in p.shrunk)


def paper_plan(p: Paper) -> List[ExperimentPlan]:
    check_paper(p, planned=True)
    index = RunIndex([Path(p.out_dir), Path(p.archive) / "runs"])
    return [plan_experiment(e, p, index) for e in p.experiments]


def paper_plan_text(p: Paper, plans: List[ExperimentPlan]) -> str:
    total, done = sum(x.runs for x in plans), sum(x.done for x in plans)
    lines = [f"paper grid: {len(plans)} experiments ({p.folder}), {total} runs: {done} done, {total - done} to train"
             + (f" (shrunk: {', '.join(p.shrunk)})" if p.shrunk else "")]
    for x in plans:
        e = x.experiment
        rates = f"rate chosen on dev from {', '.join(f'{lr:g}' for lr in e.prompt_lrs)}" if e.prompt_lrs else \
            (f"rates from {e.rates_from}" if e.rates_from else "configured rate")
        lines.append(f"  {e.name}: {e.task} {e.split_words}, {len(e.arms)} arms x {len(e.seeds)} seeds, {rates}, {e.steps} "
                     f"steps: {x.runs} runs, {x.done} done")
    config = plans[0].config
    shape = backbone_shape(config.model.name)
    precision = "bf16-mixed" if plans[0].precision == "auto" else plans[0].precision
    mode = memory.mode_of(precision, config.model.dtype)
    tokens = config.model.max_length + config.prompt.length
    if shape is None:
        lines.append(f"  backbone {config.model.name}: no shape known (memory.SHAPES or a folder's config.json): "
                     "no memory or cost estimate")
        return "\n".join(lines)
    need = memory.estimate(shape, config.data.batch_size, tokens, mode)
    lines += [f"  backbone {backbone_name(config.model.name)} ({shape['num_hidden_layers']} layers, d "
              f"{shape['hidden_size']}), batch {config.data.batch_size} x {tokens} tokens (max_length "
              f"{config.model.max_length} + prompt {config.prompt.length}), {mode} (trainer.precision "
              f"{plans[0].precision} on a GPU)",
              f"  GPU memory per worker: {need['worker_gib']:.1f} GiB (weights {need['weights_gib']:.2f}, autocast "
              f"copies {need['casts_gib']:.2f}, activations {need['activations_gib']:.2f}, x{memory.MARGIN} margin, "
              f"+{memory.CONTEXT_GIB} CUDA context; sweep/memory.py)",
              "  workers that fit: " + ", ".join(f"{g} {memory.workers_that_fit(need['worker_gib'], gib)}"
                                                 for g, (gib, _) in cost.GPUS.items())
              + f" (with {memory.RESERVE_GIB:g} GiB left free)"]
    measured = cost.measured_ms_per_token(p.gpu_check)
    todo = {x.experiment.name: x.runs - x.done for x in plans}
    per_gpu = {}
    for gpu in cost.GPUS:
        seconds = []
        for x in plans:
            seconds += [cost.run_seconds(cost.shape_of(x.config, shape), gpu)] * todo[x.experiment.name]
        per_gpu[gpu] = seconds
    if measured:
        lines.append(f"  cost model: measured by make gpu-check on {measured['device']} "
                     f"({measured['ms_per_token'] * 1000:.3f} us per training token at {measured['from']}); the "
                     "other GPUs from the FLOPs model:")
        seconds = [cost.run_seconds(cost.shape_of(x.config, shape), "", measured["ms_per_token"])
                   for x in plans for _ in range(todo[x.experiment.name])]
        per_gpu = {measured["device"]: seconds, **per_gpu}
    else:
        lines.append("  cost model (assumed, no GPU has measured it yet; gpu_check=<make gpu-check JSON> replaces it):")
    lines += [f"    - {a}" for a in cost.ASSUMPTIONS]
    for gpu, seconds in per_gpu.items():
        lines.append(f"  {gpu}: {sum(seconds) / 3600:.1f} GPU-hours; wall-clock {cost.wall_hours(seconds, 1):.1f} h "
                     f"on 1 GPU, {cost.wall_hours(seconds, p.gpus):.1f} h on {p.gpus} GPUs (gpus=N); one run "
                     f"{min(seconds, default=0) / 60:.1f}-{max(seconds, default=0) / 60:.1f} min")
    n = sum(todo.values())
    time_limit = cost.array_time_minutes(per_gpu["H100 80GB"])
    lines += [f"  SLURM with launcher=submitit: one job array of {n} tasks (a run each), 1 GPU per task, time limit "
              f"{time_limit} min (1.5 x the longest run on an H100 80GB; slurm_time= sets it), at most slurm_array= "
              "tasks at once;",
              f"    as sbatch would say it: --array=0-{max(n - 1, 0)}%<slurm_array> --gpus-per-node=1 --time={time_limit} "
              "--partition=<slurm_partition>",
              "  run it: make paper (LAUNCHER=submitit SLURM_PARTITION=<p> for the cluster); a second call trains only "
              "what is missing"]
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------------------------
def run_paper(p: Paper, report=print) -> Path:
    """Every missing run of the grid as one grid (one job array under submitit), each experiment's comparison, then
    the report of the folder into ``p.results``."""
    from lit_infoprompt.sweep.args import parse_launch
    from lit_infoprompt.sweep.grid import Launch, run_grid
    from lit_infoprompt.sweep.reporting import report as write_report

    check_paper(p)
    launch = Launch()
    for item in p.extra:
        key, _, value = item.partition("=")
        if item.startswith(LAUNCH_PREFIXES):
            parse_launch(launch, key, value)
    jobs = [job for e in p.experiments for job in jobs_of(e, p.extra, p.out_dir, p.archive)[0]]
    report(f"paper grid: {len(jobs)} runs over {len(p.experiments)} experiments")
    results = run_grid(jobs, launch, report=report)
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        report(f"{len(failed)} runs failed (each experiment's comparison lists them); the first: {failed[0]}")
    for e in p.experiments:  # every run is there now: each comparison only reads
        out = run_experiment(e, [a for a in p.extra if not a.startswith(LAUNCH_PREFIXES)], p.out_dir, p.archive)
        report(f"-> {out}")
    Path(p.results).parent.mkdir(parents=True, exist_ok=True)
    return write_report(p.out_dir, p.results, p.archive, str(p.folder))
