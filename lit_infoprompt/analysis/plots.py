"""Convergence plots: dev metric vs optimiser step and vs training examples seen, mean line and +-1 std band per
method.

No wall-clock axis: the runs of a comparison are trained one after another or side by side under whatever else
the machine does, so their seconds are no speed comparison. The cost of a step per method comes from
``make bench``, which times the methods interleaved in one process; a step of every method sees the same batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np


AXES = ("step", "examples")  # curve.csv columns on the x axes; never "seconds" (see above)


def mean_curve(curves: List[List[dict]], x: str, metric: str):
    """(x mean, metric mean, metric std) over seeds at each evaluation index (all seeds share the steps)."""
    length = min(len(c) for c in curves)
    xs = np.array([[row[x] for row in c[:length]] for c in curves], dtype=float)
    ys = np.array([[row[metric] for row in c[:length]] for c in curves], dtype=float)
    return xs.mean(0), ys.mean(0), ys.std(0)


def plot_curves(curves: Dict[str, List[List[dict]]], metric: str, title: str, path: Path) -> List[str]:
    """Writes the figure; returns its x-axis labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for method, runs in curves.items():
        for ax, x in zip(axes, AXES):
            xs, mean, std = mean_curve(runs, x, metric)
            line, = ax.plot(xs, mean, label=f"{method} (n={len(runs)})", linewidth=2)
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axes[0].set_xlabel("optimiser step")
    axes[1].set_xlabel("training examples seen (all processes)")
    axes[0].set_ylabel(f"dev {metric.removeprefix('val/')} (mean ± 1 std over seeds)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    labels = [ax.get_xlabel() for ax in axes]
    plt.close(fig)
    return labels
