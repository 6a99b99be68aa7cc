"""docs/RESULTS.md's section "The paper's claims on this backbone (1000 steps)", from archived comparisons.

The paper claims InfoPrompt (1) converges faster than prompt tuning, (2) reaches a better score and (3) is less
sensitive to the prompt's initialisation. Each claim is read per method (``CLAIMED``: the reference-faithful
``infoprompt`` and ``infoprompt_plus``) against ``prompt_tuning``, only from the declared experiments whose files
name it (``claims:``: convergence, accuracy, robustness, or a control), with the numbers each comparison computed
(``aggregates.aggregate``'s summary.json): the paired differences' 95 % intervals, MDE and verdicts. Plus three
controls where a comparison holds them: ``infoprompt_plus`` against an arm that is prompt tuning started at the
label words, ``infoprompt`` against its bottleneck without the information terms, and the dose-response over the
head loss's weight γ (arms that differ in ``method.head_weight``).
The section's prose that is not computed is in ``report_prose.md`` (``prose``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from lit_infoprompt.analysis.claims_words import (BASE, CLAIMED, PLUS, ROLES, Named, against_base, diff_text,
                                                  label, not_clearly_above, per_method, read, read_through,
                                                  steps_of, task_of, through_note, too_few, word)
from lit_infoprompt.analysis.declarations import MAIN_CLAIMS, Declared, lacking
from lit_infoprompt.analysis.initialisations import init_table, seed_noise, spread_verdict
from lit_infoprompt.analysis.power import difference
from lit_infoprompt.analysis.prose import prose
from lit_infoprompt.analysis.verdicts import tests
from lit_infoprompt.analysis.tables import fmt, plain

GAMMA_KEY = "method.head_weight"
CONTROLS = ("control:label_words", "control:bottleneck", "control:gamma")  # the controls this section has a reading of
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


def holm_note(adjusted: Optional[Dict[tuple, Optional[float]]], key: tuple) -> str:
    """" (Holm p 0.055: not after Holm)" for a test of the one-page table's families (empty for one outside them): an
    interval's word holds for the claim only with the adjusted p below 0.05."""
    from lit_infoprompt.analysis.verdicts import pvalue

    if not adjusted or key not in adjusted:
        return ""
    p = adjusted[key]
    return f" (Holm p {pvalue(p)}{': not after Holm' if p is not None and p >= 0.05 else ''})"


def convergence_section(comparisons: List[Named], through: Dict[str, str],
                adjusted: Optional[Dict[tuple, Optional[float]]] = None) -> List[str]:
    lines, rows = ["### 1. Faster convergence", "", prose("convergence"), ""], {}
    for name, s in comparisons:
        parts = []
        for method in CLAIMED:
            if method not in s["methods"]:
                parts.append(f"`{method}` is not in this comparison")
                continue
            p = s[f"power_vs_{BASE}"][method]
            auc, steps = p["dev_auc"], p["steps_to_target"]
            early, level = p.get("early_dev"), p.get("best_dev")
            reach = (f"{diff_text(steps, 0, ' steps')} over the {steps['n']} of {steps['of']} seeds where both reached it"
                     if steps["n"] else f"reached by both in none of the {steps['of']} seeds")
            speed = f"early dev {diff_text(early, 4)}: {early['verdict']}; " if early else ""
            parts.append(f"`{method}` {speed}dev AUC {diff_text(auc, 4)}: {auc['verdict']}; steps to "
                         f"{s['target_dev']:.4f}: {reach}: {steps['verdict']}")
            if early:
                text = f"{word(early, 4)}{holm_note(adjusted, ('convergence', name, method))} on the early window in `{name}`"
                if early["verdict"] != "better" and level and level["verdict"] == "better":
                    text += " (no faster, but a higher best dev score: level, not speed)"
            else:
                text = f"{both(auc, steps)} in `{name}`"
            rows.setdefault(method, []).append((name, text))
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


def accuracy_section(comparisons: List[Named], through: Dict[str, str],
             adjusted: Optional[Dict[tuple, Optional[float]]] = None) -> List[str]:
    lines, rows = ["### 2. Better accuracy", "", prose("accuracy"), ""], {}
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
            rows.setdefault(method, []).append((name, f"{word(t, 4)}{holm_note(adjusted, ('accuracy', name, method))} in "
                                                      f"`{name}`{caveat}"))
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


def robustness_section(sweeps: List[Named]) -> List[str]:
    lines, rows = ["### 3. Less sensitive to the prompt's initialisation", "", prose("robustness"), ""], {}
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
            out = [init for init in row["per_init"] if spread_verdict(row, base, init) != spread_verdict(row, base)]
            if out:
                verdict += (f"; it rests on {', '.join(f'`{i}`' for i in out)} alone: without it, "
                            + ", ".join(f"{spread_verdict(row, base, i)}" for i in out))
            rows.setdefault(method, []).append((name, f"{verdict} in `{name}`"))
        lines.append(f"- `{name}` ({task_of(s)}, {steps_of(s)} steps): " + "; ".join(parts) + f" (each: method vs `{BASE}`).")
        lines += [""] + init_table(name, s) + [""]
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
    lines = ["### Control: the head loss or the label words?", "", prose("label_words", plus=PLUS, base=BASE), ""]
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
        return lines + [f"No declared comparison holds `{PLUS}` beside a label-words arm yet.", ""]
    return close(lines, f"Does `{PLUS}`'s head loss do more than starting the prompt at the label words?", rows, held,
                 through, methods=(PLUS,))


