"""Back-test of the plan's time estimate (``sweep.plan``) on the archive: each archived experiment's runs estimated
from the other experiments' runs only, against the seconds they recorded. Prints one row per experiment and the
median over them; ``--json`` writes the rows.

    .venv/bin/python benchmarks/plan_backtest.py [--archive docs/results] [--experiments conf/experiment]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from lit_infoprompt.experiment import EXPERIMENTS_DIR, load_experiment
from lit_infoprompt.sweep.plan import backtest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default="docs/results")
    parser.add_argument("--experiments", default=str(EXPERIMENTS_DIR))
    parser.add_argument("--json")
    args = parser.parse_args()
    folder = Path(args.experiments)
    experiments = [load_experiment(str(f)) for f in sorted(folder.glob("**/*.yaml"))]
    rows = backtest(experiments, Path(args.archive))
    print(f"{'experiment':40s} {'runs':>5s} {'estimated':>9s} {'median |err| per run':>21s} {'total err':>10s}")
    for row in rows:
        med = "n/a" if row["median_abs_error"] is None else f"{row['median_abs_error']:.0%}"
        tot = "n/a" if row["total_error"] is None else f"{row['total_error']:+.0%}"
        print(f"{row['experiment']:40s} {row['runs']:5d} {row['estimated']:9d} {med:>21s} {tot:>10s}")
    per_run = [r["median_abs_error"] for r in rows if r["median_abs_error"] is not None]
    totals = [abs(r["total_error"]) for r in rows if r["total_error"] is not None]
    print(f"over {len(per_run)} experiments: median per-run |error| {statistics.median(per_run):.0%}, "
          f"median |error| of the experiment's total {statistics.median(totals):.0%}, "
          f"largest {max(totals):.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
