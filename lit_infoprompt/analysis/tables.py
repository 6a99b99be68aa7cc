"""The comparison's summary.md: tables and one plain sentence per finding, from ``aggregates.aggregate``'s result.
"""

from __future__ import annotations

from typing import List, Optional

from lit_infoprompt.analysis.ceiling import NOT_RECORDED, inert_whatever_the_ceiling
from lit_infoprompt.analysis.aggregation_check import code_lines
from lit_infoprompt.analysis.power import sign_test
from lit_infoprompt.convergence import ACTIVE_DIM_NATS, EARLY_STEP, INERT_FRACTION, SATURATED_FRACTION


def sentence(name: str, what: str, d: dict, digits: int = 3, unit: str = "") -> str:
    """One plain sentence on what a ``Difference`` (as a dict) supports, e.g. "`a` vs `b`, test acc: **equal
    within ±0.029**: ..."."""
    f = f"{{:+.{digits}f}}"
    if d["n"] < 2:
        return f"{name}, {what}: **too few seeds to tell** ({d['n']} paired seed(s))."
    if d["sd"] == 0:
        verdict = {"better": "**better**", "worse": "**worse**"}.get(d["verdict"], "**too few seeds to tell**")
        p_value = sign_test([d["mean"]] * d["n"])
        return (f"{name}, {what}: {verdict}: every one of the {d['n']} seeds gives {f.format(d['mean'])}{unit}, so "
                f"the t interval is a point and measures no spread; the exact sign test gives p = {p_value:.3g} "
                f"(below 0.05 only with 6 or more same-signed seeds).")
    low, high = d["t_interval"]
    b_low, b_high = d["bootstrap_interval"]
    span = (f"mean difference {f.format(d['mean'])}{unit}, 95 % interval [{f.format(low)}, {f.format(high)}] "
            f"(paired t; bootstrap [{f.format(b_low)}, {f.format(b_high)}]) over {d['n']} seeds")
    detect = f"the smallest difference these seeds detect with 80 % power is {d['mde']:.{digits}f}{unit}"
    bound = max(-low, high)
    if d["verdict"] in ("better", "worse"):
        return f"{name}, {what}: **{d['verdict']}**: {span}; {detect}."
    if d["verdict"] == "equal":
        return (f"{name}, {what}: **equal within ±{bound:.{digits}f}{unit}** (inside the ±{d['margin']:g}{unit} "
                f"margin): {span}.")
    return (f"{name}, {what}: **too few seeds to tell**: {span} allows differences up to ±{bound:.{digits}f}{unit}, "
            f"beyond the ±{d['margin']:g}{unit} margin; {detect}.")


