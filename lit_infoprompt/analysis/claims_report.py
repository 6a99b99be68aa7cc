"""docs/RESULTS.md's section "The paper's claims on this backbone (1000 steps)", from archived comparisons.

The paper claims InfoPrompt (1) converges faster than prompt tuning, (2) reaches a better score and (3) is less
sensitive to the prompt's initialisation. Each claim is read per method (``CLAIMED``: the reference-faithful
``infoprompt`` and ``infoprompt_plus``) against ``prompt_tuning``, only from the comparisons and robustness sweeps
whose runs trained ``STEPS`` steps (their header says how many), with the numbers each comparison computed
(``statistics.aggregate``'s summary.json): the paired differences' 95 % intervals, MDE and verdicts. Plus three
controls where a comparison holds them: ``infoprompt_plus`` against an arm that is prompt tuning started at the
label words, ``infoprompt`` against its bottleneck without the information terms, and the dose-response over the
head loss's weight γ (arms that differ in ``method.head_weight``).
What the section cannot say is listed by comparison name (``missing``: the report's issue-24 lists).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from lit_infoprompt.analysis.claims_words import (BASE, CLAIMED, PLUS, STEPS, WHERE, Named, against_base, diff_text,
                                                  label, not_clearly_above, per_method, read, read_through,
                                                  steps_of, task_of, through_note, too_few, word)
from lit_infoprompt.analysis.power import difference
from lit_infoprompt.analysis.tables import fmt, plain

GAMMA_KEY = "method.head_weight"
BOTTLENECK = "prompt_tuning_bottleneck"
Rows = Dict[str, List[Tuple[str, str]]]  # {method: [(comparison name, its word there)]}


def close(lines: List[str], question: str, rows: Rows, comparisons: List[Named], through: Dict[str, str],
          kind: str = "comparison against", methods: Sequence[str] = CLAIMED) -> List[str]:
    """A claim's evidence lines, then its question and one closing sentence per method from the comparisons not
    read through a larger one (``read_through``): the one place that leaves those out."""
    own = [(n, s) for n, s in comparisons if n not in through]
    words = {m: [text for n, text in found if n not in through] for m, found in rows.items()}
    shown = {n: b for n, b in through.items() if any(n == c for c, _ in comparisons)}
    return lines + ([""] if lines[-1] else []) + [question, "", *per_method(words, own, kind, methods), "",
                                                  *through_note(shown)]


def convergence(comparisons: List[Named], through: Dict[str, str]) -> List[str]:
    lines, rows = ["### 1. Faster convergence", "",
                   "Dev AUC (area under the dev curve: speed and level together; higher is better) and the steps to the "
                   "pooled target (the median of every run's best dev score in that comparison; fewer is better; "
                   "seeds where both methods reached it), each as the difference to `prompt_tuning` paired by seed "
                   "with its 95 % interval and verdict.", ""], {}
    for name, s in comparisons:
        parts = []
        for method in CLAIMED:
            if method not in s["methods"]:
                parts.append(f"`{method}` is not in this comparison")
                continue
            p = s[f"power_vs_{BASE}"][method]
            auc, steps = p["dev_auc"], p["steps_to_target"]
            reach = (f"{diff_text(steps, 0, ' steps')} over the {steps['n']} of {steps['of']} seeds where both reached it"
                     if steps["n"] else f"reached by both in none of the {steps['of']} seeds")
            parts.append(f"`{method}` dev AUC {diff_text(auc, 4)}: {auc['verdict']}; steps to {s['target_dev']:.4f}: "
                         f"{reach}: {steps['verdict']}")
            rows.setdefault(method, []).append((name, f"{both(auc, steps)} in `{name}`"))
        lines.append(f"- {label(name, s)}: " + "; ".join(parts) + ".")
    return close(lines, "Does InfoPrompt converge faster than prompt tuning?", rows, comparisons, through)


def both(auc: dict, steps: dict) -> str:
    """The convergence claim from dev AUC and steps to the target together: holds (or not) on whichever of them
    has a direction, unless they point in opposite ones."""
    verdicts = {auc["verdict"], steps["verdict"]}
    if "better" in verdicts and "worse" in verdicts:
        return f"**mixed** (dev AUC {auc['verdict']}, steps to the target {steps['verdict']})"
    if verdicts & {"better", "worse"}:
        on_auc = auc["verdict"] in ("better", "worse")
        other = f"steps to the target: {steps['verdict']}" if on_auc else f"dev AUC: {auc['verdict']}"
        return f"{word(auc if on_auc else steps, 0)} on {'dev AUC' if on_auc else 'steps to the target'} ({other})"
    if verdicts == {"equal"}:
        return f"{word(auc, 4)} on dev AUC and {word(steps, 0, ' steps')} on steps to the target"
    if auc["verdict"] == "equal":
        return f"**cannot say** (dev AUC equal; steps to the target: {too_few(steps, 0, ' steps')})"
    return f"**cannot say** (dev AUC: {too_few(auc, 4)}; steps to the target: {steps['verdict']})"


def accuracy(comparisons: List[Named], through: Dict[str, str]) -> List[str]:
    lines, rows = ["### 2. Better accuracy", "",
                   "The test metric's difference to `prompt_tuning` paired by seed, its 95 % interval, the MDE and the "
                   "verdict; and whether each method's mean is clearly above the constant predictor (answering one "
                   "class for every test example: more than one run's 95 % test interval above it).", ""], {}
    for name, s in comparisons:
        key, parts = s["test_metric"], []
        present = [m for m in CLAIMED if m in s["methods"]]
        below = not_clearly_above(s, [BASE, *present])
        for method in CLAIMED:
            if method not in present:
                parts.append(f"`{method}` is not in this comparison")
                continue
            t = s[f"power_vs_{BASE}"][method]["test"]
            mde = plain(t["mde"])
            parts.append(f"`{method}` {s['methods'][method][key]['mean']:.4f}, difference {diff_text(t, 4)}, "
                         f"MDE {mde}: {t['verdict']}")
            caveat = f", but `{method}` is not clearly above the constant predictor there" if method in below else ""
            rows.setdefault(method, []).append((name, f"{word(t, 4)} in `{name}`{caveat}"))
        floor = (s.get("constant_predictor") or {}).get(key.removeprefix("test_"))
        if floor is None:
            where = "the constant predictor of this test set is not known"
        elif below:
            where = f"constant {floor['score']:.4f}; not clearly above it: {', '.join(f'`{m}`' for m in below)}"
        else:
            where = f"constant {floor['score']:.4f}; every method here is clearly above it"
        lines.append(f"- {label(name, s)}, {key.removeprefix('test_')}: `{BASE}` "
                     f"{s['methods'][BASE][key]['mean']:.4f}; " + "; ".join(parts) + f"; {where}.")
    return close(lines, "Does InfoPrompt score better than prompt tuning?", rows, comparisons, through)


def seed_noise(row: dict) -> Optional[float]:
    """The std of the per-initialisation means that seed noise alone would give: the pooled within-init sd over
    the square root of the seeds per init (None with one seed per init)."""
    cells = list(row["per_init"].values())
    seeds = min(c["n"] for c in cells)
    if seeds < 2:
        return None
    return math.sqrt(sum(c["std"] ** 2 for c in cells) / len(cells)) / math.sqrt(seeds)


def robustness(sweeps: List[Named]) -> List[str]:
    lines, rows = ["### 3. Less sensitive to the prompt's initialisation", "",
                   "From the robustness sweeps (every method under each prompt initialisation x seed): the std of the "
                   "per-initialisation means of the test metric (the initialisation's own effect; beside it, what seed "
                   "noise alone would give), the std over all runs, and the lowest initialisation mean. A sweep gives "
                   "no interval: its words describe these runs and are not a tested verdict.", ""], {}
    usable = [(n, s) for n, s in sweeps if BASE in s["methods"]]
    for name, s in usable:
        base, parts = s["methods"][BASE], []
        for method in CLAIMED:
            if method not in s["methods"]:
                parts.append(f"`{method}` is not in this sweep")
                continue
            row = s["methods"][method]
            noise = {m: seed_noise(r) for m, r in ((method, row), (BASE, base))}
            shown = {m: plain(v) for m, v in noise.items()}
            parts.append(f"`{method}` std of init means {row['std_of_init_means']:.4f} vs {base['std_of_init_means']:.4f} "
                         f"(seed noise alone: {shown[method]} vs {shown[BASE]}), std over all runs "
                         f"{row['all']['std']:.4f} vs {base['all']['std']:.4f}, lowest initialisation mean "
                         f"{min(v['mean'] for v in row['per_init'].values()):.4f} vs "
                         f"{min(v['mean'] for v in base['per_init'].values()):.4f}")
            within = all(noise[m] is not None and r["std_of_init_means"] <= noise[m]
                         for m, r in ((method, row), (BASE, base)))
            if within:
                verdict = "**cannot say** (neither spread over initialisations exceeds what seed noise alone gives)"
            elif row["std_of_init_means"] < base["std_of_init_means"]:
                verdict = "**less spread in these runs** (untested)"
            else:
                verdict = "**does not hold in these runs** (no less spread)"
            rows.setdefault(method, []).append((name, f"{verdict} in `{name}`"))
        lines.append(f"- `{name}` ({task_of(s)}, {STEPS} steps): " + "; ".join(parts) + f" (each: method vs `{BASE}`).")
    return close(lines, "Is InfoPrompt less sensitive to the prompt's initialisation?", rows, usable, {},
                 "robustness sweep with")


def against_first(summary: dict, method: str) -> Dict[int, float]:
    """{seed: the method's test difference to the comparison's first arm} (0 for the first arm itself)."""
    first = list(summary["methods"])[0]
    if method == first:
        return {seed: 0.0 for seed in summary["methods"][first]["seeds"]}
    paired = summary[f"paired_vs_{first}"][method]
    return dict(zip(paired["seeds"], paired["differences"]))


def between(summary: dict, a: str, b: str) -> dict:
    """Arm a's test score minus arm b's, paired by seed (their differences to the first arm subtracted: the same
    seeds, the same runs), judged as any paired difference at the comparison's margin."""
    da, db = against_first(summary, a), against_first(summary, b)
    paired = [da[seed] - db[seed] for seed in sorted(set(da) & set(db))]
    return difference(paired, summary["margins"]["score"]).as_dict()


