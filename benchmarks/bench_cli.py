"""How fast the command line answers bad input, against what importing torch costs: both timed in one invocation.

    python benchmarks/bench_cli.py [--repeat 3] [--json runs/bench-cli.json]      (make bench-cli)

Each call is a fresh process, as a user's is, timed from start to exit: ``import torch`` alone (``python -c``), the
interpreter alone (``python -c pass``), then ``python -m lit_infoprompt`` with a bad key, a bad value, an unknown
task, a model folder that is not there, ``predict`` with a missing ``--input`` file, an experiment plan whose model
folder is not there, and ``train --help``. Prints the median of ``--repeat`` tries of each, in seconds, and its ratio
to ``import torch``. Every CLI call must exit as expected (2 with one ``error:`` line; 0 for ``--help``): a call that
does not is reported and the script exits 1, so a regression cannot pass as a fast answer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def calls(tmp: Path) -> list:
    """(label, argv after ``python``, exit status expected)."""
    run = tmp / "a-run"  # a run directory as far as predict looks before loading it: its --input is checked first
    run.mkdir()
    (run / "config.yaml").write_text("seed: 13\n")
    experiment = tmp / "no-model.yaml"
    experiment.write_text(f"task: cb\nshots: 4\nsteps: 6\nmodel: {tmp}/no-such-model\n"
                          "arms: {prompt_tuning: prompt_tuning, infoprompt: infoprompt}\nseeds: [13, 21, 42, 87]\n")
    cli = ["-m", "lit_infoprompt"]
    out = f"out_dir={tmp / 'runs'}"
    return [
        ("python -c pass", ["-c", "pass"], 0),
        ("import torch", ["-c", "import torch"], 0),
        ("train trainer.max_stepz=2 (bad key)", [*cli, "train", "trainer.max_stepz=2", out], 2),
        ("train seed=abc (bad value)", [*cli, "train", "seed=abc", out], 2),
        ("train task=nosuchtask (unknown task)", [*cli, "train", "task=nosuchtask", out], 2),
        ("train model.name=<missing folder>", [*cli, "train", f"model.name={tmp}/no-such-model", out], 2),
        ("predict <run> --input <missing file>", [*cli, "predict", str(run), "--input", str(tmp / "none.jsonl")], 2),
        ("experiment <file naming a missing model> plan=true", [*cli, "experiment", str(experiment), "plan=true", out],
         2),
        ("train --help", [*cli, "train", "--help"], 0),
    ]


def timed(argv: list, status: int) -> tuple[float, str]:
    """(seconds from start to exit, what went wrong or "")."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    lines = out.stderr.strip().splitlines()
    if out.returncode != status:
        return seconds, f"exit {out.returncode}, expected {status}: {out.stderr.strip()[-300:]}"
    if status == 2 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        return seconds, f"not one error line: {lines[-3:]}"
    return seconds, ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="tries of each call; the median is reported")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, command, status in calls(Path(tmp)):
            tries = []
            for _ in range(args.repeat):
                seconds, wrong = timed(command, status)
                tries.append(seconds)
                if wrong:
                    failures.append(f"{label}: {wrong}")
            rows.append({"call": label, "median_s": statistics.median(tries), "tries_s": tries})
    torch_s = next(r["median_s"] for r in rows if r["call"] == "import torch")
    width = max(len(r["call"]) for r in rows)
    print(f"fresh processes, median of {args.repeat} ({sys.executable}, torch import as the unit)")
    print(f"{'call':<{width}}  {'seconds':>8}  {'/ import torch':>14}")
    for r in rows:
        r["ratio_to_import_torch"] = r["median_s"] / torch_s
        print(f"{r['call']:<{width}}  {r['median_s']:8.3f}  {r['ratio_to_import_torch']:14.2f}")
    for line in failures:
        print(f"FAILED {line}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"repeat": args.repeat, "rows": rows, "failures": failures}, indent=2)
                                   + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
