"""Sequential sweep vs parallel grid workers: the same grid twice in one invocation, wall time of each and the ratio.

    python benchmarks/bench_workers.py --model <dir> --data-dir ../shared/data [--workers 2] [--steps 150]

Grid: CB 16-shot, prompt tuning and InfoPrompt x 3 seeds (13 21 42), ``--steps`` optimiser steps each, in fresh
output folders (no reuse, no archive). First one process runs the six runs one after another (all threads), then
``--workers`` processes run them (``threads = cores // workers`` each; with ``--device cuda`` all workers share the
one GPU). Prints both wall times, parallel / sequential, and whether every run's scores agree; ``--json`` keeps them.

It also prints what the split itself allows, from the same runs (each run's ``seconds`` in its summary.json): a run
of the parallel sweep (fewer threads, a neighbour beside it) takes ``slowdown`` times as long as the same run of the
sequential sweep, so no scheduling can bring the ratio below ``slowdown / workers`` (the **bound**). Where one run
already keeps every core busy (``slowdown`` close to ``workers``), parallel workers cannot gain, whatever the code
around them does; the gap between the ratio and the bound is the workers' own cost (start-up, an idle worker at
the end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPARISON = Path("compare") / "cb-16shot"  # where each sweep's comparison lands under its out_dir


def sweep(out: Path, args, extra) -> float:
    command = [sys.executable, "-m", "lit_infoprompt", "compare", "task=cb", "data.shots=16", f"model.name={args.model}",
               f"data.dir={args.data_dir}", f"trainer.max_steps={args.steps}", "trainer.progress_bar=false",
               f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}", f"out_dir={out}", "archive=null",
               "methods=[prompt_tuning,infoprompt]", "seeds=[13,21,42]", *extra]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - started


def summaries(out: Path) -> dict:
    """method/seed -> the summary.json of each run the comparison used."""
    result = {}
    for line in (out / COMPARISON / "runs.txt").read_text().split():
        summary = json.loads((Path(line) / "summary.json").read_text())
        result[f"{summary['method']}/{summary['seed']}"] = summary
    return result


def scores(runs: dict) -> dict:
    return {key: [summary["best_dev"], summary["test_acc"]] for key, summary in runs.items()}


def split_bound(sequential: dict, parallel: dict, workers: int) -> dict:
    """How much longer a run takes in the parallel sweep than in the sequential one (total run seconds, the same
    runs), and the lowest wall-time ratio that allows: that slowdown shared by ``workers`` runs at a time."""
    if set(sequential) != set(parallel):
        raise ValueError("the two sweeps ran different runs")
    one = sum(run["seconds"] for run in sequential.values())
    many = sum(run["seconds"] for run in parallel.values())
    return {"run_seconds_sequential": round(one, 1), "run_seconds_parallel": round(many, 1),
            "slowdown": round(many / one, 3), "bound": round(many / one / workers, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = sweep(Path(tmp) / "sequential", args, [])
        parallel = ["workers=" + str(args.workers)] + ([f"threads={args.threads}"] if args.threads else [])
        many = sweep(Path(tmp) / "parallel", args, parallel)
        runs_one, runs_many = summaries(Path(tmp) / "sequential"), summaries(Path(tmp) / "parallel")
        same_summary = all((Path(tmp) / "sequential" / COMPARISON / name).read_bytes()
                           == (Path(tmp) / "parallel" / COMPARISON / name).read_bytes()
                           for name in ("summary.json", "summary.md"))
    same = scores(runs_one) == scores(runs_many)
    bound = split_bound(runs_one, runs_many, args.workers)
    result = {"device": args.device, "cores": os.cpu_count(), "runs": 6, "steps": args.steps,
              "workers": args.workers, "sequential_s": round(one, 1), "parallel_s": round(many, 1),
              "ratio": round(many / one, 3), "same_scores": same, "same_summary": same_summary, **bound}
    print(f"sequential {one:.1f} s, {args.workers} workers {many:.1f} s: ratio {many / one:.3f} "
          f"(target <= 0.85); same per-run scores: {same}; same summary.json and summary.md: {same_summary}")
    print(f"a run takes {bound['slowdown']:.3f}x as long in a worker as alone with every thread "
          f"({bound['run_seconds_parallel']:.1f} s vs {bound['run_seconds_sequential']:.1f} s over the 6 runs): "
          f"no schedule of {args.workers} workers gets below ratio {bound['bound']:.3f} here")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
