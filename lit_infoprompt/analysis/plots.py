"""Convergence plots against optimiser step: on the left the dev metric, mean line and +-1 std band per method; on the
right, what a reader needs beside it: the training cross-entropy (top) and each InfoNCE term's MI estimate as a % of
its ceiling log(M+1) (bottom; thresholds of inert and saturated from ``lit_infoprompt.convergence``), mean over seeds. A
method without a term draws no line for it; a term whose ceiling a run did not record (the head loss of runs made
before it was logged) draws none either (``ceiling.with_fractions`` gives the rows their fractions).

No wall-clock axis: the runs of a comparison are trained one after another or side by side under whatever else
the machine does, so their seconds are no speed comparison. The cost of a step per method comes from
``make bench``, which times the methods interleaved in one process; a step of every method sees the same batch,
so examples seen are the step axis times a fixed batch and get no panel of their own.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from lit_infoprompt.analysis.ceiling import TERMS, estimate_column, fraction_column
from lit_infoprompt.convergence import INERT_FRACTION, SATURATED_FRACTION

STEP = "optimiser step"
CE = "train/loss/ce"
STYLES = {"head": "--", "rep": "-"}
TITLE_WIDTH = 140  # characters per line of the figure title (the figure is about 13 inches wide)


def mean_curve(curves: List[List[dict]], x: str, metric: str):
    """(x mean, metric mean, metric std) over seeds at each evaluation index that has the metric (all seeds share
    the steps); None when a seed's curve has no value of it."""
    curves = [[row for row in c if metric in row] for c in curves]
    length = min(len(c) for c in curves)
    if not length:
        return None
    xs = np.array([[row[x] for row in c[:length]] for c in curves], dtype=float)
    ys = np.array([[row[metric] for row in c[:length]] for c in curves], dtype=float)
    return xs.mean(0), ys.mean(0), ys.std(0)


def draw(ax, curves: List[List[dict]], key: str, label: str, color: str, scale: float = 1.0,
         linestyle: str = "-") -> Optional[str]:
    """The mean over seeds of one column as a line; returns its label, or None when there is nothing to draw."""
    found = mean_curve(curves, "step", key)
    if found is None:
        return None
    xs, mean, _ = found
    ax.plot(xs, scale * mean, label=label, color=color, linestyle=linestyle, linewidth=1.5)
    return label


