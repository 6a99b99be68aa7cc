"""``robustness``: each method under every prompt initialisation x seed, and the spread of its results.

The paper claims InfoPrompt is less sensitive to the prompt's initialisation than vanilla prompt tuning; the
spread is written by ``analysis.robustness_files``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Sequence

from lit_infoprompt.analysis.robustness_files import write_robustness
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import INITS
from lit_infoprompt.sweep.args import Sweep, chosen_rates, parse_sweep, refuse_ddp, sweep_jobs
from lit_infoprompt.sweep.before_runs import check_before_runs
from lit_infoprompt.sweep.comparison_runs import run_all
from lit_infoprompt.sweep.declared import adhoc_name


def robustness(args: List[str]) -> Path:
    """CLI entry: ``robustness [methods=[...]] [seeds=[...]] [prompt_lr_from=<compare folder>]
    [allow_mixed_versions=true] [inits=[random,vocab,...]] [key=value ...]``. With ``prompt_lr_from`` each method
    runs at the prompt lr its ``compare`` grid chose on dev; ``inits`` (default: all four) the initialisations."""
    sweep = parse_sweep(args)
    sweep.inits = sweep.inits or list(INITS)
    return run_robustness(sweep)


def run_robustness(sweep: Sweep, prefer: Sequence[str] = (), declared: bool = False) -> Path:
    """Every method under every initialisation x seed (or reuse them), then the spread of its results."""
    if sweep.name is not None:
        adhoc_name("robustness", sweep.name, "", declared)  # a declared experiment's name: make experiment runs it
    if any(a.overrides or a.name != a.method for a in sweep.arms):
        raise InputError(f"robustness takes method presets, not arms "
                         f"({', '.join(a.name for a in sweep.arms if a.overrides or a.name != a.method)}): it varies "
                         f"prompt.init itself; compare takes arms")
    methods, source = sweep.methods, sweep.prompt_lr_from
    if len(sweep.prompt_lrs) > 1:
        raise InputError("robustness runs one prompt learning rate per method (optim.prompt_lr=... or "
                         "prompt_lr_from=<compare folder>), not a grid")
    # once, before any run: every method's keys, the model folder, the data
    config = check_before_runs(sweep.arms, sweep.overrides, values=sweep.values, source=sweep.source,
                               from_source=list(sweep.origins))[methods[0]]
    refuse_ddp(config)
    rates = chosen_rates(source, methods) if source else \
        {m: sweep.prompt_lrs[0] if sweep.prompt_lrs[0] is not None else config.optim.prompt_lr for m in methods}
    jobs = [replace(job, prefer=tuple(prefer)) for job in sweep_jobs(sweep, rates)]  # own archived runs first
    run_dirs, failures, _ = run_all(jobs, sweep.launch)  # a failed run is reported in the log and left out
    split = Path(run_dirs[0]).parents[2].name
    name = adhoc_name("robustness", sweep.name, f"{config.task.name}-{split}", declared)
    return write_robustness(run_dirs, methods, Path(config.out_dir) / "robustness", source, sweep.allow_mixed_versions,
                            name=name)
