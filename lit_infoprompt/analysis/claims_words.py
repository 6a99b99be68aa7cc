"""The words of docs/RESULTS.md's claims section (``claims_report``): which archived comparisons it reads (their
runs' steps), a paired difference as a claim's verdict (holds, does not hold, equal within ±x, cannot say and why,
with the seeds that would tell where ``power`` can compute them), and one closing sentence per claimed method.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from lit_infoprompt.analysis.claim_roles import claim_roles
from lit_infoprompt.analysis.power import minimum_detectable
from lit_infoprompt.analysis.tables import interval_text

ROLES = claim_roles()  # conf/claims.yaml: which methods the claims are about
BASE, CLAIMED, PLUS = ROLES.baseline, ROLES.claimed, ROLES.label_words
MOST_SEEDS = 1000  # seeds_needed looks no further

Named = Tuple[str, dict]  # (folder name, summary.json)


def steps_of(summary: dict) -> Optional[int]:
    """The training steps (trainer.max_steps) of a comparison's or a sweep's runs, as its summary.json records them."""
    return summary.get("steps")


def read(folders: Sequence[Path], steps: Optional[int] = None) -> List[Named]:
    """(name, summary) of each folder whose runs trained ``steps`` steps (every folder with None)."""
    out = [(Path(f).name, json.loads((Path(f) / "summary.json").read_text())) for f in folders]
    return [(n, s) for n, s in out if steps is None or steps_of(s) == steps]


def not_clearly_above(summary: dict, methods: Sequence[str]) -> List[str]:
    """The methods whose mean test score lies within one run's 95 % test interval of the constant predictor
    (a method without that reading counts as above: the glance table's rule)."""
    return [m for m in methods if not summary["methods"][m].get("vs_constant", {}).get("above", True)]


def seeds_needed(sd: float, margin: float, most: int = MOST_SEEDS) -> Optional[int]:
    """The fewest seeds whose MDE (80 % power) at the observed sd is at most ``margin``; None beyond ``most``.
    A search by hand: statsmodels' ``TTestPower().solve_power(effect_size=margin / sd, nobs=None)`` returns NaN
    (no convergence) for large effects and fractional n below 2 where 3 seeds are needed."""
    if minimum_detectable(sd, most) > margin:
        return None
    low, high = 2, most  # the MDE falls with n: bisect for the first n at or below the margin
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if minimum_detectable(sd, mid) <= margin else (mid + 1, high)
    return low


def number(value: float, digits: int, unit: str = "") -> str:
    return f"{value:+.{digits}f}{unit}"


def diff_text(d: dict, digits: int, unit: str = "") -> str:
    """'+0.0123 [-0.0050, +0.0296]' (the mean and its 95 % paired-t interval)."""
    if d["mean"] is None:
        return "no paired seeds"
    return f"{number(d['mean'], digits, unit)} {interval_text(d['t_interval'], digits)}"


def too_few(d: dict, digits: int, unit: str = "") -> str:
    """Why a difference gets no verdict, and the seeds that would give one where power.py can tell."""
    if d["n"] < 2:
        return f"too few seeds: {d['n']} paired seed(s)"
    if not d["sd"]:
        return (f"too few seeds: all {d['n']} give {number(d['mean'], digits, unit)}, and without spread only the "
                f"sign test speaks, which needs 6 or more same-signed seeds")
    text = f"too few seeds: MDE {d['mde']:.{digits}f}{unit} with {d['n']} seeds"
    need, margin = seeds_needed(d["sd"], d["margin"]), f"±{d['margin']:g}{unit}"
    if need is None:
        return text + f"; even {MOST_SEEDS} seeds would not detect a true {margin} at the observed spread"
    if need <= d["n"]:
        return text + f", which already detects a true {margin} with 80 % power, yet the interval reaches past it"
    return text + f"; about {need} seeds would detect a true {margin} with 80 % power at the observed spread"


def word(d: dict, digits: int, unit: str = "", better: str = "holds", worse: str = "does not hold (worse)") -> str:
    """A difference's verdict as the claim's word: holds, does not hold, equal within ±x, cannot say (why)."""
    if d["verdict"] == "better":
        return f"**{better}**"
    if d["verdict"] == "worse":
        return f"**{worse}**"
    if d["verdict"] == "equal":
        low, high = d["t_interval"]
        return f"**equal within ±{max(-low, high):.{digits}f}{unit}** (inside the ±{d['margin']:g}{unit} margin)"
    return f"**cannot say** ({too_few(d, digits, unit)})"


def task_of(summary: dict) -> str:
    return f"{summary['task']} {summary['split']}"


def label(name: str, summary: dict) -> str:
    seeds = max(len(row["seeds"]) for row in summary["methods"].values())
    return f"`{name}` ({task_of(summary)}, {seeds} seeds)"


def against_base(comparisons: List[Named]) -> List[Named]:
    return [(n, s) for n, s in comparisons if list(s["methods"])[0] == BASE and f"power_vs_{BASE}" in s]


def read_through(comparisons: List[Named]) -> Dict[str, str]:
    """{name: the comparison its closing verdicts are read through}: a comparison whose runs another one holds with
    more seeds (the same task and steps, every arm of it there at the same prompt lr, its seeds a subset with the
    same paired differences seed by seed), e.g. the 5-seed piece that chose the rates and the piece that added seeds
    at them. Its own numbers stay listed; its verdict would only repeat the larger one's on fewer seeds. The one with
    the most seeds is named."""
    def seeds(s: dict) -> int:
        return sum(len(row["seeds"]) for row in s["methods"].values())

    def per_seed(s: dict, method: str) -> dict:
        paired = s[f"paired_vs_{BASE}"].get(method, {})
        return dict(zip(paired.get("seeds", []), paired.get("differences", [])))

    def holds(big: dict, small: dict) -> bool:  # the same runs: the same rates and, seed by seed, the same scores
        return task_of(big) == task_of(small) and steps_of(big) == steps_of(small) and seeds(big) > seeds(small) \
            and all(m in big["methods"] and big["methods"][m].get("prompt_lr") == row.get("prompt_lr")
                    and set(row["seeds"]) <= set(big["methods"][m]["seeds"])
                    and per_seed(small, m).items() <= per_seed(big, m).items() for m, row in small["methods"].items())

    out = {}
    for name, s in comparisons:
        larger = [(seeds(b), n) for n, b in comparisons if n != name and holds(b, s)]
        if larger:
            out[name] = max(larger)[1]
    return out


def through_note(through: Dict[str, str]) -> List[str]:
    """The line saying which comparisons' verdicts are read through which (empty when none)."""
    if not through:
        return []
    pairs = "; ".join(f"`{a}` through `{b}`" for a, b in through.items())
    return [f"Read through a larger comparison (the same runs at the same rates, more seeds): {pairs}.", ""]


def per_method(rows: Dict[str, List[str]], comparisons: List[Named], kind: str = "comparison against",
               methods: Sequence[str] = CLAIMED) -> List[str]:
    """One closing sentence per method (the claimed ones unless told): its word in each comparison, and the
    comparisons without it."""
    lines = []
    for method in methods:
        lacking = [(n, s) for n, s in comparisons if method not in s["methods"]]
        if not rows.get(method):
            where = (f"not in {', '.join(f'`{n}`' for n, _ in lacking)}" if lacking else
                     f"no declared {kind} `{BASE}` yet")
            lines.append(f"- `{method}`: **cannot say**: {where}.")
            continue
        text = f"- `{method}`: " + "; ".join(rows[method])
        if lacking:
            text += f"; not in {', '.join(f'`{n}`' for n, _ in lacking)}"
        lines.append(text + ".")
    return lines
