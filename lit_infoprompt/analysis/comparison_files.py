"""A comparison's files from finished runs: curves.png, summary.md, summary.json, runs.txt and spec.json (what
``report`` needs to compute it again).

With a prompt lr grid each method's rate is chosen on dev only: the highest mean best-dev score over the seeds
(ties: the higher mean dev AUC, then the smaller rate). The tables and paired tests use each method's chosen rate;
the grid's dev scores are reported next to them. Test scores play no part in the choice. The runs must differ in
nothing but the method and the seed (``aggregation_check.check_comparable``); the arms of a comparison (``arms``:
a preset plus config overrides under a name of its own) also in the keys they override. Every table is keyed on
the arm's name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from lit_infoprompt.analysis.arms import arm_keys, arm_of, assign, complete, describe_arms, described
from lit_infoprompt.analysis.ceiling import with_fractions
from lit_infoprompt.analysis.aggregation_check import check_comparable
from lit_infoprompt.analysis.plots import plot_curves
from lit_infoprompt.analysis.runs import listed, read_run, run_split_words
from lit_infoprompt.analysis.aggregates import aggregate, choose_prompt_lr
from lit_infoprompt.analysis.tables import comparison_markdown


def write_comparison(run_dirs: List[Path], methods: List[str], out: Path, target: Optional[float],
                     lr_grid: bool = False, allow_mixed_versions: bool = False, rates_from: Optional[str] = None,
                     relative_to: Optional[Path] = None, margin: Optional[float] = None,
                     failures: Sequence[dict] = (), arms: Optional[Dict[str, dict]] = None) -> dict:
    """The comparison of ``run_dirs`` between the arms ``methods`` (``arms``: what each arm is, ``analysis.arms``;
    without it each is the method preset of its name); with ``lr_grid`` each arm's runs at its dev-chosen prompt
    lr; with ``rates_from`` (a comparison folder whose grid chose each arm's rate) the arms' rates may differ.
    Also writes ``spec.json``, what ``report`` needs to compute this comparison again from the run directories."""
    runs = [read_run(d) for d in run_dirs]
    arms = complete(methods, arms)  # every arm, a plain preset too
    assign(runs, methods, arms)
    may_differ = ("optim.prompt_lr",) if lr_grid or rates_from else ()
    check_comparable(runs, may_differ=may_differ, allow_mixed_versions=allow_mixed_versions, arm_keys=arm_keys(arms))
    choice = choose_prompt_lr(runs, methods) if lr_grid else {}
    if lr_grid:
        runs = [r for r in runs if r["config"]["optim"]["prompt_lr"] == choice[arm_of(r)]["chosen"]]
    result = aggregate(runs, methods, target, margin)
    result["prompt_lr_choice"] = choice
    result["failed_runs"] = list(failures)
    if described(arms):
        result["arms"] = arms
    first = runs[0]["summary"]
    seeds = sorted({r["summary"]["seed"] for r in runs})
    split = run_split_words(first)
    result["steps"] = steps = runs[0]["config"]["trainer"]["max_steps"]
    header = f"{first['task']} {split}, backbone {Path(first['backbone']).name}, seeds {seeds}, {steps} steps"
    if lr_grid:
        header += f", prompt lr chosen on dev from {sorted({g['prompt_lr'] for c in choice.values() for g in c['grid']})}"
    if rates_from:
        header += f", prompt lr as chosen on dev in {Path(rates_from).name}"
    out.mkdir(parents=True, exist_ok=True)
    rates = {m: result["methods"][m]["prompt_lr"] for m in methods}
    label = {m: f"{m}, prompt lr {', '.join(f'{lr:g}' for lr in rates[m])}" if lr_grid or rates_from else m
             for m in methods}
    curves = {label[m]: [with_fractions(r) for r in runs if arm_of(r) == m] for m in methods}
    plot_curves(curves, result["metric"], header, out / "curves.png")
    text = comparison_markdown(result, header, methods)
    if described(arms):  # what each arm is, once, below the title
        title, rest = text.split("\n\n", 1)
        text = "\n\n".join([title, *describe_arms(methods, arms), rest])
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps({"header": header, "task": first["task"], "split": split,
                                                  "backbone": Path(first["backbone"]).name, **result}, indent=2,
                                                 default=str) + "\n")
    (out / "runs.txt").write_text("".join(f"{d}\n" for d in listed(run_dirs, relative_to)))
    spec = {"kind": "compare", "methods": methods, **({"arms": result["arms"]} if "arms" in result else {}),
            "target": target, "margin": margin, "lr_grid": lr_grid,
            "allow_mixed_versions": allow_mixed_versions, "rates_from": rates_from and Path(rates_from).name,
            "runs": listed(run_dirs, relative_to)}
    (out / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    return result
