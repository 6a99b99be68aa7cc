"""``compare``: run (or reuse) every (method, seed), then put their convergence side by side.

With ``prompt_lrs=[a,b,...]`` every method is also run at each prompt learning rate of that grid, and each
method's rate is chosen on dev (``analysis.comparison``). A finished run is reused when its saved config equals the
requested one (all but output settings, ``analysis.runs``); an unfinished one with a checkpoint is resumed, so an
interrupted sweep continues where it stopped. Output in ``<out_dir>/compare/<task>-<split>/``: curves.png,
summary.md, summary.json, runs.txt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence

from lit_infoprompt.analysis.comparison import write_comparison
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep.args import chosen_rates, parse_sweep, refuse_ddp
from lit_infoprompt.sweep.grid import Job, Launch, run_grid

log = logging.getLogger(__name__)


def grid_jobs(overrides: List[str], methods: List[str], seeds: List[int],
              prompt_lrs: Sequence[Optional[float]] = (None,)) -> List[Job]:
    """Every (method, prompt lr, seed) as a run of the grid; a prompt lr of None keeps the configured one."""
    return [Job(tuple([*overrides, *([] if lr is None else [f"optim.prompt_lr={lr}"]), f"method={m}", f"seed={s}"]),
                m, s, lr) for m in methods for lr in prompt_lrs for s in seeds]


def run_all(jobs: List[Job], launch: Optional[Launch] = None) -> tuple[List[Path], List[dict]]:
    """Reuse, resume or train every job (``grid.run_grid``: in this process, a worker pool or SLURM jobs); returns
    (the run directories to compare, in job order; the failed runs: method, seed, prompt lr, error). A failed run
    leaves its seed out of its method's grid (the other rates of that seed too, so every rate keeps the same
    seeds) unless the rate failed for every seed, in which case that rate leaves the grid."""
    results = run_grid(jobs, launch or Launch(), report=lambda line: log.warning("%s", line))
    failed = [(j, r) for j, r in zip(jobs, results) if "error" in r]
    dead_rates = {(m, lr) for m, lr in {(j.method, j.prompt_lr) for j in jobs}
                  if all("error" in r for j, r in zip(jobs, results) if (j.method, j.prompt_lr) == (m, lr))}
    dropped = {(j.method, j.seed) for j, _ in failed if (j.method, j.prompt_lr) not in dead_rates}
    run_dirs = [Path(r["run_dir"]) for j, r in zip(jobs, results)
                if "error" not in r and (j.method, j.seed) not in dropped]
    failures = [{"method": j.method, "seed": j.seed, "prompt_lr": j.prompt_lr, "error": r["error"]} for j, r in failed]
    if not run_dirs:
        raise InputError(f"every run of the sweep failed; the first: {failures[0]['error']}")
    return run_dirs, failures


def compare(args: List[str]) -> Path:
    """CLI entry: ``compare [methods=[a,b]] [seeds=[13,21]] [target=<dev score>] [margin=<score>] [prompt_lrs=[1e-3,1e-2] |
    prompt_lr_from=<compare folder>] [allow_mixed_versions=true] [name=<folder>] [key=value ...]``; the output
    folder is ``<out_dir>/compare/<name>``, by default ``<task>-<split>`` (a name lets two comparisons of one
    task, e.g. the ablations, live side by side)."""
    sweep = parse_sweep(args)
    config = load_config([*sweep.overrides, f"method={sweep.methods[0]}"])  # fails early on a bad override
    refuse_ddp(config)
    if sweep.prompt_lr_from:
        rates = chosen_rates(sweep.prompt_lr_from, sweep.methods)
        jobs = [job for m in sweep.methods for job in grid_jobs(sweep.overrides, [m], sweep.seeds, [rates[m]])]
    else:
        jobs = grid_jobs(sweep.overrides, sweep.methods, sweep.seeds, sweep.prompt_lrs)
    run_dirs, failures = run_all(jobs, sweep.launch)
    methods = [m for m in sweep.methods if any(Path(d).parents[1].name == m for d in run_dirs)]
    split = Path(run_dirs[0]).parents[2].name
    out = Path(config.out_dir) / "compare" / (sweep.name or f"{config.task.name}-{split}")
    write_comparison(run_dirs, methods, out, sweep.target, lr_grid=len(sweep.prompt_lrs) > 1,
                     allow_mixed_versions=sweep.allow_mixed_versions, rates_from=sweep.prompt_lr_from,
                     margin=sweep.margin, failures=failures)
    return out