def label_words_arm(summary: dict) -> Optional[str]:
    """The arm that is prompt tuning started at the label words, if the comparison has one."""
    for name, arm in (summary.get("arms") or {}).items():
        if arm["method"] == BASE and arm["match"].get("prompt.init") == "label_words":  # match holds every override
            return name
    return None


def label_words(comparisons: List[Named], through: Dict[str, str]) -> List[str]:
    """``infoprompt_plus`` against prompt tuning started at the label words, paired by seed (``between``); closed like
    a claim (``close``)."""
    lines = ["### Control: the head loss or the label words?", "",
             f"`{PLUS}` against the arm that is `{BASE}` with prompt.init=label_words, paired by seed.", ""]
    rows: Rows = {}
    held = []
    for name, s in comparisons:
        words = label_words_arm(s)
        if words is None or PLUS not in s["methods"]:
            continue
        held.append((name, s))
        key, d = s["test_metric"].removeprefix("test_"), between(s, PLUS, words)
        power = s[f"power_vs_{BASE}"]
        auc = ", ".join(f"`{m}` {diff_text(power[m]['dev_auc'], 4)}: {power[m]['dev_auc']['verdict']}" for m in (PLUS, words))
        mde = plain(d["mde"])
        answer = word(d, 4, better="more than the label words", worse="less than the label words")
        lines.append(f"- {label(name, s)}: test {key} `{PLUS}` − `{words}` {diff_text(d, 4)} over {d['n']} seeds, MDE "
                     f"{mde}: {answer}. Dev AUC against `{BASE}` (no paired test between the two): {auc}.")
        rows.setdefault(PLUS, []).append((name, f"{answer} in `{name}`"))
    if not held:
        return lines + [f"No archived {STEPS}-step comparison holds `{PLUS}` beside a label-words arm yet.", ""]
    return close(lines, f"Does `{PLUS}`'s head loss do more than starting the prompt at the label words?", rows, held,
                 through, methods=(PLUS,))


