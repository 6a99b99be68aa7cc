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
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from omegaconf import OmegaConf

from lit_infoprompt.bottleneck import ACTIVE_DIM_NATS
from lit_infoprompt.config import Config, load_config, load_saved, processes
from lit_infoprompt.convergence import area_under_curve, best_row, steps_to_target
from lit_infoprompt.errors import InputError
from lit_infoprompt.grid import Job, Launch, run_grid
from lit_infoprompt.plots import plot_curves
from lit_infoprompt.power import (METRIC_MARGIN, STEPS_MARGIN, constant_predictors, difference, sentence,
                                  test_gold_counts, test_noise)
from lit_infoprompt.provenance import describe, recorded, version_of

log = logging.getLogger(__name__)
# output settings and provenance, not the experiment
IGNORED = {"resume", "out_dir", "archive", "logger", "wandb", "trainer.progress_bar", "code", "backbone_notice"}
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
    """(run directory with the same experiment, finished?) or (None, False). Looks in ``out_dir`` and then among
    the finished runs of the archive (``<archive>/runs``, committed run files without checkpoints), so a sweep
    continues across machines."""
    want = experiment_key(as_dict(config))
    roots = [Path(config.out_dir)] + ([Path(config.archive) / "runs"] if config.archive else [])
    for root in roots:
        pattern = f"*/{config.method.name}/seed{config.seed}/version_*/config.yaml"
        for config_file in sorted((root / config.task.name).glob(pattern)):
            if experiment_key(saved_dict(config_file)) == want:
                run_dir = config_file.parent
                finished = (run_dir / "summary.json").is_file()
                if finished or (run_dir / "checkpoints/last.ckpt").is_file():
                    return run_dir, finished
    return None, False


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


def read_run(run_dir: Path) -> dict:
    with (run_dir / "curve.csv").open() as handle:
        curve = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return {"dir": run_dir, "config": saved_dict(run_dir / "config.yaml"),
            "summary": json.loads((run_dir / "summary.json").read_text()), "curve": curve}


def run_key(run: dict) -> str:
    """The code a run recorded (its identity, or a legacy hash; a run resumed under other code is a version of its
    own): how a comparison lists it."""
    code = run["config"].get("code") or {}
    resumed = run["summary"].get("code_resumed_with")
    return recorded(code) + (f"+{recorded(resumed)}" if resumed else "")


def run_version(run: dict) -> str:
    """The canonical identity of a run's code (``provenance.version_of``): what decides whether runs may be
    aggregated."""
    version = version_of(run["config"].get("code") or {})
    resumed = run["summary"].get("code_resumed_with")
    return version + (f"+{version_of(resumed)}" if resumed and version_of(resumed) != version else "")


def code_versions(runs: List[dict]) -> Dict[str, dict]:
    """{recorded version: {"describe": ..., "runs": count}} of the runs, in first-seen order."""
    versions: Dict[str, dict] = {}
    for r in runs:
        entry = versions.setdefault(run_key(r), {"describe": describe(r["config"].get("code") or {}), "runs": 0})
        entry["runs"] += 1
    return versions


def mixed_versions(runs: List[dict]) -> bool:
    return len({run_version(r) for r in runs}) > 1


def environments(runs: List[dict]) -> Optional[str]:
    """One line where the runs recorded different environments (library versions, device, precision, threads):
    'torch 2.13.0 (8 runs), 2.14.1 (2 runs); ...'; None where they agree or none was recorded."""
    recorded_envs = [r["summary"]["environment"] for r in runs if r["summary"].get("environment")]
    parts = []
    for key in sorted({k for env in recorded_envs for k in env}):
        counts: Dict[str, int] = {}
        for env in recorded_envs:
            counts[str(env.get(key))] = counts.get(str(env.get(key)), 0) + 1
        if len(counts) > 1:
            parts.append(f"{key} " + ", ".join(f"{v} ({n} runs)" for v, n in counts.items()))
    unrecorded = len(runs) - len(recorded_envs)
    if not parts:
        return None
    return "; ".join(parts) + (f"; {unrecorded} runs recorded none" if unrecorded else "")


