"""Sequential sweep vs parallel grid workers: the same grid twice in one invocation, wall time of each and the ratio.

    python benchmarks/bench_workers.py --model <dir> --data-dir ../shared/data [--workers 2] [--steps 150]

Grid: CB 16-shot, prompt tuning and InfoPrompt x 3 seeds (13 21 42), ``--steps`` optimiser steps each, in fresh
output folders (no reuse, no archive). First one process runs the six runs one after another (all threads), then
``--workers`` processes run them (``threads = cores // workers`` each; with ``--device cuda`` all workers share the
one GPU). Prints both wall times, parallel / sequential, and whether every run's scores agree; ``--json`` keeps them.
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


def sweep(out: Path, args, extra) -> float:
    command = [sys.executable, "-m", "lit_infoprompt", "compare", "task=cb", "data.shots=16", f"model.name={args.model}",
               f"data.dir={args.data_dir}", f"trainer.max_steps={args.steps}", "trainer.progress_bar=false",
               f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}", f"out_dir={out}", "archive=null",
               "methods=[prompt_tuning,infoprompt]", "seeds=[13,21,42]", *extra]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - started


def scores(out: Path) -> dict:
    result = {}
    for line in (out / "compare" / "cb-16shot" / "runs.txt").read_text().split():
        summary = json.loads((Path(line) / "summary.json").read_text())
        result[f"{summary['method']}/{summary['seed']}"] = [summary["best_dev"], summary["test_acc"]]
    return result


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
        same = scores(Path(tmp) / "sequential") == scores(Path(tmp) / "parallel")
    result = {"device": args.device, "cores": os.cpu_count(), "runs": 6, "steps": args.steps,
              "workers": args.workers, "sequential_s": round(one, 1), "parallel_s": round(many, 1),
              "ratio": round(many / one, 3), "same_scores": same}
    print(f"sequential {one:.1f} s, {args.workers} workers {many:.1f} s: ratio {many / one:.3f} "
          f"(target <= 0.85); same per-run scores: {same}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
