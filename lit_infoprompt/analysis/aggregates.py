"""The comparison's numbers: per-method statistics of the runs' curves and test scores, the dev-chosen prompt
learning rate, steps to pooled dev targets, estimator diagnostics, and paired differences against the baseline
(intervals, MDE and verdicts from ``power``).
"""

from __future__ import annotations

import math
import statistics
from typing import Dict, List, Optional

from lit_infoprompt.analysis.arms import arm_of
from lit_infoprompt.analysis.ceiling import term_against_ceiling
from lit_infoprompt.analysis.aggregation_check import code_versions, environments, mixed_versions
from lit_infoprompt.analysis.power import (METRIC_MARGIN, STEPS_MARGIN, constant_predictors, difference,
                                           test_gold_counts, test_noise)
from lit_infoprompt.convergence import area_under_curve, best_row, steps_to_target
from lit_infoprompt.errors import InputError
from lit_infoprompt.predictions import degenerate


EARLY_FRACTION = 0.2  # speed: the mean dev score over the first fifth of the steps (docs/methods.md, fixed in advance)


def early_dev(rows: List[dict], metric: str, steps: int, fraction: float = EARLY_FRACTION) -> Optional[float]:
    """Speed apart from level: the mean dev score of the trained evaluations in the first ``fraction`` of the
    ``steps`` (step 0, the untrained state, excluded; None when no evaluation falls there)."""
    window = [r[metric] for r in rows if 0 < r["step"] <= fraction * steps and r.get(metric) is not None]
    return statistics.fmean(window) if window else None


def run_degenerate(summary: dict) -> Optional[str]:
    """A run's flag (``predictions.degenerate``): from its summary.json, else from its confusion matrix."""
    if summary.get("degenerate"):
        return summary["degenerate"]
    confusion = summary.get("confusion_matrix_test")
    return degenerate(confusion, summary.get("tied_test_examples")) if confusion else None


def mean_std(values: List[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def prompt_lrs(runs: List[dict]) -> List[float]:
    """The distinct prompt learning rates of the runs, ascending."""
    return sorted({r["config"]["optim"]["prompt_lr"] for r in runs})


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
            if arm_of(r) == method:
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
    """Per method: the estimator diagnostics of curve.csv (the first and last trained evaluation), mean over runs;
    each InfoNCE term also against its ceiling log(M+1) (``ceiling``: fractions and inert / saturated verdicts), and
    how many runs had a collapsed bottleneck (no active latent dimension at the last evaluation)."""
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
            out[name]["ceiling"] = term_against_ceiling(runs, name.split("_")[1])
        if name == "active_dims":
            out[name]["collapsed_runs"] = sum(s[-1] == 0 for s in series)
    return out


def power_vs_baseline(by_method: Dict[str, List[dict]], methods: List[str], main: str, metric: str, target: float,
                      margin: float, steps_margin: float) -> Dict[str, dict]:
    """Per method against the first: the paired differences (same seed) of the test metric, of dev AUC and of the
    steps to the target (seeds where both reached it), each with intervals, effect size, MDE and a verdict."""
    def per_seed(runs: List[dict]) -> Dict[int, dict]:
        return {r["summary"]["seed"]: {"test": r["summary"][main], "dev_auc": area_under_curve(r["curve"], metric),
                                       "steps": steps_to_target(r["curve"], metric, target),
                                       "early_dev": early_dev(r["curve"], metric, r["config"]["trainer"]["max_steps"]),
                                       "best_dev": best_row(r["curve"], metric)[metric]} for r in runs}

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
            "early_dev": difference([other[s]["early_dev"] - base[s]["early_dev"] for s in seeds
                                     if other[s]["early_dev"] is not None and base[s]["early_dev"] is not None],
                                    margin).as_dict(),
            "best_dev": difference([other[s]["best_dev"] - base[s]["best_dev"] for s in seeds], margin).as_dict(),
        }
    return out


def aggregate(runs: List[dict], methods: List[str], target: Optional[float], margin: Optional[float] = None) -> dict:
    """Per-method statistics and paired differences against the first method (the baseline). ``margin``: the
    equivalence margin of a score difference (default ``power.METRIC_MARGIN``); steps to target use
    ``power.STEPS_MARGIN`` x max_steps."""
    metric = f"val/{runs[0]['summary']['dev_metric']}"
    test_keys = [k for k in runs[0]["summary"] if k.startswith("test_")]
    by_method = {m: [r for r in runs if arm_of(r) == m] for m in methods}
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
            "early_dev": mean_std([early_dev(r["curve"], metric, r["config"]["trainer"]["max_steps"])
                                   for r in method_runs]),
            "steps_to_target": reaching(method_runs, metric, target),
            "steps_to_thresholds": [reaching(method_runs, metric, t) for t in thresholds],
            "diagnostics": estimator_diagnostics(method_runs),
            "seeds": sorted(r["summary"]["seed"] for r in method_runs),
            "degenerate": {str(r["summary"]["seed"]): why for r in method_runs if (why := run_degenerate(r["summary"]))},
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