def bottleneck(comparisons: List[Named]) -> List[str]:
    """``infoprompt`` against its bottleneck without the information terms (``prompt_tuning_bottleneck``), paired by
    seed whichever arm the comparison put first: is a difference to prompt tuning the terms' or the bottleneck's?"""
    info, bare = CLAIMED[0], BOTTLENECK
    lines = ["### Control: the information terms or the bottleneck?", "",
             f"`{info}` against `{bare}` (the same bottleneck and KL term, without the two InfoNCE terms), paired by "
             "seed.", ""]
    held = [(n, s) for n, s in comparisons if {info, bare} <= set(s["methods"])]
    for name, s in held:
        d = between(s, info, bare)
        mde = plain(d["mde"])
        answer = word(d, 4, better="the information terms add to the bottleneck",
                      worse="the information terms take away from the bottleneck")
        lines.append(f"- {label(name, s)}: test {s['test_metric'].removeprefix('test_')} `{info}` − `{bare}` "
                     f"{diff_text(d, 4)} over {d['n']} seeds, MDE {mde}: {answer}.")
    if not held:
        lines.append(f"No archived {STEPS}-step comparison holds `{info}` beside `{bare}` yet.")
    return lines + [""]


def gamma(comparisons: List[Named]) -> List[str]:
    """The dose-response over the head loss's weight: arms told apart by ``method.head_weight``."""
    lines = ["### Control: the head loss's weight γ", ""]
    found = False
    for name, s in comparisons:
        arms = s.get("arms") or {}
        weights = {m: arms[m]["match"][GAMMA_KEY] for m in s["methods"] if GAMMA_KEY in arms.get(m, {}).get("match", {})}
        if len(weights) < 2:
            continue
        found, methods, key = True, list(s["methods"]), s["test_metric"]
        first, power = methods[0], s.get(f"power_vs_{methods[0]}", {})
        lines += [f"{label(name, s)}: test {key.removeprefix('test_')} and dev AUC per γ (mean ± std over seeds); "
                  f"differences to `{first}` paired by seed.", "",
                  "| arm | γ | test | dev AUC | test difference: verdict | dev AUC difference: verdict |",
                  "|---|---|---|---|---|---|"]
        for m in methods:
            row = s["methods"][m]
            cells = ["", ""] if m == first else [f"{diff_text(power[m][q], 4)}: {power[m][q]['verdict']}"
                                                 for q in ("test", "dev_auc")]
            lines.append(f"| `{m}` | {weights.get(m, 'n/a')} | {fmt(row[key])} | {fmt(row['dev_auc'])} | "
                         f"{cells[0]} | {cells[1]} |")
        lines.append("")
        for m in methods[1:]:
            lines.append(f"- γ = {weights.get(m, 'n/a')} (`{m}`) against γ = {weights.get(first, 'n/a')}: test "
                         f"{word(power[m]['test'], 4, better='higher', worse='lower')}; dev AUC "
                         f"{word(power[m]['dev_auc'], 4, better='higher', worse='lower')}.")
        lines.append("")
    if not found:
        lines += [f"No archived {STEPS}-step comparison has arms that differ in {GAMMA_KEY} yet.", ""]
    return lines


