"""The answer on one page: each claim x task x form of InfoPrompt as one test, its family-wise error rate, and
whether the effect was found on the seeds that chose the rate or replicated by an experiment declared before its runs.

- **Speed** (the convergence claim) is the mean dev score over the first fifth of the steps
  (``aggregates.early_dev``), paired by seed; **level** (the accuracy claim) is the test metric, paired by seed.
  Where an arm is no faster early but its best dev score is higher, the row says so.
- Each claim's tests form a **family**: every comparison that names the claim (its experiment file's ``claims:``),
  each form of InfoPrompt in it, less the comparisons read through a larger one (the same runs with more seeds).
  Their p values (paired t) are adjusted by Holm's method (statsmodels' ``multipletests``); a claim **holds** only
  where the interval lies on the claimed side of 0 *and* the adjusted p is below 0.05.
- **found**: the comparison's seeds also chose its prompt rate; **declared replication**: its rate was fixed
  elsewhere, its seeds are its own and its file was committed before its runs (``sweep.reporting``); a claim found
  on one task is **replicated** only where a declared replication of that task and form also holds.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from lit_infoprompt.analysis.claims_words import BASE, CLAIMED, Named, task_of
from lit_infoprompt.analysis.declarations import Declared
from lit_infoprompt.analysis.power import Verdict, Words
from lit_infoprompt.analysis.tables import interval_text

ALPHA = 0.05
CLAIM_KEYS = {"convergence": "early_dev", "accuracy": "test"}  # the claim -> the paired difference that judges it
CLAIM_WORDS = {"convergence": "faster (dev, first fifth of the steps)", "accuracy": "better (test)"}


def holm(p_values: Sequence[Optional[float]]) -> List[Optional[float]]:
    """Holm-adjusted p values (statsmodels), None kept where a test has no p value."""
    from statsmodels.stats.multitest import multipletests

    known = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: List[Optional[float]] = [None] * len(p_values)
    if known:
        values = multipletests([p_values[i] for i in known], alpha=ALPHA, method="holm")[1]
        for i, value in zip(known, values):
            adjusted[i] = float(value)
    return adjusted


def tests(comparisons: List[Named], declared: Sequence[Declared], through: Dict[str, str]) -> List[dict]:
    """One row per claim x comparison x form: the paired difference, its p value, its Holm-adjusted p value within
    the claim's family, the verdict and the evidence (found / declared replication / held-out seeds)."""
    by_name = {d.name: d for d in declared if d.kind == "compare"}
    rows = []
    for name, s in comparisons:
        d = by_name.get(name)
        if d is None or name in through or list(s["methods"])[0] != BASE:
            continue
        for claim, key in CLAIM_KEYS.items():
            if claim not in d.experiment.claims:
                continue
            for form in (f for f in CLAIMED if f in s["methods"]):
                power = s[f"power_vs_{BASE}"][form]
                if key not in power:
                    continue
                rows.append({"claim": claim, "comparison": name, "task": task_of(s), "form": form,
                             "difference": power[key], "best_dev": power.get("best_dev"), "evidence": d.evidence})
    for claim in CLAIM_KEYS:
        family = [r for r in rows if r["claim"] == claim]
        for row, adjusted in zip(family, holm([r["difference"].get("p") for r in family])):
            row["p_adjusted"] = adjusted
            row["outcome"], row["verdict"] = outcome(row), claim_verdict(row)
    for row in rows:
        row["replicated"] = replicated(row, rows)
    order = {"found": 0, "held-out seeds": 1, "declared replication": 2}
    return sorted(rows, key=lambda r: (list(CLAIM_KEYS).index(r["claim"]), r["task"], order[r["evidence"]],
                                       r["comparison"], CLAIMED.index(r["form"])))


class Outcome(Words):
    """A claim's word for one test: the interval's verdict (``power.Verdict``) and its Holm-adjusted p."""

    HOLDS = "holds"
    NOT_AFTER_HOLM = "not after Holm"
    WORSE = "does not hold (worse)"
    WORSE_NOT_AFTER_HOLM = "worse, not after Holm"
    EQUAL = "equal"
    CANNOT_SAY = "cannot say"


def outcome(row: dict) -> Outcome:
    d, adjusted = Verdict(row["difference"]["verdict"]), row["p_adjusted"]
    significant = adjusted is not None and adjusted < ALPHA
    if d is Verdict.BETTER:
        return Outcome.HOLDS if significant else Outcome.NOT_AFTER_HOLM
    if d is Verdict.WORSE:
        return Outcome.WORSE if significant else Outcome.WORSE_NOT_AFTER_HOLM
    return Outcome.EQUAL if d is Verdict.EQUAL else Outcome.CANNOT_SAY


def claim_verdict(row: dict) -> str:
    """The row's outcome in words, with what the best dev score adds to a convergence row that is no faster."""
    word = outcome(row).value
    level = row.get("best_dev")
    if row["claim"] == "convergence" and Verdict(row["difference"]["verdict"]) is not Verdict.BETTER and level \
            and Verdict(level["verdict"]) is Verdict.BETTER:
        word += "; no faster, ends higher (best dev)"
    return word


def replicated(row: dict, rows: List[dict]) -> str:
    """found / replicated / not replicated / declared replication / held-out seeds."""
    if row["evidence"] != "found":
        return row["evidence"]
    twins = [r for r in rows if r["claim"] == row["claim"] and r["form"] == row["form"] and r["task"] == row["task"]
             and r["evidence"] == "declared replication"]
    if not twins:
        return "found, no replication yet"
    if row["outcome"] is not Outcome.HOLDS:
        return "found; replication: " + ", ".join(t["outcome"].value for t in twins)
    return "replicated" if any(t["outcome"] is Outcome.HOLDS for t in twins) else "found, not replicated"


def pvalue(p: Optional[float]) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def verdict_table(rows: List[dict]) -> List[str]:
    """The verdict table's markdown lines (empty without rows)."""
    if not rows:
        return []
    lines = ["| claim | comparison | task | form | difference [95 %] | p | Holm p | verdict | evidence |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = r["difference"]
        diff = f"{d['mean']:+.4f} {interval_text(d['t_interval'], 4)}" if d["mean"] is not None else "no paired seeds"
        lines.append(f"| {CLAIM_WORDS[r['claim']]} | `{r['comparison']}` | {r['task']} | `{r['form']}` | {diff} "
                     f"({d['n']} seeds) | {pvalue(d.get('p'))} | {pvalue(r['p_adjusted'])} | **{r['verdict']}** | "
                     f"{r['replicated']} |")
    return lines


def families(rows: List[dict]) -> str:
    sizes = {claim: sum(r["claim"] == claim for r in rows) for claim in CLAIM_KEYS}
    return "; ".join(f"{claim}: {n} tests" for claim, n in sizes.items())