def plot_curves(curves: Dict[str, List[List[dict]]], metric: str, title: str, path: Path) -> List[dict]:
    """Writes the figure; returns each panel's x label, y label and line labels (dev, train CE, % of ceiling)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 5.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(1.25, 1))
    dev = fig.add_subplot(grid[:, 0])
    loss = fig.add_subplot(grid[0, 1], sharex=dev)
    share = fig.add_subplot(grid[1, 1], sharex=dev)
    lines: Dict[str, List[str]] = {"dev": [], "ce": [], "share": []}
    unrecorded: Dict[str, List[str]] = {}  # term -> the arms that have it but whose runs did not record its ceiling
    for i, (method, runs) in enumerate(curves.items()):
        color = f"C{i % 10}"
        xs, mean, std = mean_curve(runs, "step", metric)
        dev.plot(xs, mean, label=f"{method} (n={len(runs)})", color=color, linewidth=2)
        dev.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2)
        lines["dev"].append(f"{method} (n={len(runs)})")
        lines["ce"].append(draw(loss, runs, CE, f"{method} train CE", color))
        for term in TERMS:
            drawn = draw(share, runs, fraction_column(term), f"{method} {term} % of ceiling", color, scale=100.0,
                         linestyle=STYLES[term])
            lines["share"].append(drawn)
            if drawn is None and any(estimate_column(term) in row for c in runs for row in c):
                unrecorded.setdefault(TERMS[term], []).append(method.split(",")[0])  # the arm, without its prompt lr
    lines = {k: [label for label in v if label] for k, v in lines.items()}
    dev.set_ylabel(f"dev {metric.removeprefix('val/')} (mean ± 1 std over seeds)")
    loss.set_ylabel("train cross-entropy (nats)")
    share.set_ylabel("InfoNCE estimate,\n% of its ceiling log(M+1)")
    for fraction, name in ((INERT_FRACTION, "inert"), (SATURATED_FRACTION, "saturated")):
        share.axhline(100 * fraction, color="grey", linestyle=":", linewidth=1)
        share.annotate(name, (0.005, 100 * fraction), xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                       va="bottom" if name == "inert" else "top")
    share.set_ylim(-5, 105)
    if not lines["share"]:
        share.text(0.5, 0.5, "no InfoNCE term with a known ceiling", transform=share.transAxes, ha="center",
                   va="center", color="grey")
    if unrecorded:
        share.set_title("; ".join(f"no {term} line for {', '.join(arms)}" for term, arms in unrecorded.items())
                        + " (ceiling not recorded)",
                        fontsize=9)
    for ax in (dev, loss, share):
        ax.grid(alpha=0.3)
    for ax in (dev, share):
        ax.set_xlabel(STEP)
    loss.tick_params(labelbottom=False)
    dev.legend(loc="lower right")
    loss.set_title("mean over seeds; colours as on the left", fontsize=9)
    if lines["share"]:
        share.legend(loc="center right", fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(title, TITLE_WIDTH)))  # a long header on lines of its own, not cut off
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    panels = [{"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "lines": lines[name]}
              for name, ax in (("dev", dev), ("ce", loss), ("share", share))]
    plt.close(fig)
    return panels


def forest(rows: List[dict], path: Path) -> None:
    """The verdict table as a figure: one line per test (claim, comparison, form), each seed's paired difference as
    a dot, the mean with its 95 % interval as a bar, a filled marker where the Holm-adjusted p is below 0.05."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    claims = [c for c in ("convergence", "accuracy") if any(r["claim"] == c for r in rows)]
    heights = [sum(r["claim"] == c for r in rows) for c in claims]
    fig, axes = plt.subplots(len(claims), 1, figsize=(11, 0.42 * sum(heights) + 1.6 * len(claims)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    from lit_infoprompt.analysis.claim_roles import claim_roles

    colors = dict(zip(claim_roles().claimed, ("tab:orange", "tab:green", "tab:purple", "tab:brown")))
    for ax, claim in zip(axes[:, 0], claims):
        mine = [r for r in rows if r["claim"] == claim]
        for y, r in enumerate(reversed(mine)):
            d, color = r["difference"], colors.get(r["form"], "tab:blue")
            dots = d.get("differences") or []
            ax.scatter(dots, [y] * len(dots), s=10, color=color, alpha=0.35, zorder=2)
            if d["mean"] is not None and d["t_interval"]:
                low, high = d["t_interval"]
                ax.plot([low, high], [y, y], color=color, linewidth=2, zorder=3)
                filled = r["p_adjusted"] is not None and r["p_adjusted"] < 0.05
                ax.scatter([d["mean"]], [y], s=45, zorder=4, color=color if filled else "white", edgecolors=color)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(mine)))
        ax.set_yticklabels([f"{r['comparison']} · {r['form']} ({r['replicated']})" for r in reversed(mine)],
                           fontsize=8)
        what = "speed: mean dev score, first fifth of the steps" if claim == "convergence" else "level: test metric"
        ax.set_title(f"{claim} — {what}\nInfoPrompt − prompt tuning: seeds (dots), mean and 95 % interval "
                     "(filled: Holm-adjusted p < 0.05)", fontsize=9, loc="right")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("paired difference")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def init_means(sweep: dict, path: Path) -> None:
    """A robustness sweep as a figure: per initialisation, each arm's mean test score over seeds with its 95 %
    interval (t), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lit_infoprompt.analysis.initialisations import init_interval

    methods = list(sweep["methods"])
    inits = list(sweep["methods"][methods[0]]["per_init"])
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(methods)
    for k, method in enumerate(methods):
        for i, init in enumerate(inits):
            cell = sweep["methods"][method]["per_init"][init]
            x = i + (k - (len(methods) - 1) / 2) * width
            interval = init_interval(cell)
            if interval:
                ax.plot([x, x], interval, color=f"C{k}", linewidth=2)
            ax.scatter([x], [cell["mean"]], color=f"C{k}", s=30, label=method if i == 0 else None, zorder=3)
    ax.set_xticks(range(len(inits)))
    ax.set_xticklabels(inits)
    ax.set_ylabel(f"test {sweep.get('metric', 'score')}")
    ax.set_title("mean over seeds per prompt initialisation, 95 % interval", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