def fmt(stat: dict, digits: int = 4) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def plain(value: Optional[float], digits: int = 4) -> str:
    """'0.0748', or 'n/a' where there is no value (an MDE or a seed-noise std that one seed cannot give)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def steps_cell(stat: dict) -> str:
    """'150 (3/5)': the median step over all runs (never-reached counted as never), and how many reached it."""
    median = "never" if stat["median_all"] is None else f"{stat['median_all']:.0f}"
    return f"{median} ({stat['reached']}/{stat['of']})"


def verdict_counts(counts: dict, runs: int, joiner: str = " and ") -> str:
    """'saturated in 5/5 runs', 'inert in 2/5 and in between in 3/5 runs'."""
    return joiner.join(f"{name} in {n}/{runs}" for name, n in counts.items()) + " runs"


def ceiling_cell(ceiling: dict) -> str:
    """'0.7 → 97.9: saturated 5/5' (% of the ceiling, first → last, mean over runs; the verdicts at the last)."""
    if inert_whatever_the_ceiling(ceiling):
        runs = ceiling["runs"]
        return f"{NOT_RECORDED}; inert {runs}/{runs} (below {100 * INERT_FRACTION:g} % of any ceiling)"
    if ceiling["last"] is None:
        return NOT_RECORDED
    counts = ", ".join(f"{name} {n}/{ceiling['runs']}" for name, n in ceiling["last_verdicts"].items())
    return f"{100 * ceiling['first']:.1f} → {100 * ceiling['last']:.1f}: {counts}"


def ceiling_sentence(method: str, term: str, d: dict) -> str:
    """One term of one method against its ceiling, in words."""
    c = d["ceiling"]
    text = (f"- `{method}`: the {term}'s MI estimate log(M+1) − L went from {d['first']:.3f} to {d['last']:.3f} nats "
            f"(mean over runs)")
    if inert_whatever_the_ceiling(c):
        return (text + f"; its ceiling log(M+1) was not recorded by these runs, but it is at least log 2 nats (one "
                f"negative) and the estimate never rose above {c['highest_nats']:.3f} nats, below "
                f"{100 * INERT_FRACTION:g} % of that at every evaluation: inert in {c['runs']}/{c['runs']} runs "
                f"whatever the ceiling.")
    if c["last"] is None:
        return (text + "; its ceiling log(M+1) was not recorded by these runs (it depends on each example's token "
                "count), so it gets no verdict.")
    text += (f", {100 * c['first']:.1f} % → {100 * c['last']:.1f} % of its ceiling ({c['ceiling_nats']:.3f} nats): "
             f"{verdict_counts(c['last_verdicts'], c['runs'])} at the last evaluation")
    if c["early_verdicts"]:
        when = f"step {c['early_steps'][0]}" if len(c["early_steps"]) == 1 else f"the first evaluation from step {EARLY_STEP}"
        text += f"; at {when} ({100 * c['early']:.1f} %) {verdict_counts(c['early_verdicts'], c['runs'])}"
    if c["derived_runs"]:
        m = ", ".join(str(n) for n in c["config_negatives"])
        some = "" if c["derived_runs"] == c["runs"] else f" ({c['derived_runs']}/{c['runs']} runs)"
        text += (f". These runs predate the recorded ceiling: it is log(m+1) with m = {m} negatives from their "
                 f"config{some}")
    return text + "."


def diagnostics_lines(result: dict, methods: List[str]) -> List[str]:
    """The estimator diagnostics table and one plain sentence per finding (each InfoNCE term against its ceiling:
    inert, saturated or in between; a collapsed bottleneck)."""
    rows, findings = [], []
    for method in methods:
        diag = result["methods"][method].get("diagnostics") or {}
        if not diag:
            continue
        cell = {name: f"{d['first']:.3f} → {d['last']:.3f}" for name, d in diag.items()}
        share = {name: ceiling_cell(diag[name]["ceiling"]) for name in ("mi_head_nats", "mi_rep_nats") if name in diag}
        rows.append(f"| {method} | {cell.get('mi_head_nats', '')} | {share.get('mi_head_nats', '')} | "
                    f"{cell.get('mi_rep_nats', '')} | {share.get('mi_rep_nats', '')} | "
                    f"{cell.get('kl_per_dim', '')} | {cell.get('active_dims', '')} | {cell.get('sigma', '')} |")
        for name, term in (("mi_head_nats", "head loss"), ("mi_rep_nats", "representation loss")):
            if name in diag:
                findings.append(ceiling_sentence(method, term, diag[name]))
        if "active_dims" in diag:
            d, kl = diag["active_dims"], diag["kl_per_dim"]
            findings.append(f"- `{method}`: the bottleneck ended with {d['last']:.1f} active latent dimensions on "
                            f"average (KL per dimension {kl['last']:.3f} nats, mean σ {diag['sigma']['last']:.3f}); "
                            f"{d['collapsed_runs']}/{d['runs']} runs collapsed to the prior (no active dimension).")
    if not rows:
        return []
    return ["", "Estimator diagnostics (training, first → last evaluation interval, mean over runs): each InfoNCE "
            "term's MI estimate log(M+1) − L in nats (0 = the critic cannot tell the positive from its M negatives) "
            "and as a % of its ceiling log(M+1), the largest value it can take; the prompted posterior's KL to the "
            f"prior per latent dimension, the number of active dimensions (mean KL above {ACTIVE_DIM_NATS} nats) and "
            f"the mean σ. Against the ceiling a term is **inert** below {100 * INERT_FRACTION:g} % and **saturated** "
            f"above {100 * SATURATED_FRACTION:g} %, otherwise in between: each run is judged at its last evaluation "
            f"(the counts in the table), and the sentences also give the first evaluation at or after step "
            f"{EARLY_STEP}. A head-loss ceiling depends on each example's token count: runs that did not record it "
            f"get no verdict ({NOT_RECORDED}) unless their estimate stayed below {100 * INERT_FRACTION:g} % of log 2, "
            f"the smallest ceiling there is (then inert whatever the ceiling).", "",
            "| method | head MI (nats) | head, % of ceiling | rep MI (nats) | rep, % of ceiling | KL per dim | "
            "active dims | σ |", "|---|---|---|---|---|---|---|---|", *rows, "", *findings]


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
            mde = plain(d["mde"], digits)
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


def comparison_markdown(result: dict, header: str, methods: List[str]) -> str:
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
        flagged = f" ({len(row['degenerate'])} degenerate)" if row.get("degenerate") else ""
        lines.append(f"| {method} | {lr} | {len(row['seeds'])}{flagged} | " + " | ".join(fmt(row[k]) for k in test_keys)
                     + f" | {fmt(row['best_dev'])} | {fmt(row['dev_auc'])} | {steps_cell(row['steps_to_target'])} |")
    flags = [f"`{m}` seed {seed}: {why}" for m in methods for seed, why in result["methods"][m].get("degenerate", {}).items()]
    if flags:
        lines += ["", "**Degenerate runs** (counted in every number here: they are what the method did): "
                  + "; ".join(flags) + "."]
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
    lines += code_lines(result["code_versions"], result.get("mixed_versions", False), result.get("environments"))
    return "\n".join(lines) + "\n"