def missing(compare: Sequence[Path], robustness_folders: Sequence[Path], expected: Sequence[tuple],
            expected_robustness: Sequence[tuple]) -> List[str]:
    """Sentences on the issue-24 evidence not (fully) in the archive: each comparison by name with its arms and the
    seeds wanted, and each robustness sweep by task; empty when all of it is there."""
    have = dict(read(compare, None))
    lines = []
    for name, arms, seeds in expected:
        if name not in have:
            lines.append(f"- `{name}` ({', '.join(arms)}; {seeds} seeds wanted): not run; {WHERE}.")
            continue
        s = have[name]
        if steps_of(s) != STEPS:
            lines.append(f"- `{name}`: its runs trained {steps_of(s)} steps, not {STEPS}.")
        lacking = [a for a in arms if a not in s["methods"]]
        short = [f"{a} ({len(s['methods'][a]['seeds'])})" for a in arms
                 if a in s["methods"] and len(s["methods"][a]["seeds"]) < seeds]
        if lacking:
            lines.append(f"- `{name}`: no arm {', '.join(lacking)}.")
        if short:
            lines.append(f"- `{name}`: fewer than the {seeds} seeds wanted for {', '.join(short)}.")
    sweeps = read(robustness_folders)
    for task, methods, seeds in expected_robustness:
        done = [s for _, s in sweeps if s.get("task") == task and all(m in s["methods"] for m in methods)]
        fewest = max((min(c["n"] for m in methods for c in s["methods"][m]["per_init"].values()) for s in done), default=0)
        if not done:
            lines.append(f"- robustness to the prompt initialisation on {task} at {STEPS} steps ({', '.join(methods)}; "
                         f"{seeds} seeds wanted): not run; {WHERE}.")
        elif fewest < seeds:
            lines.append(f"- robustness on {task} at {STEPS} steps: {fewest} seeds per initialisation, {seeds} wanted.")
    return lines


