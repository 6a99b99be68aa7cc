"""``compare``: run (or reuse) every (arm, seed), then put their convergence side by side. An arm is a method
preset, or a preset with config overrides under a name of its own (``sweep.args``).

With ``prompt_lrs=[a,b,...]`` every method is also run at each prompt learning rate of that grid, and each
method's rate is chosen on dev (``analysis.comparison_files``). A finished run is reused when its saved config equals the
requested one (all but output settings, ``analysis.runs``); an unfinished one with a checkpoint is resumed, so an
interrupted sweep continues where it stopped. Output in ``<out_dir>/compare/<task>-<split>/``: curves.png,
summary.md, summary.json, runs.txt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from lit_infoprompt.analysis.comparison_files import write_comparison
from lit_infoprompt.analysis.runs import as_dict, experiment_key
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import Arm
from lit_infoprompt.sweep.declared import adhoc_name
from lit_infoprompt.sweep.args import Sweep, chosen_rates, parse_sweep, refuse_ddp, sweep_jobs
from lit_infoprompt.sweep.before_runs import check_before_runs
from lit_infoprompt.sweep.grid import Job, Launch, job_config, run_grid

log = logging.getLogger(__name__)


def arm_spec(arms: List[Arm], jobs: List[Job]) -> Optional[Dict[str, dict]]:
    """What each arm is, for the comparison and its spec.json (``analysis.arms``): its preset, its overrides and
    its config's values of every key some arm of its preset overrides (taken from the config its first job's run
    will save). None where every arm is a preset under its own name. Refuses an override that is no setting of the
    experiment (an output setting) and two arms that would run the same experiment."""
    if not any(a.overrides or a.name != a.method for a in arms):
        return None
    first: Dict[str, Job] = {}
    for job in jobs:
        first.setdefault(job.label, job)
    flat = {arm.name: experiment_key(as_dict(job_config(first[arm.name]))) for arm in arms}
    for arm in arms:
        unknown = [k for k in (o.partition("=")[0] for o in arm.overrides) if k not in flat[arm.name]]
        if unknown:
            raise InputError(f"the arm {arm.name}: {', '.join(unknown)} is no setting of the experiment (an output "
                             f"setting, or a whole section): an arm overrides what a run trains")
    spec, seen = {}, {}
    for arm in arms:
        keys = sorted({o.partition("=")[0] for other in arms if other.method == arm.method for o in other.overrides})
        spec[arm.name] = {"method": arm.method, "overrides": list(arm.overrides),
                          "match": {k: flat[arm.name][k] for k in keys}}
        same = seen.setdefault(json.dumps([arm.method, spec[arm.name]["match"]], sort_keys=True, default=str), arm.name)
        if same != arm.name:
            raise InputError(f"methods: the arms {same} and {arm.name} would run the same experiment: give them "
                             f"different settings")
    return spec


def run_all(jobs: List[Job], launch: Optional[Launch] = None) -> tuple[List[Path], List[dict], List[str]]:
    """Reuse, resume or train every job (``grid.run_grid``: in this process, a worker pool or SLURM jobs); returns
    (the run directories to compare, in job order; the failed runs: arm, seed, prompt lr, error; the arm of each run
    directory). A failed run leaves its seed out of its arm's grid (the other rates of that seed too, so every rate
    keeps the same seeds) unless the rate failed for every seed, in which case that rate leaves the grid."""
    results = run_grid(jobs, launch or Launch(), report=lambda line: log.warning("%s", line))
    failed = [(j, r) for j, r in zip(jobs, results) if "error" in r]
    dead_rates = {(a, lr) for a, lr in {(j.label, j.prompt_lr) for j in jobs}
                  if all("error" in r for j, r in zip(jobs, results) if (j.label, j.prompt_lr) == (a, lr))}
    dropped = {(j.label, j.seed) for j, _ in failed if (j.label, j.prompt_lr) not in dead_rates}
    kept = [(j, r) for j, r in zip(jobs, results) if "error" not in r and (j.label, j.seed) not in dropped]
    failures = [{"method": j.label, "seed": j.seed, "prompt_lr": j.prompt_lr, "error": r["error"]} for j, r in failed]
    if not kept:
        raise InputError(f"every run of the sweep failed; the first: {failures[0]['error']}")
    return [Path(r["run_dir"]) for _, r in kept], failures, [j.label for j, _ in kept]


def compare(args: List[str]) -> Path:
    """CLI entry: ``compare [methods=[a,b,<arm>=<preset>+<key>=<value>...]] [seeds=[13,21]] [target=<dev score>]
    [margin=<score>] [prompt_lrs=[1e-3,1e-2] | prompt_lr_from=<compare folder>] [allow_mixed_versions=true]
    [name=<folder>] [key=value ...]``; the output folder is ``<out_dir>/compare/<name>``, by default
    ``<task>-<split>`` (a name lets two comparisons of one task, e.g. the ablations, live side by side)."""
    return run_comparison(parse_sweep(args))


def run_comparison(sweep: Sweep, prefer: Sequence[str] = (), declared: bool = False) -> Path:
    """Run (or reuse) every run of the sweep and write its comparison; ``prefer``: a declared experiment's own
    archived runs, reused first; ``declared``: this is ``make experiment`` running a declared file."""
    if sweep.name is not None:
        adhoc_name("compare", sweep.name, "", declared)  # a declared experiment's name: make experiment runs it
    arms = sweep.arms
    # once, before any run: each arm's keys, the model, the data
    configs = check_before_runs(arms, sweep.overrides, values=sweep.values, source=sweep.source,
                                from_source=list(sweep.origins))
    for config in configs.values():
        refuse_ddp(config)
    config = configs[arms[0].name]
    rates = chosen_rates(sweep.prompt_lr_from, sweep.methods, {a.name: a.method for a in arms}) \
        if sweep.prompt_lr_from else None
    jobs = [replace(job, prefer=tuple(prefer)) for job in sweep_jobs(sweep, rates)]  # own archived runs first
    spec = arm_spec(arms, jobs)
    run_dirs, failures, labels = run_all(jobs, sweep.launch)
    methods = [m for m in sweep.methods if m in labels]
    split = Path(run_dirs[0]).parents[2].name
    name = adhoc_name("compare", sweep.name, f"{config.task.name}-{split}", declared)
    if name != (sweep.name or f"{config.task.name}-{split}"):
        log.warning("runs/compare/%s: a one-off under its own name (%s-%s is a declared experiment: make experiment "
                    "E=%s-%s runs that one)", name, config.task.name, split, config.task.name, split)
    out = Path(config.out_dir) / "compare" / name
    write_comparison(run_dirs, methods, out, sweep.target, lr_grid=len(sweep.prompt_lrs) > 1,
                     allow_mixed_versions=sweep.allow_mixed_versions, rates_from=sweep.prompt_lr_from,
                     margin=sweep.margin, failures=failures, arms=spec and {m: spec[m] for m in methods})
    return out