def bottleneck(comparisons: List[Named]) -> List[str]:
    """``infoprompt`` against its bottleneck without the information terms (``prompt_tuning_bottleneck``), paired by
    seed whichever arm the comparison put first: is a difference to prompt tuning the terms' or the bottleneck's?"""
    info, bare = ROLES.bottleneck
    lines = ["### Control: the information terms or the bottleneck?", "", prose("bottleneck", info=info, bare=bare), ""]
    held = [(n, s) for n, s in comparisons if {info, bare} <= set(s["methods"])]
    for name, s in held:
        d = between(s, info, bare)
        mde = plain(d["mde"])
        answer = word(d, 4, better="the information terms add to the bottleneck",
                      worse="the information terms take away from the bottleneck")
        lines.append(f"- {label(name, s)}: test {s['test_metric'].removeprefix('test_')} `{info}` − `{bare}` "
                     f"{diff_text(d, 4)} over {d['n']} seeds, MDE {mde}: {answer}.")
    if not held:
        lines.append(f"No declared comparison holds `{info}` beside `{bare}` yet.")
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
        lines += [f"No declared comparison has arms that differ in {GAMMA_KEY} yet.", ""]
    return lines


def claims(done: Dict[str, List[Path]], declared: Sequence[Declared],
           verdicts: Optional[List[dict]] = None) -> List[str]:
    """The section's lines, from the recomputed archive folders ``done`` (``report.recompute``): each claim and
    control read from the declared experiments that name it (``claims:`` in their files)."""
    def named(kind: str, *wanted: str) -> set:
        return {d.name for d in declared if d.kind == kind and any(c in d.experiment.claims for c in wanted)}

    every = read(done["compare"])
    comparisons = [(n, s) for n, s in every if n in named("compare", *MAIN_CLAIMS, *CONTROLS)]
    main = against_base([(n, s) for n, s in every if n in named("compare", *MAIN_CLAIMS)])
    sweeps = [(n, s) for n, s in read(done["robustness"]) if n in named("robustness", "robustness")]
    controls = {c: [(n, s) for n, s in every if n in named("compare", c)] for c in CONTROLS}
    steps = sorted({s.get("steps") for _, s in comparisons + sweeps if s.get("steps")})
    title = "## The paper's claims on this backbone" + (f" ({' and '.join(map(str, steps))} steps)" if steps else "")
    if comparisons or sweeps:
        names = [f"`{n}`" for n, _ in comparisons] + [f"`{n}` (robustness)" for n, _ in sweeps]
        evidence = f"Read here: {', '.join(names)}."
    else:
        evidence = ("**No declared experiment that names a claim has been run yet**: every claim below is \"cannot say\" "
                    "for both methods until they land.")
    intro = [title, "", prose("claims", steps=" and ".join(f"{s} steps" for s in steps) or "no runs yet", base=BASE,
                              plus=PLUS), "", evidence, ""]
    have = {**{("compare", n): s for n, s in every}, **{("robustness", n): s for n, s in read(done["robustness"])}}
    waiting = [d for d in declared if d.experiment.claims and lacking(d, have.get((d.kind, d.name)))]
    ending = (["### What this section cannot say yet", "",
               "Declared for a claim and not (fully) run yet (\"What the declared experiments still lack\" says what "
               "each needs): " + ", ".join(f"`{d.name}`" for d in waiting) + ".", ""] if waiting else [])
    through = read_through(main)
    rows = tests(main, declared, through) if verdicts is None else verdicts  # the one-page table's rows, when given
    adjusted = {(r["claim"], r["comparison"], r["form"]): r["p_adjusted"] for r in rows}
    reading = lambda claim: [(n, s) for n, s in main if n in named("compare", claim)]  # noqa: E731
    return intro + convergence_section(reading("convergence"), through, adjusted) \
        + accuracy_section(reading("accuracy"), through, adjusted) \
        + robustness_section(sweeps) + label_words(controls["control:label_words"], through) \
        + bottleneck(controls["control:bottleneck"]) + gamma(controls["control:gamma"]) + ending


def verdict_rows(done: Dict[str, List[Path]], declared: Sequence[Declared]) -> List[dict]:
    """The one-page verdict table's rows (``verdicts.tests``) from the comparisons that name a claim."""
    names = {d.name for d in declared if d.kind == "compare" and set(d.experiment.claims) & set(MAIN_CLAIMS)}
    main = against_base([(n, s) for n, s in read(done["compare"]) if n in names])
    return tests(main, declared, read_through(main))

