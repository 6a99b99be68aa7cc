"""``compare``: run (or reuse) every (method, seed), then put their convergence side by side.

With ``prompt_lrs=[a,b,...]`` every method is also run at each prompt learning rate of that grid, and each
method's rate is chosen on dev only: the highest mean best-dev score over the seeds (ties: the higher mean
dev AUC, then the smaller rate). The tables and paired tests use each method's chosen rate; the grid's dev
scores are reported next to them. Test scores play no part in the choice.

A finished run is reused when its saved config equals the requested one (all but output settings); an
unfinished one with a checkpoint is resumed, so an interrupted sweep continues where it stopped. The
aggregate refuses runs that differ in anything but the method and the seed. Output in
``<out_dir>/compare/<task>-<split>/``: curves.png, summary.md, summary.json, runs.txt.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from omegaconf import OmegaConf

from lit_infoprompt.config import Config, load_config, load_saved
from lit_infoprompt.convergence import area_under_curve, best_row, steps_to_target
from lit_infoprompt.errors import InputError
from lit_infoprompt.plots import plot_curves

log = logging.getLogger(__name__)
IGNORED = {"resume", "out_dir", "logger", "wandb", "trainer.progress_bar"}  # output settings, not the experiment
DEFAULT_SEEDS = [13, 21, 42, 87, 100]


def experiment_key(config: dict, drop: Sequence[str] = ()) -> dict:
    """The config as a nested dict without the output settings (and without ``drop``)."""
    flat = {}
    for section, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat[section] = value
    skip = IGNORED | set(drop)
    return {k: v for k, v in flat.items() if k not in skip and k.split(".")[0] not in skip}


def as_dict(config: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config))


def saved_dict(path: Path) -> dict:
    return as_dict(load_saved(path))


def find_run(config: Config) -> tuple[Optional[Path], bool]:
    """(run directory with the same experiment, finished?) or (None, False)."""
    want = experiment_key(as_dict(config))
    parent = Path(config.out_dir) / config.task.name
    for config_file in sorted(parent.glob(f"*/{config.method.name}/seed{config.seed}/version_*/config.yaml")):
        if experiment_key(saved_dict(config_file)) == want:
            run_dir = config_file.parent
            finished = (run_dir / "summary.json").is_file()
            if finished or (run_dir / "checkpoints/last.ckpt").is_file():
                return run_dir, finished
    return None, False


def run_all(overrides: List[str], methods: List[str], seeds: List[int],
            prompt_lrs: Sequence[Optional[float]] = (None,), loaded: Optional[dict] = None) -> List[Path]:
    """Every (method, prompt lr, seed): reuse, resume or train. A prompt lr of None keeps the configured one.
    One backbone serves all runs: it is loaded at the first run that trains and kept in ``loaded``, which a
    caller passes again to share it across calls (all runs of a sweep use the same model settings)."""
    from lit_infoprompt.backbone import load_backbone
    from lit_infoprompt.train import run

    loaded = {} if loaded is None else loaded
    run_dirs = []
    for method, lr, seed in [(m, lr, s) for m in methods for lr in prompt_lrs for s in seeds]:
        lr_override = [] if lr is None else [f"optim.prompt_lr={lr}"]
        config = load_config([*overrides, *lr_override, f"method={method}", f"seed={seed}"])
        run_dir, finished = find_run(config)
        if finished:
            log.warning("compare: reusing finished run %s", run_dir)
            run_dirs.append(run_dir)
            continue
        if "backbone" not in loaded:
            loaded["backbone"] = load_backbone(config.model)
        if run_dir is not None:
            log.warning("compare: resuming %s", run_dir)
            config.resume = str(run_dir)
        run_dirs.append(Path(run(config, *loaded["backbone"])["run_dir"]))
    return run_dirs


def read_run(run_dir: Path) -> dict:
    with (run_dir / "curve.csv").open() as handle:
        curve = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return {"dir": run_dir, "config": saved_dict(run_dir / "config.yaml"),
            "summary": json.loads((run_dir / "summary.json").read_text()), "curve": curve}


def check_comparable(runs: List[dict], may_differ: Sequence[str] = ()) -> None:
    """Runs may differ in method and seed only (and ``may_differ``); each seed's runs used the same data."""
    drop = ("method", "seed", *may_differ)
    reference = experiment_key(runs[0]["config"], drop=drop)
    for r in runs[1:]:
        key = experiment_key(r["config"], drop=drop)
        if key != reference:
            diff = sorted(k for k in set(key) | set(reference) if key.get(k) != reference.get(k))
            raise InputError(f"cannot compare {r['dir']} with {runs[0]['dir']}: they differ in {', '.join(diff)}")
    by_seed: Dict[int, set] = {}
    for r in runs:
        by_seed.setdefault(r["summary"]["seed"], set()).add(r["summary"]["split_checksum"])
    mixed = [seed for seed, sums in by_seed.items() if len(sums) > 1]
    if mixed:
        raise InputError(f"runs of seed(s) {mixed} used different data (split checksums differ)")


