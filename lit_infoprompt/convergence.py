"""Convergence statistics of a dev curve: rows of {"step": t, <metric>: score, ...} in step order.

Shared by the run summary and the comparison (``analysis``), so both report the same numbers. Step 0 (the untrained prompt
and head, evaluated before training) stays on the curve and in the summary as ``dev_step0``, but no
statistic here counts it: only states saved by a checkpoint during training can be selected, so the best
step is the step of the checkpoint that is tested, and a random step-0 head (the bottleneck methods) can
neither "reach a target before training" nor lift a method's area under the curve.
"""

from __future__ import annotations

from typing import Dict, List, Optional

# Read from curve.csv's diagnostics columns: a latent dimension of InfoPrompt's bottleneck counts as active when its
# mean KL to the prior over an evaluation interval is above this (bottleneck.diagnostics_row writes the count).
ACTIVE_DIM_NATS = 0.01

# An InfoNCE term's MI estimate log(M+1) - L is bounded by its ceiling log(M+1) (M: the negatives each example used).
# Read against that ceiling (curve.csv's diag/mi_<term>_frac_of_ceiling, or derived where a run predates it), a term
# is inert when its estimate is below INERT_FRACTION of the ceiling and saturated when above SATURATED_FRACTION. The
# comparison judges each run at its last evaluation, and also reports the first evaluation at or after EARLY_STEP.
INERT_FRACTION = 0.05
SATURATED_FRACTION = 0.95
EARLY_STEP = 100


def trained(rows: List[Dict[str, float]]) -> List[Dict[str, float]]:
    """The evaluations after training started (step > 0); a curve of step 0 alone is returned as it is."""
    return [row for row in rows if row["step"] > 0] or rows


def best_row(rows: List[Dict[str, float]], metric: str) -> Dict[str, float]:
    """The first trained row with the highest score (ModelCheckpoint with mode=max keeps the first of equals)."""
    rows = trained(rows)
    best = rows[0]
    for row in rows[1:]:
        if row[metric] > best[metric]:
            best = row
    return best


def area_under_curve(rows: List[Dict[str, float]], metric: str) -> float:
    """Trapezoidal area under score-vs-step, divided by the steps it spans: the mean score over training
    (1.0 = perfect from the first evaluation). A single row gives its own score."""
    rows = trained(rows)
    if len(rows) == 1:
        return rows[0][metric]
    area = sum((b["step"] - a["step"]) * (a[metric] + b[metric]) / 2 for a, b in zip(rows, rows[1:]))
    return area / (rows[-1]["step"] - rows[0]["step"])


def steps_to_target(rows: List[Dict[str, float]], metric: str, target: Optional[float]) -> Optional[int]:
    """The first evaluated step after step 0 whose score is >= target; None if never (or no target)."""
    if target is None:
        return None
    return next((int(row["step"]) for row in trained(rows) if row[metric] >= target), None)


def curve_summary(rows: List[Dict[str, float]], metric: str, target: Optional[float]) -> dict:
    best = best_row(rows, metric)
    return {"dev_step0": rows[0][metric], "best_dev": best[metric], "best_step": int(best["step"]),
            "final_dev": rows[-1][metric], "dev_auc": area_under_curve(rows, metric),
            "target_dev": target, "steps_to_target": steps_to_target(rows, metric, target)}
