"""``make experiment E=<name>``: an ``Experiment`` (``lit_infoprompt.experiment``) run as a typed ``Sweep``.

``experiment_sweep`` makes the sweep straight from the experiment's fields (its settings typed, its arms as
``Arm``s, the rates from the comparison that chose them), so it trains exactly the runs that neither ``runs/`` nor
the archive holds and writes the comparison under the file's name; ``PLAN=1`` prints what it would train and for
how long, without importing torch (``sweep.plan``). Machine settings (where the data and the backbone live, workers,
SLURM) come from the command line, after the file's, so they win.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import Experiment, load_experiment
from lit_infoprompt.sweep.args import Sweep, check_sweep, parse_sweep


def rates_folder(e: Experiment, out_dir: str = "runs", archive: Optional[str] = "docs/results") -> Optional[Path]:
    """The comparison folder whose dev choice of rates the experiment reuses: a fresh one under ``runs/compare``,
    else the archived one; None when neither exists yet (the source experiment has not run)."""
    if not e.rates_from:
        return None
    for root in [Path(out_dir) / "compare"] + ([Path(archive) / "compare"] if archive else []):
        if (root / e.rates_from / "summary.json").is_file():
            return root / e.rates_from
    return None


# what an experiment file says and its command line may not (launch keys and config overrides it may)
FILE_KEYS = ("methods", "seeds", "prompt_lrs", "prompt_lr_from", "name", "inits", "target", "margin")


def experiment_sweep(e: Experiment, extra: List[str], out_dir: str = "runs", archive: Optional[str] = "docs/results",
                     rates_needed: bool = True) -> Sweep:
    """The sweep the experiment runs (``extra``: machine settings and launch keys from the command line, after the
    file's, so they win). ``rates_needed``: its ``rates_from`` comparison must exist (a plan makes do without)."""
    own = [a.partition("=")[0] for a in extra if a.partition("=")[0] in FILE_KEYS]
    if own:
        raise InputError(f"{e.name}: {own[0]}= is the experiment file's ({e.path or e.name}), not the command line's")
    machine = parse_sweep(list(extra), whole=False)  # the command line: launch keys and config overrides
    sweep = Sweep(arms=e.arm_list(), seeds=list(e.seeds), target=e.target, margin=e.margin,
                  allow_mixed_versions=e.allow_mixed_versions or machine.allow_mixed_versions, name=e.name,
                  launch=machine.launch, overrides=[*e.overrides, *machine.overrides], values=e.settings(),
                  source=e.path or e.name, origins={o: e.path or e.name for o in e.overrides},
                  inits=list(e.inits) if e.kind == "robustness" else None)
    if e.rates_from:
        folder = rates_folder(e, out_dir, archive)
        if folder is None and rates_needed:
            raise InputError(f"{e.name}: its rates come from the experiment {e.rates_from}, which has not run yet: "
                             f"make experiment E={e.rates_from} first")
        sweep.prompt_lr_from = str(folder) if folder is not None else None
    elif e.prompt_lrs:
        sweep.prompt_lrs = sorted(set(e.prompt_lrs))
    try:
        check_sweep(sweep)
    except InputError as err:
        raise InputError(f"{sweep.source}: {err}") from None
    return sweep


def own_runs(e: Experiment, out_dir: str = "runs", archive: Optional[str] = "docs/results") -> List[str]:
    """The runs this experiment already lists (its spec.json under ``runs/`` and in the archive): reused first, so
    running a declared experiment again gives the comparison it gave, even where a run was made twice."""
    import json

    found = []
    for root, base in [(Path(out_dir), None)] + ([(Path(archive), Path(archive))] if archive else []):
        spec = root / e.kind / e.name / "spec.json"
        if spec.is_file():
            runs = json.loads(spec.read_text()).get("runs", [])
            found += [str(base / r) if base is not None else r for r in runs]
    return found


def parse_experiment_args(args: List[str]) -> tuple:
    """``<name|file.yaml> [plan=true] [experiments=<folder>] [key=value ...]`` -> (experiment, machine settings
    and launch keys, out_dir, archive, plan?)."""
    if not args or "=" in args[0]:
        raise InputError("usage: python -m lit_infoprompt experiment <name|file.yaml> [plan=true] [key=value ...]")
    name, rest = args[0], list(args[1:])
    folder = next((a.partition("=")[2] for a in rest if a.startswith("experiments=")), None)
    e = load_experiment(name, Path(folder) if folder else None)
    extra = [a for a in rest if not a.startswith(("plan=", "experiments="))]
    out_dir = next((a.partition("=")[2] for a in reversed(extra) if a.startswith("out_dir=")), "runs")
    archive = next((a.partition("=")[2] for a in reversed(extra) if a.startswith("archive=")), "docs/results")
    archive = None if archive in ("null", "None", "") else archive
    planned = any(a.partition("=")[2].lower() in ("1", "true", "yes") for a in rest if a.startswith("plan="))
    return e, extra, out_dir, archive, planned


def run_experiment(e: Experiment, extra: List[str], out_dir: str = "runs",
                   archive: Optional[str] = "docs/results") -> Path:
    """Train what the experiment lacks and write its comparison or sweep (``compare``/``robustness``)."""
    sweep, prefer = experiment_sweep(e, extra, out_dir, archive), own_runs(e, out_dir, archive)
    if e.kind == "compare":
        from lit_infoprompt.sweep.comparison_runs import run_comparison

        return run_comparison(sweep, prefer, declared=True)
    from lit_infoprompt.sweep.robustness_runs import run_robustness

    return run_robustness(sweep, prefer, declared=True)
