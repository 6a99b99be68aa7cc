"""``robustness``: each method under every prompt initialisation x seed, and the spread of its results.

The paper claims InfoPrompt is less sensitive to the prompt's initialisation than vanilla prompt tuning; the
spread is written by ``analysis.robustness_files``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Sequence

from lit_infoprompt.analysis.robustness_files import INITS, write_robustness
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep.args import chosen_rates, parse_sweep, refuse_ddp
from lit_infoprompt.sweep.before_runs import check_before_runs
from lit_infoprompt.sweep.grid import Arm
from lit_infoprompt.sweep.comparison_runs import grid_jobs, run_all
from lit_infoprompt.sweep.declared import adhoc_name


def robustness(args: List[str], prefer: Sequence[str] = (), declared: bool = False) -> Path:
    """CLI entry: ``robustness [methods=[...]] [seeds=[...]] [prompt_lr_from=<compare folder>]
    [allow_mixed_versions=true] [inits=[random,vocab,...]] [key=value ...]``. With ``prompt_lr_from`` each method
    runs at the prompt lr its ``compare`` grid chose on dev; ``inits`` (default: all four) the initialisations."""
    inits = list(INITS)
    for item in [a for a in args if a.startswith("inits=")]:
        inits = [v for v in item.partition("=")[2].strip("[]").replace(",", " ").split() if v]
        if not inits or any(i not in INITS for i in inits):
            raise InputError(f"inits: expected some of {', '.join(INITS)}, got {item.partition('=')[2]!r}")
    sweep = parse_sweep([a for a in args if not a.startswith("inits=")])
    if sweep.name is not None:
        adhoc_name("robustness", sweep.name, "", declared)  # a declared experiment's name: make experiment runs it
    if sweep.arms:
        raise InputError(f"robustness takes method presets, not arms ({', '.join(sweep.arms)}): it varies "
                         f"prompt.init itself; compare takes arms")
    methods, seeds, overrides, source = sweep.methods, sweep.seeds, sweep.overrides, sweep.prompt_lr_from
    if len(sweep.prompt_lrs) > 1:
        raise InputError("robustness runs one prompt learning rate per method (optim.prompt_lr=... or "
                         "prompt_lr_from=<compare folder>), not a grid")
    # once, before any run: every method's keys, the model folder, the data
    config = check_before_runs([Arm(m, m) for m in methods], overrides)[methods[0]]
    refuse_ddp(config)
    rates = chosen_rates(source, methods) if source else \
        {m: sweep.prompt_lrs[0] if sweep.prompt_lrs[0] is not None else config.optim.prompt_lr for m in methods}
    jobs = [job for init in inits for m in methods
            for job in grid_jobs([*overrides, f"prompt.init={init}"], [m], seeds, [rates[m]])]
    jobs = [replace(job, prefer=tuple(prefer)) for job in jobs]  # a declared experiment's own archived runs first
    run_dirs, failures, _ = run_all(jobs, sweep.launch)  # a failed run is reported in the log and left out
    split = Path(run_dirs[0]).parents[2].name
    name = adhoc_name("robustness", sweep.name, f"{config.task.name}-{split}", declared)
    return write_robustness(run_dirs, methods, Path(config.out_dir) / "robustness", source, sweep.allow_mixed_versions,
                            name=name)
