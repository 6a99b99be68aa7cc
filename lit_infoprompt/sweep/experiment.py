"""An experiment is one file: ``conf/experiment/<name>.yaml``, read into ``Experiment``.

It declares what a comparison or a robustness sweep needs (task and split, steps, backbone, the arms and which one
is the baseline, the seeds, the prompt learning-rate grid or the experiment whose dev choice it reuses, the claims
it bears on). ``make experiment E=<name>`` turns it into the arguments ``compare``/``robustness`` take, so it trains
exactly the runs that neither ``runs/`` nor the archive holds and writes the comparison under the file's name;
``PLAN=1`` prints what it would train and for how long, without importing torch (``sweep.plan``).

A wrong key or value is one ``error:`` line naming the file and the key. Machine settings (where the data and the
backbone live, workers, SLURM) are not part of the file: they come from the command line, as for ``compare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from lit_infoprompt.config import CONF_DIR, CHOICES
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep.declared import experiment_path

KINDS = ("compare", "robustness")
CLAIMS = ("convergence", "accuracy", "robustness")  # the paper's claims; a control is "control:<what it isolates>"
INITS = ("random", "vocab", "text", "label_words")  # analysis.robustness_files.INITS, without importing the analysis
FALLBACK_MODEL = "fallback"  # model: fallback = the offline fallback backbone's folder (hub.models_dir())


@dataclass
class Experiment:
    """One experiment. Everything but ``task``, ``arms`` and ``seeds`` has a default."""

    task: str = ""  # conf/task/<task>.yaml
    kind: str = "compare"  # compare (arms side by side, paired by seed) | robustness (every prompt.init x arm x seed)
    protocol: str = "per_class"  # per_class (shots per class) | budget (budget examples in all) | fixed (split files)
    shots: int = 16  # protocol=per_class
    budget: int = 64  # protocol=budget
    steps: int = 1000  # optimiser steps of every run (trainer.max_steps)
    model: Optional[str] = None  # backbone: null = the run config's (auto); "fallback" = all-MiniLM-L6-v2's folder
    arms: Dict[str, str] = field(default_factory=dict)  # arm name -> preset, or preset+key=value[+key=value...]
    baseline: Optional[str] = None  # the arm every other is paired against (null: the first)
    seeds: List[int] = field(default_factory=list)
    prompt_lrs: List[float] = field(default_factory=list)  # a grid: each arm's rate chosen on dev
    rates_from: Optional[str] = None  # the experiment whose dev choice of each arm's rate this one reuses
    inits: List[str] = field(default_factory=lambda: list(INITS))  # robustness: the initialisations
    claims: List[str] = field(default_factory=list)  # convergence | accuracy | robustness | control:<name>
    overrides: List[str] = field(default_factory=list)  # config key=value for every run (e.g. optim.prompt_lr=0.01)
    target: Optional[float] = None  # a dev score whose first crossing is compared
    margin: Optional[float] = None  # "equal" only within +-margin
    allow_mixed_versions: bool = False
    notes: str = ""  # why the experiment exists, in a sentence or two (shown in the plan)
    name: str = ""  # the file's stem; not a key of the file
    path: str = ""  # the file it was read from (named in error lines); not a key of the file

    @property
    def arm_items(self) -> List[str]:
        """The arms as ``compare``'s methods=[...] items, the baseline first."""
        order = [self.baseline] + [a for a in self.arms if a != self.baseline] if self.baseline else list(self.arms)
        return [a if self.arms[a] == a else f"{a}={self.arms[a]}" for a in order]

    @property
    def split(self) -> str:
        """The split as run folders name it: 16shot, budget64, fixed."""
        return {"per_class": f"{self.shots}shot", "budget": f"budget{self.budget}"}.get(self.protocol, self.protocol)

    def run_overrides(self) -> List[str]:
        """The config overrides every run of the experiment gets (the arms' own come on top)."""
        split = {"per_class": [f"data.shots={self.shots}"], "budget": [f"data.budget={self.budget}"]}
        model = []
        if self.model == FALLBACK_MODEL:
            from lit_infoprompt.hub import FALLBACK_NAME, models_dir

            model = [f"model.name={models_dir() / FALLBACK_NAME}"]
        elif self.model:
            model = [f"model.name={Path(self.model).expanduser() if self.model.startswith('~') else self.model}"]
        return [f"task={self.task}", f"data.protocol={self.protocol}", *split.get(self.protocol, []),
                f"trainer.max_steps={self.steps}", *model, *self.overrides]


KEYS = [f.name for f in fields(Experiment) if f.name not in ("name", "path")]


def load_experiment(name: str, folder: Optional[Path] = None) -> Experiment:
    """The experiment file as an ``Experiment``; any wrong key or value raises one ``InputError`` line that names
    the file and the key."""
    path = experiment_path(name, folder)
    if not path.is_file():
        where = path.parent
        known = sorted(p.stem for p in where.glob("*.yaml")) if where.is_dir() else []
        raise InputError(f"no experiment file {path}" + (f" (known: {', '.join(known)})" if known else ""))
    try:
        raw = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - YAML syntax: one line
        raise InputError(f"{path}: cannot read it as YAML ({str(err).splitlines()[0]})") from None
    if not OmegaConf.is_dict(raw):
        raise InputError(f"{path}: expected a mapping of keys ({', '.join(KEYS)})")
    unknown = [str(k) for k in raw if k not in KEYS]
    if unknown:
        raise InputError(f"{path}: unknown key '{unknown[0]}' (the keys: {', '.join(KEYS)})")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Experiment), raw)
        experiment = OmegaConf.to_object(merged)
    except ConfigKeyError as err:
        raise InputError(f"{path}: unknown key '{err.full_key}'") from None
    except OmegaConfBaseException as err:
        raise InputError(f"{path}: bad value for '{getattr(err, 'full_key', '?')}': "
                         f"{str(getattr(err, 'msg', err)).splitlines()[0]}") from None
    experiment.name, experiment.path = path.stem, str(path)
    check(experiment, path)
    return experiment