def versions_text(versions: Dict[str, dict]) -> str:
    """'<commit> (clean), code <hash> (10 runs); ...' for summary.md and error messages."""
    return "; ".join(f"{v['describe']} ({v['runs']} runs)" for v in versions.values())


def prompt_lrs(runs: List[dict]) -> List[float]:
    """The distinct prompt learning rates of the runs, ascending."""
    return sorted({r["config"]["optim"]["prompt_lr"] for r in runs})


def check_comparable(runs: List[dict], may_differ: Sequence[str] = (), allow_mixed_versions: bool = False) -> None:
    """Runs may differ in method and seed only (and ``may_differ``); each seed's runs used the same data; all
    were made by the same code unless ``allow_mixed_versions``."""
    versions = code_versions(runs)
    if mixed_versions(runs) and not allow_mixed_versions:
        raise InputError(f"the runs were made by {len(versions)} code versions ({versions_text(versions)}): rerun them with one "
                         f"version, or pass allow_mixed_versions=true to aggregate them anyway")
    drop = ("method", "seed", "code", *may_differ)
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


TARGET_QUANTILES = (0.25, 0.5, 0.75)


def pooled_quantile(values: List[float], q: float) -> float:
    """The q-quantile (linear interpolation) of values."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def target_thresholds(by_method: Dict[str, List[dict]], metric: str) -> List[float]:
    """Dev-score thresholds that favour no method: the quartiles of the best dev scores of every run of every
    compared method (each method contributes its seeds, all methods run on the same seeds)."""
    pooled = [best_row(r["curve"], metric)[metric] for runs in by_method.values() for r in runs]
    return [pooled_quantile(pooled, q) for q in TARGET_QUANTILES]


def reaching(runs: List[dict], metric: str, target: float) -> dict:
    """Steps to a dev score: how many runs reached it, the mean step of those that did, and the median step over
    all runs with a run that never reached it counted as never (None when fewer than half reached it)."""
    steps = [steps_to_target(r["curve"], metric, target) for r in runs]
    reached = sorted(s for s in steps if s is not None)
    median = statistics.median(reached + [math.inf] * (len(steps) - len(reached)))
    return {**mean_std(steps), "reached": len(reached), "of": len(steps), "median_all": None if math.isinf(median) else median}


def estimator_diagnostics(runs: List[dict]) -> dict:
    """Per method: the estimator diagnostics of curve.csv (the first and last trained evaluation), mean over runs,
    and how many runs had an MI estimate that never moved (below 0.05 nats at every evaluation) or a collapsed
    bottleneck (no active latent dimension at the last evaluation)."""
    out = {}
    for name in ("mi_head_nats", "mi_rep_nats", "kl_per_dim", "active_dims", "sigma"):
        key = f"diag/{name}"
        series = [[row[key] for row in r["curve"] if key in row] for r in runs]
        series = [s for s in series if s]
        if not series:
            continue
        out[name] = {"first": statistics.fmean(s[0] for s in series), "last": statistics.fmean(s[-1] for s in series),
                     "max": max(max(s) for s in series), "runs": len(series)}
        if name.startswith("mi_"):
            out[name]["flat_runs"] = sum(max(s) < FLAT_NATS for s in series)
        if name == "active_dims":
            out[name]["collapsed_runs"] = sum(s[-1] == 0 for s in series)
    return out


FLAT_NATS = 0.05  # an InfoNCE estimate below this at every evaluation: the term is not learning


def power_vs_baseline(by_method: Dict[str, List[dict]], methods: List[str], main: str, metric: str, target: float,
                      margin: float, steps_margin: float) -> Dict[str, dict]:
    """Per method against the first: the paired differences (same seed) of the test metric, of dev AUC and of the
    steps to the target (seeds where both reached it), each with intervals, effect size, MDE and a verdict."""
    def per_seed(runs: List[dict]) -> Dict[int, dict]:
        return {r["summary"]["seed"]: {"test": r["summary"][main], "dev_auc": area_under_curve(r["curve"], metric),
                                       "steps": steps_to_target(r["curve"], metric, target)} for r in runs}

    base = per_seed(by_method[methods[0]])
    out = {}
    for method in methods[1:]:
        other = per_seed(by_method[method])
        seeds = sorted(set(base) & set(other))
        both = [s for s in seeds if base[s]["steps"] is not None and other[s]["steps"] is not None]
        out[method] = {
            "test": difference([other[s]["test"] - base[s]["test"] for s in seeds], margin).as_dict(),
            "dev_auc": difference([other[s]["dev_auc"] - base[s]["dev_auc"] for s in seeds], margin).as_dict(),
            "steps_to_target": {**difference([other[s]["steps"] - base[s]["steps"] for s in both], steps_margin,
                                             higher_is_better=False).as_dict(), "of": len(seeds)},
        }
    return out


def aggregate(runs: List[dict], methods: List[str], target: Optional[float], margin: Optional[float] = None) -> dict:
    """Per-method statistics and paired differences against the first method (the baseline). ``margin``: the
    equivalence margin of a score difference (default ``power.METRIC_MARGIN``); steps to target use
    ``power.STEPS_MARGIN`` x max_steps."""
    metric = f"val/{runs[0]['summary']['dev_metric']}"
    test_keys = [k for k in runs[0]["summary"] if k.startswith("test_")]
    by_method = {m: [r for r in runs if r["summary"]["method"] == m] for m in methods}
    thresholds = target_thresholds(by_method, metric)
    target_rule = "given" if target is not None else "median of the best dev scores of all runs of all methods"
    if target is None:
        target = thresholds[1]
    table = {}
    for method, method_runs in by_method.items():
        table[method] = {
            "prompt_lr": prompt_lrs(method_runs),
            **{key: mean_std([r["summary"][key] for r in method_runs]) for key in test_keys},
            "best_dev": mean_std([best_row(r["curve"], metric)[metric] for r in method_runs]),
            "dev_auc": mean_std([area_under_curve(r["curve"], metric) for r in method_runs]),
            "steps_to_target": reaching(method_runs, metric, target),
            "steps_to_thresholds": [reaching(method_runs, metric, t) for t in thresholds],
            "diagnostics": estimator_diagnostics(method_runs),
            "seeds": sorted(r["summary"]["seed"] for r in method_runs),
        }
    main = test_keys[0]
    main_name = main.removeprefix("test_")
    labels = runs[0]["config"]["task"]["labels"]
    for method, method_runs in by_method.items():
        table[method]["within_run_noise"] = test_noise(method_runs, main_name, labels)
    gold = test_gold_counts(runs[0]["summary"], runs[0].get("dir"))  # every run of a comparison has the same test set
    constant = None if gold is None else constant_predictors(gold, labels, [k.removeprefix("test_") for k in test_keys])
    if constant and main_name in constant:
        floor = constant[main_name]["score"]
        for method in by_method:  # above the floor by more than one run's own 95 % test interval?
            noise = table[method]["within_run_noise"]
            clear_by = noise["half_width"] if noise else 0.0
            gap = table[method][main]["mean"] - floor
            table[method]["vs_constant"] = {"constant": floor, "difference": gap, "clear_by": clear_by,
                                            "above": gap > clear_by}
    per_seed = {m: {r["summary"]["seed"]: r["summary"][main] for r in rs} for m, rs in by_method.items()}
    paired = {m: paired_test(per_seed[methods[0]], per_seed[m]) for m in methods[1:]}
    margin = METRIC_MARGIN if margin is None else margin
    steps_margin = STEPS_MARGIN * runs[0]["config"]["trainer"]["max_steps"]
    return {"metric": metric, "target_dev": target, "target_rule": target_rule,
            "thresholds": dict(zip([f"q{int(q * 100)}" for q in TARGET_QUANTILES], thresholds)),
            "test_metric": main, "methods": table, "paired_vs_" + methods[0]: paired,
            "power_vs_" + methods[0]: power_vs_baseline(by_method, methods, main, metric, target, margin, steps_margin),
            "margins": {"score": margin, "steps": steps_margin}, "code_versions": code_versions(runs),
            "constant_predictor": constant, **({"environments": envs} if (envs := environments(runs)) else {}),
            **({"mixed_versions": True} if mixed_versions(runs) else {})}


def fmt(stat: dict, digits: int = 4) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def steps_cell(stat: dict) -> str:
    """'150 (3/5)': the median step over all runs (never-reached counted as never), and how many reached it."""
    median = "never" if stat["median_all"] is None else f"{stat['median_all']:.0f}"
    return f"{median} ({stat['reached']}/{stat['of']})"


def diagnostics_lines(result: dict, methods: List[str]) -> List[str]:
    """The estimator diagnostics table and one plain sentence per finding (a flat MI estimate, a collapsed
    bottleneck)."""
    rows, findings = [], []
    for method in methods:
        diag = result["methods"][method].get("diagnostics") or {}
        if not diag:
            continue
        cell = {name: f"{d['first']:.3f} → {d['last']:.3f}" for name, d in diag.items()}
        rows.append(f"| {method} | {cell.get('mi_head_nats', '')} | {cell.get('mi_rep_nats', '')} | "
                    f"{cell.get('kl_per_dim', '')} | {cell.get('active_dims', '')} | {cell.get('sigma', '')} |")
        for name, term in (("mi_head_nats", "head loss"), ("mi_rep_nats", "representation loss")):
            if name in diag:
                d = diag[name]
                state = (f"never rose above {FLAT_NATS} nats in {d['flat_runs']}/{d['runs']} runs: that term is not "
                         f"learning there" if d["flat_runs"] else f"rose above {FLAT_NATS} nats in every run")
                findings.append(f"- `{method}`: the {term}'s MI estimate log(M+1) − L went from {d['first']:.3f} to "
                                f"{d['last']:.3f} nats (mean over runs; highest {d['max']:.3f}) and {state}.")
        if "active_dims" in diag:
            d, kl = diag["active_dims"], diag["kl_per_dim"]
            findings.append(f"- `{method}`: the bottleneck ended with {d['last']:.1f} active latent dimensions on "
                            f"average (KL per dimension {kl['last']:.3f} nats, mean σ {diag['sigma']['last']:.3f}); "
                            f"{d['collapsed_runs']}/{d['runs']} runs collapsed to the prior (no active dimension).")
    if not rows:
        return []
    return ["", "Estimator diagnostics (training, first → last evaluation interval, mean over runs): each InfoNCE "
            "term's MI estimate log(M+1) − L in nats (0 = the critic cannot tell the positive from its M negatives), "
            "the prompted posterior's KL to the prior per latent dimension, the number of active dimensions (mean KL "
            f"above {ACTIVE_DIM_NATS} nats) and the mean σ.", "",
            "| method | head MI (nats) | rep MI (nats) | KL per dim | active dims | σ |", "|---|---|---|---|---|---|",
            *rows, "", *findings]


def interval_text(interval: Optional[List[float]], digits: int) -> str:
    return "n/a" if interval is None else f"[{interval[0]:+.{digits}f}, {interval[1]:+.{digits}f}]"


def power_lines(result: dict, methods: List[str]) -> List[str]:
    """The paired differences with 95 % intervals, effect size, MDE and verdict, one sentence each; then the test
    set's own noise next to the spread across seeds."""
    power = result.get(f"power_vs_{methods[0]}") or {}
    margins = result["margins"]
    key = result["test_metric"].removeprefix("test_")
    quantities = (("test", f"test {key}", f"test {key}", 4, ""), ("dev_auc", "dev AUC", "dev AUC", 4, ""),
                  ("steps_to_target", "steps to target", f"steps to the target dev score {result['target_dev']:.4f}",
                   0, " steps"))
    lines, sentences = [], []
    for method in methods[1:]:
        for name, label, what, digits, unit in quantities:
            d = power[method][name]
            seeds = f"{d['n']}/{d['of']}" if "of" in d else f"{d['n']}"
            mean = "n/a" if d["mean"] is None else f"{d['mean']:+.{digits}f}"
            mde = "n/a" if d["mde"] is None else f"{d['mde']:.{digits}f}"
            dz = "n/a" if d["effect_size"] is None else f"{d['effect_size']:+.2f}"
            lines.append(f"| {method} | {label} | {seeds} | {mean} | {interval_text(d['t_interval'], digits)} | "
                         f"{interval_text(d['bootstrap_interval'], digits)} | {dz} | {mde} | {d['verdict']} |")
            both = f" Seeds where both reached the target: {d['n']} of {d['of']}." if "of" in d else ""
            sentences.append(f"- {sentence(f'`{method}` vs `{methods[0]}`', what, d, digits=digits, unit=unit)}{both}")
    if not lines:
        return []
    noise, findings = [], []
    for method in methods:
        tn = result["methods"][method].get("within_run_noise")
        stat = result["methods"][method][result["test_metric"]]
        if tn:
            if tn["sd_across"]:
                share = tn["sd_within"] / tn["sd_across"]
                findings.append(f"- `{method}`: the test set alone moves one run's score by sd {tn['sd_within']:.4f} "
                                f"({tn['n']} examples), {share:.2f}× the sd across seeds ({tn['sd_across']:.4f})"
                                + (": the seed-to-seed spread is no larger than what re-drawing the test set would "
                                   "give." if share >= 1 else "."))
            noise.append(f"| {method} | {fmt(stat)} | {tn['sd_within']:.4f} | ±{tn['half_width']:.4f} | {tn['n']} | "
                         f"{tn['method']} |")
    out = ["", f"Paired differences against `{methods[0]}` (per seed, other − baseline) with 95 % intervals: paired t, "
           f"and a percentile bootstrap over seeds (10,000 resamples) as a check; d_z = mean / sd of the differences; "
           f"MDE = the smallest true difference a two-sided paired t-test at 0.05 detects with 80 % power, given these "
           f"seeds and the observed sd. Verdict: better or worse when the t interval excludes 0 (fewer steps is "
           f"better); equal when it lies within ±{margins['score']:g} (scores) or ±{margins['steps']:g} steps; "
           f"otherwise too few seeds to tell. Where every seed gives the same difference the t interval is a point "
           f"and measures nothing: the verdict is the exact sign test's (6 or more same-signed seeds for p < 0.05). "
           f"Steps: seeds where both methods reached the target.", "",
           "| method | quantity | seeds | mean | 95 % interval (t) | bootstrap | d_z | MDE (80 %) | verdict |",
           "|---|---|---|---|---|---|---|---|---|", *lines, "", *sentences]
    if noise:
        out += ["", f"The test set's own noise next to the spread across seeds: each run's test {key} is itself an "
                "estimate from a finite test set. Within a run: the sd and the 95 % interval's half-width of one "
                "run's score (median over the runs; exact binomial for accuracy, a bootstrap over test examples for "
                "other metrics).", "",
                f"| method | test {key}: mean ± sd over seeds | sd within a run | 95 % interval within a run | "
                "test examples | interval |", "|---|---|---|---|---|---|", *noise, "", *findings]
    return out


