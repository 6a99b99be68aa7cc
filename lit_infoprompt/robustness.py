"""``robustness``: each method under every prompt initialisation x seed, and the spread of its results.

The paper claims InfoPrompt is less sensitive to the prompt's initialisation than vanilla prompt tuning.
For each method this reports the test metric per initialisation (mean ± std over seeds), the std of the
per-initialisation means (sensitivity to the initialisation alone) and the std over all (init, seed) runs.
Output: ``<out_dir>/robustness/<task>-<split>/`` summary.md, summary.json, runs.txt.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Dict, List

from lit_infoprompt.compare import check_comparable, fmt, mean_std, parse_sweep, read_run, run_all, sets_prompt_lr
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError

INITS = ["random", "vocab", "text", "label_words"]


def spread(runs: List[dict], methods: List[str], metric: str) -> dict:
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


def markdown(table: dict, header: str, metric: str) -> str:
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


def chosen_rates(folder: str, methods: List[str]) -> Dict[str, float]:
    """Each method's prompt lr chosen on dev by a ``compare`` grid (its summary.json)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"prompt_lr_from: no comparison at {path} (run `make compare ... LRS=...` first)")
    choice = json.loads(path.read_text()).get("prompt_lr_choice") or {}
    missing = [m for m in methods if m not in choice]
    if missing:
        raise InputError(f"prompt_lr_from: {path} chose no prompt lr for {', '.join(missing)} (was it run with LRS?)")
    return {m: choice[m]["chosen"] for m in methods}


def robustness(args: List[str]) -> Path:
    """CLI entry: ``robustness [methods=[...]] [seeds=[...]] [prompt_lr_from=<compare folder>] [key=value ...]``.
    With ``prompt_lr_from`` each method runs at the prompt lr its ``compare`` grid chose on dev."""
    source = [a.partition("=")[2] for a in args if a.startswith("prompt_lr_from=")]
    methods, seeds, _, prompt_lrs, overrides = parse_sweep([a for a in args if not a.startswith("prompt_lr_from=")])
    if len(prompt_lrs) > 1:
        raise InputError("robustness runs one prompt learning rate per method (optim.prompt_lr=... or "
                         "prompt_lr_from=<compare folder>), not a grid")
    config = load_config([*overrides, f"method={methods[0]}"])  # fails early on a bad override
    if source and (prompt_lrs[0] is not None or sets_prompt_lr(overrides)):
        raise InputError("give the prompt learning rate either as prompt_lr_from or as optim.prompt_lr, not both")
    rates = chosen_rates(source[0], methods) if source else \
        {m: prompt_lrs[0] if prompt_lrs[0] is not None else config.optim.prompt_lr for m in methods}
    loaded: dict = {}  # one backbone for the whole sweep
    run_dirs = [d for init in INITS for m in methods
                for d in run_all([*overrides, f"prompt.init={init}"], [m], seeds, [rates[m]], loaded)]
    runs = [read_run(d) for d in run_dirs]
    check_comparable(runs, may_differ=("prompt.init", "optim.prompt_lr") if source else ("prompt.init",))
    metric = next(k for k in runs[0]["summary"] if k.startswith("test_"))
    table = spread(runs, methods, metric)
    first = runs[0]["summary"]
    split = Path(run_dirs[0]).parents[2].name
    lrs = ", ".join(f"{m} {rates[m]:g}" for m in methods)
    header = (f"{first['task']} {split}, backbone {Path(first['backbone']).name}, seeds {sorted(set(seeds))}, "
              f"{config.trainer.max_steps} steps, prompt lr {lrs}" + (f" (chosen on dev in {source[0]})" if source else ""))
    out = Path(config.out_dir) / "robustness" / f"{config.task.name}-{split}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown(table, header, metric))
    (out / "summary.json").write_text(json.dumps({"header": header, "metric": metric, "methods": table}, indent=2) + "\n")
    (out / "runs.txt").write_text("".join(f"{d}\n" for d in run_dirs))
    return out
