"""The robustness claim per initialisation: each initialisation's mean test score with its 95 % seed interval, the
spread of the initialisation means with each one left out (so one initialisation cannot decide the verdict alone),
the rate every initialisation ran at, and how many seeds per initialisation would let the initialisation's own
effect show above seed noise."""

from __future__ import annotations

import math
import statistics
from typing import List, Optional, Tuple

from lit_infoprompt.analysis.claims_words import BASE, CLAIMED
from lit_infoprompt.analysis.robustness_files import rates_words


def init_interval(cell: dict) -> Optional[Tuple[float, float]]:
    """The 95 % t interval of one initialisation's mean over its seeds (None with one seed): scipy's
    ``t.interval`` from the cell's mean, sd and n (the seeds' scores themselves are not in the cell)."""
    from scipy import stats

    if cell["n"] < 2:
        return None
    low, high = stats.t.interval(0.95, cell["n"] - 1, loc=cell["mean"], scale=cell["std"] / math.sqrt(cell["n"]))
    return float(low), float(high)


def spread(row: dict, leave_out: Optional[str] = None) -> float:
    """The std of the per-initialisation means (``leave_out``: without that initialisation)."""
    means = [c["mean"] for init, c in row["per_init"].items() if init != leave_out]
    return statistics.stdev(means) if len(means) > 1 else 0.0


def noise_with(row: dict, seeds: int) -> Optional[float]:
    """The std of the per-initialisation means that seed noise alone would give with ``seeds`` seeds per
    initialisation: the pooled within-initialisation sd over sqrt(seeds)."""
    cells = list(row["per_init"].values())
    return math.sqrt(sum(c["std"] ** 2 for c in cells) / len(cells)) / math.sqrt(seeds) if cells else None


def seed_noise(row: dict) -> Optional[float]:
    """``noise_with`` at the sweep's own seeds per initialisation (None with one seed per initialisation)."""
    seeds = min(c["n"] for c in row["per_init"].values())
    return None if seeds < 2 else noise_with(row, seeds)


def spread_verdict(row: dict, base: dict, leave_out: Optional[str] = None) -> str:
    ours, theirs = spread(row, leave_out), spread(base, leave_out)
    noise = {m: noise_with(r, min(c["n"] for c in r["per_init"].values())) for m, r in (("a", row), ("b", base))}
    if all(n is not None and sd <= n for sd, n in ((ours, noise["a"]), (theirs, noise["b"]))):
        return "cannot say"
    return "less spread" if ours < theirs else "no less spread"


def seeds_to_tell(row: dict, base: dict) -> Optional[int]:
    """Seeds per initialisation at which seed noise alone (pooled sd / sqrt(seeds)) falls below the smaller of the
    two arms' spreads of initialisation means: from there on the initialisation's own effect shows (None: never
    within 100)."""
    target = min(spread(row), spread(base))
    for n in range(2, 101):
        if max(noise_with(row, n) or 0, noise_with(base, n) or 0) < target:
            return n
    return None


def init_table(name: str, s: dict) -> List[str]:
    """Per-initialisation means with their 95 % seed intervals, the leave-one-out spreads, the rate each arm ran at,
    and the seeds per initialisation that would let the initialisation's effect show above seed noise."""
    methods = list(s["methods"])
    inits = list(s["methods"][methods[0]]["per_init"])
    rate = rates_words(s["prompt_lrs"], s["rates_from"])
    lines = [f"`{name}`: test score per initialisation, mean over seeds [95 % interval]; every initialisation ran at "
             f"the arm's one rate ({rate}); std of the initialisation means with all of them and with each left out.",
             "", "| arm | " + " | ".join(inits) + " | std of init means | " + " | ".join(f"without {i}" for i in inits)
             + " |", "|---" * (2 + 2 * len(inits)) + "|"]
    for m in methods:
        row = s["methods"][m]
        cells = []
        for init in inits:
            cell = row["per_init"][init]
            ci = init_interval(cell)
            cells.append(f"{cell['mean']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{cell['mean']:.4f}")
        lines.append(f"| `{m}` | " + " | ".join(cells) + f" | {spread(row):.4f} | "
                     + " | ".join(f"{spread(row, i):.4f}" for i in inits) + " |")
    base = s["methods"].get(BASE)
    if base:
        for m in (x for x in CLAIMED if x in s["methods"]):
            row = s["methods"][m]
            seeds = min(c["n"] for c in row["per_init"].values())
            need = seeds_to_tell(row, base)
            lines.append("")
            lines.append(f"`{m}` against `{BASE}` with each initialisation left out: "
                         + ", ".join(f"without `{i}` {spread_verdict(row, base, i)}" for i in inits)
                         + f". Seeds per initialisation: {seeds}; "
                         + (f"about {need} would bring seed noise alone below both arms' spread of initialisation "
                            f"means, so that the initialisation's own effect shows" if need and need > seeds else
                            "these already put seed noise below both spreads" if need else
                            "even 100 would not bring seed noise below both spreads") + ".")
    figure_note = f"![initialisations](results/robustness/{name}/inits.png)"
    return lines + ["", figure_note]
