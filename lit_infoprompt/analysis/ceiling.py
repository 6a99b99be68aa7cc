"""Each InfoNCE term's MI estimate against its ceiling: for example i with M_i negatives the estimate
log(M_i+1) - L_i is at most log(M_i+1), so a fraction of that ceiling says how far the critic got, whatever M is.

Runs record, per evaluation interval, ``diag/mi_<term>_ceiling_nats`` (the mean of log(M_i+1)) and
``diag/mi_<term>_frac_of_ceiling`` (the mean of the per-batch ratio). Runs made before those columns existed lack
them: for the representation term the ceiling is still known exactly, log(m+1) with m = ``method.num_negatives``
(0: 4 x ``data.batch_size``), the same for every example, so its fraction is derived from the config; the head
term's ceiling depends on each example's token count and is not recoverable, so it stays unrecorded (None).

Verdict per run (thresholds in ``lit_infoprompt.convergence``): inert below INERT_FRACTION of the ceiling, saturated
above SATURATED_FRACTION, otherwise in between; judged at the last evaluation and reported beside it at the first
evaluation at or after EARLY_STEP.
"""

from __future__ import annotations

import math
import statistics
from typing import Dict, List, Optional

from lit_infoprompt.convergence import EARLY_STEP, INERT_FRACTION, SATURATED_FRACTION

TERMS = {"head": "head loss", "rep": "representation loss"}
VERDICTS = ("inert", "in between", "saturated")
NOT_RECORDED = "not recorded"
SMALLEST_CEILING_NATS = math.log(2)  # log(M+1) with a single negative


def estimate_column(term: str) -> str:
    return f"diag/mi_{term}_nats"


def ceiling_column(term: str) -> str:
    return f"diag/mi_{term}_ceiling_nats"


def fraction_column(term: str) -> str:
    return f"diag/mi_{term}_frac_of_ceiling"


def rep_negatives(config: dict) -> int:
    """m, the prompt-free samples per example of the representation loss (``num_negatives`` 0: 4 x batch size)."""
    return config["method"]["num_negatives"] or 4 * config["data"]["batch_size"]


def rep_ceiling_nats(config: dict) -> float:
    """log(m+1): every example of the representation loss uses m negatives."""
    return math.log1p(rep_negatives(config))


def term_recorded(run: dict, term: str) -> bool:
    """Did the run itself write the term's ceiling (or its fraction of it)?"""
    return any(fraction_column(term) in row or ceiling_column(term) in row for row in run["curve"])


def with_fractions(run: dict) -> List[dict]:
    """The run's curve rows (copies), each row that has a term's estimate also holding its ceiling and fraction:
    as recorded; else estimate / recorded ceiling; else, for the representation term, derived from the config."""
    rows = []
    for row in run["curve"]:
        row = dict(row)
        for term in TERMS:
            estimate, ceiling, fraction = estimate_column(term), ceiling_column(term), fraction_column(term)
            if estimate not in row or fraction in row:
                continue
            if ceiling not in row and term == "rep":
                row[ceiling] = rep_ceiling_nats(run["config"])
            if row.get(ceiling):
                row[fraction] = row[estimate] / row[ceiling]
        rows.append(row)
    return rows


def ceiling_verdict(fraction: Optional[float]) -> str:
    if fraction is None:
        return NOT_RECORDED
    if fraction < INERT_FRACTION:
        return "inert"
    if fraction > SATURATED_FRACTION:
        return "saturated"
    return "in between"


def judged_rows(rows: List[dict], term: str) -> Dict[str, Optional[dict]]:
    """The rows a verdict reads: the first and last trained evaluation with the term's estimate, and the first at or
    after EARLY_STEP (None when the run has none)."""
    have = [row for row in rows if row["step"] > 0 and estimate_column(term) in row]
    if not have:
        return {}
    early = next((row for row in have if row["step"] >= EARLY_STEP), None)
    return {"first": have[0], "early": early, "last": have[-1]}


def mean_or_none(values: List[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def term_against_ceiling(runs: List[dict], term: str) -> Optional[dict]:
    """Over the runs that have the term: the mean ceiling (nats) and fraction of it at the first, early and last
    evaluation (None where no run's ceiling is known), how many runs' ceilings were recorded or derived, and the
    verdicts' counts at the last and at the early evaluation."""
    judged = [(run, judged_rows(with_fractions(run), term)) for run in runs]
    judged = [(run, rows) for run, rows in judged if rows]
    if not judged:
        return None
    column = fraction_column(term)

    def at(point: str) -> List[Optional[float]]:
        return [rows[point].get(column) if rows[point] else None for _, rows in judged]

    def counts(point: str) -> Dict[str, int]:
        found = [ceiling_verdict(f) for f, (_, rows) in zip(at(point), judged) if rows[point] is not None]
        return {v: found.count(v) for v in (*VERDICTS, NOT_RECORDED) if v in found}

    early_steps = sorted({int(rows["early"]["step"]) for _, rows in judged if rows["early"]})
    return {"runs": len(judged), "recorded_runs": sum(term_recorded(run, term) for run, _ in judged),
            "derived_runs": sum(not term_recorded(run, term) and column in rows["last"] for run, rows in judged),
            "config_negatives": sorted({rep_negatives(run["config"]) for run, rows in judged
                                        if not term_recorded(run, term) and column in rows["last"]}),
            "ceiling_nats": mean_or_none([rows["last"].get(ceiling_column(term)) for _, rows in judged]),
            "first": mean_or_none(at("first")), "early": mean_or_none(at("early")), "last": mean_or_none(at("last")),
            "early_steps": early_steps, "last_verdicts": counts("last"), "early_verdicts": counts("early"),
            "highest_nats": max(row[estimate_column(term)] for run, _ in judged for row in run["curve"]
                                if row["step"] > 0 and estimate_column(term) in row)}


def inert_whatever_the_ceiling(summary: dict) -> bool:
    """True when no run recorded the ceiling but the estimate never exceeded INERT_FRACTION of the smallest ceiling
    any example can have, log 2 (one negative): then it was below the inert threshold of the true ceiling, at every
    evaluation of every run."""
    return summary["last"] is None and summary["highest_nats"] <= INERT_FRACTION * SMALLEST_CEILING_NATS