def markdown(result: dict, header: str, methods: List[str]) -> str:
    test_keys = [k for k in result["methods"][methods[0]] if k.startswith("test_")]
    thresholds = result["thresholds"]
    lines = [f"# {header}", "",
             f"Dev metric `{result['metric']}`, selected at the best trained evaluation (step 0, the untrained "
             f"state, is plotted but never selected nor counted). Target dev score {result['target_dev']:.4f} "
             f"({result['target_rule']}); steps to target: the median over seeds of the first evaluated step at or "
             f"above it (a seed that never reaches it counts as never), with how many seeds reached it. Mean ± std "
             f"over seeds.", "",
             "| method | prompt lr | seeds | " + " | ".join(test_keys)
             + " | best dev | dev AUC | steps to target (reached) |", "|---" * (6 + len(test_keys)) + "|"]
    for method in methods:
        row = result["methods"][method]
        lr = ", ".join(f"{v:g}" for v in row["prompt_lr"])
        lines.append(f"| {method} | {lr} | {len(row['seeds'])} | " + " | ".join(fmt(row[k]) for k in test_keys)
                     + f" | {fmt(row['best_dev'])} | {fmt(row['dev_auc'])} | {steps_cell(row['steps_to_target'])} |")
    if result.get("constant_predictor"):
        floor = ", ".join(f"{k} {v['score']:.4f} (always {v['class']})" for k, v in result["constant_predictor"].items())
        lines += ["", f"Constant predictors on this test set (one class for every example, the best class per "
                  f"metric): {floor}. Every seed is scored on the same test set, so its noise does not average out over "
                  f"seeds: a mean within one run's 95 % test interval of the floor is not clearly above it."]
        for method in methods:
            vs = result["methods"][method].get("vs_constant")
            if vs is None:
                continue
            where = (f"above it by {vs['difference']:.4f}, more than one run's 95 % test interval (±{vs['clear_by']:.4f})"
                     if vs["above"] else
                     f"{abs(vs['difference']):.4f} {'above' if vs['difference'] >= 0 else 'below'} it: **not clearly above the "
                     f"constant predictor** (within one run's 95 % test interval, ±{vs['clear_by']:.4f})")
            lines.append(f"- `{method}`: mean {result['test_metric'].removeprefix('test_')} "
                         f"{result['methods'][method][result['test_metric']]['mean']:.4f}, {where}.")
    names = list(thresholds)
    lines += ["", "Steps to several dev scores (the quartiles of all runs' best dev scores, pooled over the methods): "
              "median step (seeds that reached it).", "",
              "| method | " + " | ".join(f"{thresholds[n]:.4f} ({n})" for n in names) + " |", "|---" * (1 + len(names)) + "|"]
    for method in methods:
        cells = [steps_cell(stat) for stat in result["methods"][method]["steps_to_thresholds"]]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
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
    lines += power_lines(result, methods)
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
    lines += diagnostics_lines(result, methods)
    if result.get("failed_runs"):
        lines += ["", f"**{len(result['failed_runs'])} run(s) failed** and are not in the tables (a failed run leaves "
                  "its seed out of its method's grid):", ""]
        lines += [f"- {f['method']} seed {f['seed']}" + ("" if f["prompt_lr"] is None else f" prompt lr {f['prompt_lr']:g}")
                  + f": {f['error']}" for f in result["failed_runs"]]
    versions = result["code_versions"]
    lines += ["", "Code: " + versions_text(versions)
              + (" — **mixed code versions, aggregated with allow_mixed_versions=true**"
                 if result.get("mixed_versions") else "")]
    if result.get("environments"):
        lines += ["", f"Environments differ between the runs: {result['environments']}."]
    return "\n".join(lines) + "\n"