def check(e: Experiment, path: Path) -> None:
    """Values that parse but cannot be an experiment."""
    def bad(key: str, why: str) -> InputError:
        return InputError(f"{path}: {key}: {why}")

    if not e.task:
        raise bad("task", "missing (a task of conf/task/, e.g. cb)")
    if not (CONF_DIR / "task" / f"{e.task}.yaml").is_file() and not e.task.endswith((".yaml", ".yml")):
        known = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
        raise bad("task", f"unknown task '{e.task}' (known: {', '.join(known)})")
    if e.kind not in KINDS:
        raise bad("kind", f"'{e.kind}' is not one of {', '.join(KINDS)}")
    if e.protocol not in CHOICES["data.protocol"]:
        raise bad("protocol", f"'{e.protocol}' is not one of {', '.join(CHOICES['data.protocol'])}")
    for key in ("shots", "budget", "steps"):
        if getattr(e, key) < 1:
            raise bad(key, f"expected a positive number, got {getattr(e, key)}")
    if not e.arms:
        raise bad("arms", "no arms (name: preset, or name: preset+key=value)")
    for arm, spec in e.arms.items():
        preset = str(spec).split("+", 1)[0]
        if not (CONF_DIR / "method" / f"{preset}.yaml").is_file():
            known = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml"))
            raise bad(f"arms.{arm}", f"unknown method preset '{preset}' (known: {', '.join(known)})")
    if e.baseline is not None and e.baseline not in e.arms:
        raise bad("baseline", f"'{e.baseline}' is not one of the arms ({', '.join(e.arms)})")
    if not e.seeds or len(set(e.seeds)) < len(e.seeds):
        raise bad("seeds", "expected a list of distinct seeds" if e.seeds else "no seeds")
    if e.prompt_lrs and e.rates_from:
        raise bad("prompt_lrs", "give a rate grid or rates_from, not both")
    if any(lr <= 0 for lr in e.prompt_lrs):
        raise bad("prompt_lrs", f"learning rates must be positive, got {list(e.prompt_lrs)}")
    if e.kind == "robustness":
        if len(e.prompt_lrs) > 1:
            raise bad("prompt_lrs", "a robustness sweep runs one rate per arm (rates_from, or one rate)")
        if any(spec != arm for arm, spec in e.arms.items()):
            raise bad("arms", "a robustness sweep takes method presets (arm: the preset's own name): it varies "
                              "prompt.init itself")
        if not e.inits or any(i not in INITS for i in e.inits):
            raise bad("inits", f"expected some of {', '.join(INITS)}, got {list(e.inits)}")
    elif list(e.inits) != list(INITS):
        raise bad("inits", "only a robustness sweep varies the initialisation")
    for claim in e.claims:
        if claim not in CLAIMS and not (claim.startswith("control:") and len(claim) > len("control:")):
            raise bad("claims", f"'{claim}' is not one of {', '.join(CLAIMS)} or control:<name>")
    for item in e.overrides:
        if "=" not in item:
            raise bad("overrides", f"'{item}' is not key=value")
    if e.rates_from == e.name and e.kind == "compare":
        raise bad("rates_from", "an experiment cannot reuse its own choice of rates")


def rates_folder(e: Experiment, out_dir: str = "runs", archive: Optional[str] = "docs/results") -> Optional[Path]:
    """The comparison folder whose dev choice of rates the experiment reuses: a fresh one under ``runs/compare``,
    else the archived one; None when neither exists yet (the source experiment has not run)."""
    if not e.rates_from:
        return None
    for root in [Path(out_dir) / "compare"] + ([Path(archive) / "compare"] if archive else []):
        if (root / e.rates_from / "summary.json").is_file():
            return root / e.rates_from
    return None


def sweep_args(e: Experiment, extra: List[str], out_dir: str = "runs",
               archive: Optional[str] = "docs/results") -> List[str]:
    """The arguments ``compare``/``robustness`` take for this experiment (``extra``: machine settings and launch
    keys from the command line, after the file's, so they win)."""
    args = [*e.run_overrides(), *extra, f"methods=[{','.join(e.arm_items)}]",
            f"seeds=[{','.join(map(str, e.seeds))}]", f"name={e.name}"]
    if e.rates_from:
        folder = rates_folder(e, out_dir, archive)
        if folder is None:
            raise InputError(f"{e.name}: its rates come from the experiment {e.rates_from}, which has not run yet: "
                             f"make experiment E={e.rates_from} first")
        args.append(f"prompt_lr_from={folder}")
    elif e.prompt_lrs:
        args.append(f"prompt_lrs=[{','.join(f'{lr:g}' for lr in e.prompt_lrs)}]")
    if e.kind == "compare":
        args += [f"{k}={getattr(e, k)}" for k in ("target", "margin") if getattr(e, k) is not None]
    else:
        args.append(f"inits=[{','.join(e.inits)}]")
    if e.allow_mixed_versions:
        args.append("allow_mixed_versions=true")
    return args


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
    sweep, prefer = sweep_args(e, extra, out_dir, archive), own_runs(e, out_dir, archive)
    if e.kind == "compare":
        from lit_infoprompt.sweep.comparison_runs import compare

        return compare(sweep, prefer, declared=True)
    from lit_infoprompt.sweep.robustness_runs import robustness

    return robustness(sweep, prefer, declared=True)