def mean_std(values: List[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def paired_test(baseline: Dict[int, float], other: Dict[int, float]) -> dict:
    """Per-seed differences other - baseline; two-sided paired t-test (scipy.stats.ttest_rel) and, as a
    check that needs no normality, the exact Wilcoxon signed-rank test."""
    seeds = sorted(set(baseline) & set(other))
    diffs = [other[s] - baseline[s] for s in seeds]
    result = {"seeds": seeds, "differences": diffs, **{f"diff_{k}": v for k, v in mean_std(diffs).items()},
              "t_test_p": None, "wilcoxon_p": None}
    if len(seeds) >= 2 and any(d != 0 for d in diffs):
        from scipy import stats
        result["t_test_p"] = float(stats.ttest_rel([other[s] for s in seeds], [baseline[s] for s in seeds]).pvalue)
        result["wilcoxon_p"] = float(stats.wilcoxon(diffs).pvalue)
    return result


def choose_prompt_lr(runs: List[dict], methods: List[str]) -> Dict[str, dict]:
    """Per method, the grid's dev scores and the chosen prompt lr (dev curves only, never test scores)."""
    metric = f"val/{runs[0]['summary']['dev_metric']}"
    choice = {}
    for method in methods:
        by_lr: Dict[float, List[dict]] = {}
        for r in runs:
            if r["summary"]["method"] == method:
                by_lr.setdefault(r["config"]["optim"]["prompt_lr"], []).append(r)
        seed_sets = {lr: sorted(r["summary"]["seed"] for r in rs) for lr, rs in by_lr.items()}
        if len({tuple(seeds) for seeds in seed_sets.values()}) > 1:
            raise InputError(f"{method}: the prompt lrs of the grid were run on different seeds: {seed_sets}")
        grid = [{"prompt_lr": lr, "best_dev": mean_std([best_row(r["curve"], metric)[metric] for r in rs]),
                 "dev_auc": mean_std([area_under_curve(r["curve"], metric) for r in rs])}
                for lr, rs in sorted(by_lr.items())]
        best = max(grid, key=lambda g: (g["best_dev"]["mean"], g["dev_auc"]["mean"], -g["prompt_lr"]))
        choice[method] = {"chosen": best["prompt_lr"], "grid": grid}
    return choice


def aggregate(runs: List[dict], methods: List[str], target: Optional[float]) -> dict:
    """Per-method statistics and paired differences against the first method (the baseline)."""
    metric = f"val/{runs[0]['summary']['dev_metric']}"
    test_keys = [k for k in runs[0]["summary"] if k.startswith("test_")]
    by_method = {m: [r for r in runs if r["summary"]["method"] == m] for m in methods}
    if target is None:  # default: the baseline's mean best dev score
        target = statistics.fmean(best_row(r["curve"], metric)[metric] for r in by_method[methods[0]])
    table = {}
    for method, method_runs in by_method.items():
        steps = [steps_to_target(r["curve"], metric, target) for r in method_runs]
        table[method] = {
            "prompt_lr": sorted({r["config"]["optim"]["prompt_lr"] for r in method_runs}),
            **{key: mean_std([r["summary"][key] for r in method_runs]) for key in test_keys},
            "best_dev": mean_std([best_row(r["curve"], metric)[metric] for r in method_runs]),
            "dev_auc": mean_std([area_under_curve(r["curve"], metric) for r in method_runs]),
            "steps_to_target": {**mean_std(steps), "reached": sum(s is not None for s in steps), "of": len(steps)},
            "seeds": sorted(r["summary"]["seed"] for r in method_runs),
        }
    main = test_keys[0]
    per_seed = {m: {r["summary"]["seed"]: r["summary"][main] for r in rs} for m, rs in by_method.items()}
    paired = {m: paired_test(per_seed[methods[0]], per_seed[m]) for m in methods[1:]}
    return {"metric": metric, "target_dev": target, "test_metric": main, "methods": table,
            "paired_vs_" + methods[0]: paired}


def fmt(stat: dict, digits: int = 4) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown(result: dict, header: str, methods: List[str]) -> str:
    test_keys = [k for k in result["methods"][methods[0]] if k.startswith("test_")]
    lines = [f"# {header}", "", f"Dev metric `{result['metric']}`; target dev score {result['target_dev']:.4f} "
             f"(steps to target: first evaluated step at or above it). Mean ± std over seeds.", "",
             "| method | prompt lr | seeds | " + " | ".join(test_keys)
             + " | best dev | dev AUC | steps to target (reached) |", "|---" * (6 + len(test_keys)) + "|"]
    for method in methods:
        row = result["methods"][method]
        steps = row["steps_to_target"]
        reached = f"{steps['mean']:.0f} ({steps['reached']}/{steps['of']})" if steps["mean"] is not None else \
            f"never (0/{steps['of']})"
        lr = ", ".join(f"{v:g}" for v in row["prompt_lr"])
        lines.append(f"| {method} | {lr} | {len(row['seeds'])} | " + " | ".join(fmt(row[k]) for k in test_keys)
                     + f" | {fmt(row['best_dev'])} | {fmt(row['dev_auc'])} | {reached} |")
    paired = result[f"paired_vs_{methods[0]}"]
    if paired:
        lines += ["", f"Paired differences in `{result['test_metric']}` against `{methods[0]}` (same seed, same "
                  "data): two-sided paired t-test, and the exact Wilcoxon signed-rank test as a check.", "",
                  "| method | per-seed differences | mean ± std | t-test p | Wilcoxon p |", "|---|---|---|---|---|"]
        for method, test in paired.items():
            diffs = ", ".join(f"{s}: {d:+.4f}" for s, d in zip(test["seeds"], test["differences"]))
            p = {k: ("n/a" if test[k] is None else f"{test[k]:.3f}") for k in ("t_test_p", "wilcoxon_p")}
            lines.append(f"| {method} | {diffs} | {test['diff_mean']:+.4f} ± {test['diff_std']:.4f} | "
                         f"{p['t_test_p']} | {p['wilcoxon_p']} |")
    if result.get("prompt_lr_choice"):
        rates = sorted({g["prompt_lr"] for c in result["prompt_lr_choice"].values() for g in c["grid"]})
        lines += ["", "Prompt learning rate chosen on dev (mean best-dev score over the seeds; ties: mean dev AUC, "
                  "then the smaller rate). Mean best dev ± std per rate; **bold** = chosen.", "",
                  "| method | " + " | ".join(f"{lr:g}" for lr in rates) + " |", "|---" * (1 + len(rates)) + "|"]
        for method, choice in result["prompt_lr_choice"].items():
            cells = {g["prompt_lr"]: fmt(g["best_dev"]) for g in choice["grid"]}
            lines.append(f"| {method} | " + " | ".join(
                (f"**{cells[lr]}**" if lr == choice["chosen"] else cells[lr]) if lr in cells else "n/a"
                for lr in rates) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(run_dirs: List[Path], methods: List[str], out: Path, target: Optional[float],
                     lr_grid: bool = False) -> dict:
    """The comparison of ``run_dirs``; with ``lr_grid`` each method's runs at its dev-chosen prompt lr."""
    runs = [read_run(d) for d in run_dirs]
    check_comparable(runs, may_differ=("optim.prompt_lr",) if lr_grid else ())
    choice = choose_prompt_lr(runs, methods) if lr_grid else {}
    if lr_grid:
        runs = [r for r in runs if r["config"]["optim"]["prompt_lr"] == choice[r["summary"]["method"]]["chosen"]]
    result = aggregate(runs, methods, target)
    result["prompt_lr_choice"] = choice
    first = runs[0]["summary"]
    seeds = sorted({r["summary"]["seed"] for r in runs})
    split = f"{first['shots']}-shot" if first["shots"] else f"{first['protocol']} {first['split_size']}"
    steps = runs[0]["config"]["trainer"]["max_steps"]
    header = f"{first['task']} {split}, backbone {Path(first['backbone']).name}, seeds {seeds}, {steps} steps"
    if lr_grid:
        header += f", prompt lr chosen on dev from {sorted({g['prompt_lr'] for c in choice.values() for g in c['grid']})}"
    out.mkdir(parents=True, exist_ok=True)
    label = {m: f"{m}, prompt lr {choice[m]['chosen']:g}" if lr_grid else m for m in methods}
    curves = {label[m]: [r["curve"] for r in runs if r["summary"]["method"] == m] for m in methods}
    plot_curves(curves, result["metric"], header, out / "curves.png")
    (out / "summary.md").write_text(markdown(result, header, methods))
    (out / "summary.json").write_text(json.dumps({"header": header, **result}, indent=2, default=str) + "\n")
    (out / "runs.txt").write_text("".join(f"{d}\n" for d in run_dirs))
    return result


def parse_sweep(args: List[str]) -> tuple:
    """(methods, seeds, target, prompt_lrs, overrides) from ``methods=[a,b] seeds=[13,21] target=<score>
    prompt_lrs=[1e-3,1e-2] key=value ...``; prompt_lrs is [None] (the configured rate) when not given."""
    methods, seeds, target, prompt_lrs, overrides = ["prompt_tuning", "infoprompt"], list(DEFAULT_SEEDS), None, [None], []
    for item in args:
        key, _, value = item.partition("=")
        if key in ("methods", "seeds", "prompt_lrs"):
            values = [v for v in value.strip("[]").replace(",", " ").split() if v]
            try:
                if key == "methods":
                    methods = values
                elif key == "seeds":
                    seeds = [int(v) for v in values]
                else:
                    prompt_lrs = sorted({float(v) for v in values}) or [None]
            except ValueError:
                raise InputError(f"{key}: expected a list of numbers, got {value!r}") from None
            if key == "prompt_lrs" and any(lr is not None and lr <= 0 for lr in prompt_lrs):
                raise InputError(f"prompt_lrs: learning rates must be positive, got {value!r}")
        elif key == "target":
            target = float(value)
        else:
            overrides.append(item)
    if len(methods) < 1 or not seeds:
        raise InputError("compare needs at least one method and one seed")
    if prompt_lrs != [None] and sets_prompt_lr(overrides):
        raise InputError("give the prompt learning rate either as prompt_lrs=[...] or as optim.prompt_lr, not both")
    return methods, seeds, target, prompt_lrs, overrides


def sets_prompt_lr(overrides: List[str]) -> bool:
    return any(o.startswith("optim.prompt_lr=") for o in overrides)


def compare(args: List[str]) -> Path:
    """CLI entry: ``compare [methods=[a,b]] [seeds=[13,21]] [target=<dev score>] [prompt_lrs=[1e-3,1e-2]]
    [name=<folder>] [key=value ...]``; the output folder is ``<out_dir>/compare/<name>``, by default
    ``<task>-<split>`` (a name lets two comparisons of one task, e.g. the ablations, live side by side)."""
    names = [a.partition("=")[2] for a in args if a.startswith("name=")]
    if names and (len(names) > 1 or not names[0] or "/" in names[0] or names[0].startswith(".")):
        raise InputError(f"name: expected one folder name (no '/'), got {names}")
    methods, seeds, target, prompt_lrs, overrides = parse_sweep([a for a in args if not a.startswith("name=")])
    config = load_config([*overrides, f"method={methods[0]}"])  # fails early on a bad override
    run_dirs = run_all(overrides, methods, seeds, prompt_lrs)
    split = Path(run_dirs[0]).parents[2].name
    out = Path(config.out_dir) / "compare" / (names[0] if names else f"{config.task.name}-{split}")
    write_comparison(run_dirs, methods, out, target, lr_grid=len(prompt_lrs) > 1)
    return out