def listed(run_dirs: List[Path], relative_to: Optional[Path]) -> List[str]:
    """Run directories as runs.txt and spec.json list them: as given, or relative to an archive root."""
    return [str(Path(d).relative_to(relative_to)) if relative_to else str(d) for d in run_dirs]


def write_comparison(run_dirs: List[Path], methods: List[str], out: Path, target: Optional[float],
                     lr_grid: bool = False, allow_mixed_versions: bool = False, rates_from: Optional[str] = None,
                     relative_to: Optional[Path] = None, margin: Optional[float] = None,
                     failures: Sequence[dict] = ()) -> dict:
    """The comparison of ``run_dirs``; with ``lr_grid`` each method's runs at its dev-chosen prompt lr; with
    ``rates_from`` (a comparison folder whose grid chose each method's rate) the methods' rates may differ.
    Also writes ``spec.json``, what ``report`` needs to compute this comparison again from the run directories."""
    runs = [read_run(d) for d in run_dirs]
    may_differ = ("optim.prompt_lr",) if lr_grid or rates_from else ()
    check_comparable(runs, may_differ=may_differ, allow_mixed_versions=allow_mixed_versions)
    choice = choose_prompt_lr(runs, methods) if lr_grid else {}
    if lr_grid:
        runs = [r for r in runs if r["config"]["optim"]["prompt_lr"] == choice[r["summary"]["method"]]["chosen"]]
    result = aggregate(runs, methods, target, margin)
    result["prompt_lr_choice"] = choice
    result["failed_runs"] = list(failures)
    first = runs[0]["summary"]
    seeds = sorted({r["summary"]["seed"] for r in runs})
    split = f"{first['shots']}-shot" if first["shots"] else f"{first['protocol']} {first['split_size']}"
    steps = runs[0]["config"]["trainer"]["max_steps"]
    header = f"{first['task']} {split}, backbone {Path(first['backbone']).name}, seeds {seeds}, {steps} steps"
    if lr_grid:
        header += f", prompt lr chosen on dev from {sorted({g['prompt_lr'] for c in choice.values() for g in c['grid']})}"
    if rates_from:
        header += f", prompt lr as chosen on dev in {Path(rates_from).name}"
    out.mkdir(parents=True, exist_ok=True)
    rates = {m: result["methods"][m]["prompt_lr"] for m in methods}
    label = {m: f"{m}, prompt lr {', '.join(f'{lr:g}' for lr in rates[m])}" if lr_grid or rates_from else m
             for m in methods}
    curves = {label[m]: [r["curve"] for r in runs if r["summary"]["method"] == m] for m in methods}
    plot_curves(curves, result["metric"], header, out / "curves.png")
    (out / "summary.md").write_text(markdown(result, header, methods))
    (out / "summary.json").write_text(json.dumps({"header": header, "task": first["task"], **result}, indent=2,
                                                 default=str) + "\n")
    (out / "runs.txt").write_text("".join(f"{d}\n" for d in listed(run_dirs, relative_to)))
    spec = {"kind": "compare", "methods": methods, "target": target, "margin": margin, "lr_grid": lr_grid,
            "allow_mixed_versions": allow_mixed_versions, "rates_from": rates_from and Path(rates_from).name,
            "runs": listed(run_dirs, relative_to)}
    (out / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    return result


@dataclass
class Sweep:
    """What a sweep command was asked for (``compare`` and ``robustness`` share the parsing)."""

    methods: List[str] = field(default_factory=lambda: ["prompt_tuning", "infoprompt"])
    seeds: List[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    target: Optional[float] = None
    margin: Optional[float] = None  # equivalence margin of a score difference (None: power.METRIC_MARGIN)
    prompt_lrs: List[Optional[float]] = field(default_factory=lambda: [None])  # [None]: the configured rate
    prompt_lr_from: Optional[str] = None  # a comparison folder whose grid chose each method's prompt lr
    allow_mixed_versions: bool = False
    name: Optional[str] = None
    launch: Launch = field(default_factory=Launch)  # workers=, threads=, launcher=, submitit_cluster=, slurm_*=
    overrides: List[str] = field(default_factory=list)


def parse_sweep(args: List[str]) -> Sweep:
    """``methods=[a,b] seeds=[13,21] target=<score> margin=<score> prompt_lrs=[1e-3,1e-2] prompt_lr_from=<folder>
    allow_mixed_versions=true name=<folder> key=value ...``."""
    sweep = Sweep()
    for item in args:
        key, _, value = item.partition("=")
        if key in ("methods", "seeds", "prompt_lrs"):
            values = [v for v in value.strip("[]").replace(",", " ").split() if v]
            try:
                if key == "methods":
                    sweep.methods = values
                elif key == "seeds":
                    sweep.seeds = [int(v) for v in values]
                else:
                    sweep.prompt_lrs = sorted({float(v) for v in values}) or [None]
            except ValueError:
                raise InputError(f"{key}: expected a list of numbers, got {value!r}") from None
            if key == "prompt_lrs" and any(lr is not None and lr <= 0 for lr in sweep.prompt_lrs):
                raise InputError(f"prompt_lrs: learning rates must be positive, got {value!r}")
        elif key in ("target", "margin"):
            try:
                number = float(value)
            except ValueError:
                raise InputError(f"{key}: expected a score, got {value!r}") from None
            if key == "margin" and not 0 < number < 1:
                raise InputError(f"margin: expected a score difference between 0 and 1, got {value!r}")
            setattr(sweep, key, number)
        elif key == "allow_mixed_versions":
            if value.lower() not in ("true", "false"):
                raise InputError(f"allow_mixed_versions: expected true or false, got {value!r}")
            sweep.allow_mixed_versions = value.lower() == "true"
        elif key == "prompt_lr_from":
            sweep.prompt_lr_from = value
        elif key in LAUNCH_KEYS:
            parse_launch(sweep.launch, key, value)
        elif key == "name":
            if not value or "/" in value or value.startswith(".") or sweep.name is not None:
                raise InputError(f"name: expected one folder name (no '/'), got {value!r}")
            sweep.name = value
        else:
            sweep.overrides.append(item)
    if len(sweep.methods) < 1 or not sweep.seeds:
        raise InputError("compare needs at least one method and one seed")
    given = [what for what, on in (("prompt_lrs=[...]", sweep.prompt_lrs != [None]),
                                   ("prompt_lr_from", sweep.prompt_lr_from is not None),
                                   ("optim.prompt_lr", sets_prompt_lr(sweep.overrides))) if on]
    if len(given) > 1:
        raise InputError(f"give the prompt learning rate one way, not as {' and '.join(given)}")
    return sweep


LAUNCH_KEYS = ("workers", "threads", "launcher", "submitit_cluster", "slurm_partition", "slurm_gpus", "slurm_cpus",
               "slurm_time", "slurm_mem_gb", "slurm_array")


def parse_launch(launch: Launch, key: str, value: str) -> None:
    """workers=N|auto threads=N launcher=local|submitit submitit_cluster=local|slurm|debug slurm_partition=<name>
    slurm_gpus=N slurm_cpus=N slurm_time=<minutes> slurm_mem_gb=N slurm_array=<max jobs at once>."""
    if key == "launcher":
        if value not in ("local", "submitit"):
            raise InputError(f"launcher: expected local or submitit, got {value!r}")
        launch.launcher = value
    elif key == "submitit_cluster":
        if value not in ("local", "slurm", "debug"):
            raise InputError(f"submitit_cluster: expected local, slurm or debug, got {value!r}")
        launch.submitit_cluster = value
    elif key == "slurm_partition":
        launch.slurm["partition"] = value
    elif key == "workers" and value == "auto":
        launch.workers = "auto"
    else:
        try:
            number = float(value) if key == "slurm_mem_gb" else int(value)
        except ValueError:
            raise InputError(f"{key}: expected a number, got {value!r}") from None
        if number < (0 if key == "slurm_gpus" else 1):
            raise InputError(f"{key}: expected a positive number, got {value!r}")
        if key in ("workers", "threads"):
            setattr(launch, key, number)
        else:
            launch.slurm[key.removeprefix("slurm_")] = number


def refuse_ddp(config: Config) -> None:
    """A sweep trains many short runs in one command: Lightning's DDP launcher would start every worker on the
    whole sweep. Spread the grid over the devices with workers instead (one run per device)."""
    if processes(config) > 1:
        raise InputError(f"a sweep runs one process per run, not DDP over {processes(config)} processes "
                         f"(trainer.devices x trainer.num_nodes): use WORKERS=N (workers=N) to put the grid's runs on "
                         f"N devices, or make train for one run on several GPUs")


def sets_prompt_lr(overrides: List[str]) -> bool:
    return any(o.startswith("optim.prompt_lr=") for o in overrides)


ABLATION_RATE_FROM = "infoprompt"  # a method the grid did not cover runs at the rate chosen for this one


def chosen_rates(folder: str, methods: List[str]) -> Dict[str, float]:
    """Each method's prompt lr chosen on dev by a ``compare`` grid (its summary.json); a method the grid did not
    cover (InfoPrompt's ablations) takes the rate chosen for ``infoprompt``."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"prompt_lr_from: no comparison at {path} (run `make compare ... LRS=...` first)")
    choice = json.loads(path.read_text()).get("prompt_lr_choice") or {}
    fallback = choice.get(ABLATION_RATE_FROM)
    missing = [m for m in methods if m not in choice and fallback is None]
    if missing:
        raise InputError(f"prompt_lr_from: {path} chose no prompt lr for {', '.join(missing)} (was it run with LRS?)")
    return {m: (choice.get(m) or fallback)["chosen"] for m in methods}


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
