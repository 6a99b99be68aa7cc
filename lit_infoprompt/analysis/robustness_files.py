"""Robustness to the prompt initialisation: each method's test metric per initialisation (mean ± std over seeds), the
std of the per-initialisation means (sensitivity to the initialisation alone) and the std over all (init, seed)
runs. Output: ``<out_dir>/robustness/<task>-<split>/`` summary.md, summary.json, runs.txt, spec.json.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Dict, List, Optional

from lit_infoprompt.analysis.aggregation_check import (check_comparable, code_lines, code_versions, environments,
                                                mixed_versions)
from lit_infoprompt.analysis.runs import listed, read_run, run_split_words
from lit_infoprompt.analysis.aggregates import mean_std, prompt_lrs
from lit_infoprompt.analysis.tables import fmt
from lit_infoprompt.experiment import INITS  # the prompt initialisations a robustness sweep varies



def robustness_spread(runs: List[dict], methods: List[str], metric: str) -> dict:
    table = {}
    for method in methods:
        by_init: Dict[str, List[float]] = {init: [] for init in INITS}
        for r in runs:
            if r["summary"]["method"] == method:
                by_init[r["config"]["prompt"]["init"]].append(r["summary"][metric])
        per_init = {init: mean_std(values) for init, values in by_init.items() if values}
        means = [stat["mean"] for stat in per_init.values()]
        table[method] = {"per_init": per_init, "all": mean_std([v for vs in by_init.values() for v in vs]),
                         "std_of_init_means": statistics.stdev(means) if len(means) > 1 else 0.0}
    return table


def robustness_markdown(table: dict, header: str, metric: str) -> str:
    inits = [i for i in INITS if any(i in row["per_init"] for row in table.values())]
    lines = [f"# Robustness to prompt initialisation: {header}", "", f"Test `{metric}`, mean ± std over seeds.", "",
             "| method | " + " | ".join(inits) + " | std of init means | all runs |", "|---" * (len(inits) + 3) + "|"]
    for method, row in table.items():
        cells = [fmt(row["per_init"][i]) if i in row["per_init"] else "n/a" for i in inits]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {row['std_of_init_means']:.4f} | {fmt(row['all'])} |")
    methods = list(table)
    base = methods[0]
    for method in methods[1:]:
        ours, ref = table[method], table[base]
        lines += ["", f"`{method}` vs `{base}`: std of the per-initialisation means {ours['std_of_init_means']:.4f} vs "
                  f"{ref['std_of_init_means']:.4f}, std over all runs {ours['all']['std']:.4f} vs {ref['all']['std']:.4f}: "
                  f"{'less' if ours['all']['std'] < ref['all']['std'] else 'not less'} spread over initialisations and "
                  f"seeds; mean over all runs {ours['all']['mean']:.4f} vs {ref['all']['mean']:.4f}; lowest "
                  f"initialisation mean {min(v['mean'] for v in ours['per_init'].values()):.4f} vs "
                  f"{min(v['mean'] for v in ref['per_init'].values()):.4f}."]
    return "\n".join(lines) + "\n"


def rates_words(rates: Dict[str, List[float]], rates_from: Optional[str]) -> str:
    """Each arm's prompt lr in words: "<arm> <rate>, ..." and, where a comparison chose them, "(chosen on dev in
    <it>)"."""
    words = ", ".join(f"{m} {', '.join(f'{lr:g}' for lr in lrs)}" for m, lrs in rates.items())
    return words + (f" (chosen on dev in {rates_from})" if rates_from else "")


def write_robustness(run_dirs: List[Path], methods: List[str], root: Path, source: Optional[str] = None,
                     allow_mixed_versions: bool = False, name: Optional[str] = None,
                     relative_to: Optional[Path] = None) -> Path:
    """The spread table of ``run_dirs`` in ``root/<task>-<split>`` (or ``root/<name>``), with its ``spec.json``."""
    runs = [read_run(d) for d in run_dirs]
    check_comparable(runs, may_differ=("prompt.init", "optim.prompt_lr") if source else ("prompt.init",),
                     allow_mixed_versions=allow_mixed_versions)
    metric = next(k for k in runs[0]["summary"] if k.startswith("test_"))
    table = robustness_spread(runs, methods, metric)
    first = runs[0]["summary"]
    rates = {m: prompt_lrs([r for r in runs if r["summary"]["method"] == m]) for m in methods}
    seeds = sorted({r["summary"]["seed"] for r in runs})
    steps = runs[0]["config"]["trainer"]["max_steps"]
    header = (f"{first['task']} {run_split_words(first)}, backbone {Path(first['backbone']).name}, seeds {seeds}, "
              f"{steps} steps, prompt lr {rates_words(rates, source and Path(source).name)}")
    out = root / (name or f"{first['task']}-{Path(run_dirs[0]).parents[2].name}")  # <task>-<the run folder's split>
    out.mkdir(parents=True, exist_ok=True)
    versions = code_versions(runs)
    ending = code_lines(versions, mixed_versions(runs), environments(runs))
    text = robustness_markdown(table, header, metric) + "\n".join(ending) + "\n"
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps({
        "header": header, "task": first["task"], "split": run_split_words(first),
        "backbone": Path(first["backbone"]).name, "steps": steps, "metric": metric, "prompt_lrs": rates,
        "rates_from": source and Path(source).name, "methods": table, "code_versions": versions}, indent=2) + "\n")
    (out / "runs.txt").write_text("".join(f"{d}\n" for d in listed(run_dirs, relative_to)))
    spec = {"kind": "robustness", "methods": methods, "rates_from": source and Path(source).name,
            "allow_mixed_versions": allow_mixed_versions, "runs": listed(run_dirs, relative_to)}
    (out / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    return out