def asked(expected: Sequence[tuple], expected_robustness: Sequence[tuple]) -> str:
    """What issue 24 asks for, in one clause of the report's "Asked for" sentence."""
    named = "; ".join(f"`{name}` x {', '.join(arms)} ({seeds} seeds)" for name, arms, seeds in expected)
    sweeps = "; ".join(f"robustness on {task} x {', '.join(methods)} ({seeds} seeds)"
                       for task, methods, seeds in expected_robustness)
    return f"at {STEPS} steps (issue 24): {named}; {sweeps}"


def claims(done: Dict[str, List[Path]], expected: Sequence[tuple], expected_robustness: Sequence[tuple]) -> List[str]:
    """The section's lines, from the recomputed archive folders ``done`` (``report.recompute``)."""
    comparisons = read(done["compare"])
    main, sweeps = against_base(comparisons), read(done["robustness"])
    if comparisons or sweeps:
        names = [f"`{n}`" for n, _ in comparisons] + [f"`{n}` (robustness)" for n, _ in sweeps]
        evidence = f"Read here: {', '.join(names)}."
    else:
        evidence = (f"**No archived comparison or robustness sweep has {STEPS}-step runs yet**: every claim below is "
                    f"\"cannot say\" for both methods until the comparisons listed at the end of this section land.")
    intro = ["## The paper's claims on this backbone (1000 steps)", "",
             "The paper claims that InfoPrompt converges faster than prompt tuning, scores better, and is less "
             f"sensitive to the prompt's initialisation. This section reads each claim only from the archived "
             f"comparisons whose runs trained {STEPS} steps (trainer.max_steps={STEPS}, issue 24); the 300-step "
             "comparisons of the rest of this report are kept out of it. Two forms of InfoPrompt are judged, each "
             f"against `{BASE}` paired by seed: `infoprompt` (the reference-faithful form) and `{PLUS}` (the form "
             "whose terms carry signal: docs/methods.md, \"InfoPrompt whose terms carry signal\"). The numbers are "
             "each comparison's own (95 % interval: paired t; MDE: the smallest true difference its seeds detect "
             "with 80 % power). A claim **holds** where the interval lies on the claimed side of 0, **does not "
             "hold (worse)** where it lies on the other side, is **equal** where it lies inside the comparison's "
             "margin, and otherwise the section **cannot say** (too few seeds: the MDE reached, and the seeds that "
             "would detect a difference of the margin's size where the spread tells).", "", evidence, ""]
    gaps = missing(done["compare"], done["robustness"], expected, expected_robustness)
    ending = ["### What this section cannot say yet", "", "Missing or short:", "", *gaps, ""] if gaps else []
    through = read_through(main)
    return intro + convergence(main, through) + accuracy(main, through) + robustness(sweeps) \
        + label_words(main, through) + bottleneck(comparisons) + gamma(comparisons) + ending
