"""An experiment is one file: ``conf/experiment/<name>.yaml``, read into a typed ``Experiment``.

It declares what a comparison or a robustness sweep needs (task and split, steps, backbone, the arms and which one
is the baseline, the seeds, the prompt learning-rate grid or the experiment whose dev choice it reuses, the claims
it bears on). Everything downstream takes this object: ``sweep.experiment_runs`` makes the typed ``sweep.args.Sweep``
and its ``Job``s from it (``make experiment``), ``sweep.plan`` plans it, ``sweep.paper`` runs a folder of them, and
the report (``sweep.reporting``, ``analysis.declarations``) reads the arms, the baseline and the claims from it.
This module imports neither torch nor the sweep or the analysis, so all of them can import it.

An **arm** (``Arm``) is a method preset under a name, with config overrides of its own: ``prompt_tuning`` (an arm
named after the preset) or ``pt_lw: prompt_tuning+prompt.init=label_words``.

A wrong key or value is one ``error:`` line naming the file and the key. Machine settings (where the data and the
backbone live, workers, SLURM) are not part of the file: they come from the command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from lit_infoprompt.config import CHOICES, CONF_DIR
from lit_infoprompt.splits import split_folder, split_words
from lit_infoprompt.errors import InputError

EXPERIMENTS_DIR = CONF_DIR / "experiment"


def experiment_path(name: str, folder: Optional[Path] = None) -> Path:
    """``E=<name>`` (a file of the experiments folder) or a path to a yaml file."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return Path(folder or EXPERIMENTS_DIR) / f"{name}.yaml"


def declared_path(kind: str, name: str, folder: Optional[Path] = None) -> Path:
    """Where the experiment file of this kind and name would be: ``<folder>/[robustness/]<name>.yaml``."""
    return Path(folder or EXPERIMENTS_DIR) / ("robustness" if kind == "robustness" else "") / f"{name}.yaml"


def is_declared(kind: str, name: str, folder: Optional[Path] = None) -> bool:
    """Whether ``name`` is a declared experiment of this kind (a file of the experiments folder)."""
    return declared_path(kind, name, folder).is_file()


@dataclass(frozen=True)
class Arm:
    """One arm: a method preset and the config overrides it runs with, under a name of its own."""

    name: str
    method: str
    overrides: Tuple[str, ...] = ()

    @property
    def item(self) -> str:
        """As ``methods=[...]`` and an experiment file write it: ``name`` or ``name=preset+key=value...``."""
        return self.name if not self.overrides and self.name == self.method else \
            f"{self.name}=" + "+".join([self.method, *self.overrides])


KINDS = ("compare", "robustness")
CLAIMS = ("convergence", "accuracy", "robustness")  # the paper's claims; a control is "control:<what it isolates>"
INITS = ("random", "vocab", "text", "label_words")  # the prompt initialisations a robustness sweep varies
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
    def baseline_arm(self) -> str:
        """The arm every other is paired against: ``baseline``, else the first arm."""
        return self.baseline or next(iter(self.arms))

    def arm_list(self) -> List[Arm]:
        """The arms, typed, the baseline first."""
        order = [self.baseline_arm] + [a for a in self.arms if a != self.baseline_arm]
        return [parse_arm(a if self.arms[a] == a else f"{a}={self.arms[a]}") for a in order]

    @property
    def folder_kind(self) -> str:
        """Where its comparison lives: ``compare`` or ``robustness`` (``runs/<folder_kind>/<name>``)."""
        return "robustness" if self.kind == "robustness" else "compare"

    @property
    def size(self) -> Optional[int]:
        """Shots per class, the budget, or None (fixed split files)."""
        return {"per_class": self.shots, "budget": self.budget}.get(self.protocol)

    @property
    def split(self) -> str:
        """The split as run folders name it: 16shot, budget64, fixed."""
        return split_folder(self.protocol, self.size)

    @property
    def split_words(self) -> str:
        """The split as the report's headers name it: "16-shot", "budget 64"."""
        return split_words(self.protocol, self.size if self.protocol in ("per_class", "budget") else None)

    def settings(self) -> Dict[str, Any]:
        """The typed config settings every run of the experiment gets (``config.load_config(values=...)``): the task,
        the split, the steps and the backbone. The file's ``overrides`` (key=value text, as written) and the arms'
        own come on top."""
        values: Dict[str, Any] = {"task": self.task, "data.protocol": self.protocol}
        if self.protocol == "per_class":
            values["data.shots"] = self.shots
        elif self.protocol == "budget":
            values["data.budget"] = self.budget
        values["trainer.max_steps"] = self.steps
        if self.model == FALLBACK_MODEL:
            from lit_infoprompt.hub import FALLBACK_NAME, models_dir

            values["model.name"] = str(models_dir() / FALLBACK_NAME)
        elif self.model:
            values["model.name"] = str(Path(self.model).expanduser()) if self.model.startswith("~") else self.model
        return values


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
    check_fields(experiment, path)
    return experiment


def check_fields(e: Experiment, path: Path) -> None:
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
        try:
            parse_arm(arm if spec == arm else f"{arm}={spec}")
        except InputError as err:  # e.g. an arm that sets the seed
            raise bad(f"arms.{arm}", str(err)) from None
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


ARM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
ARM_SYNTAX = "<arm name>=<preset>+<key>=<value>[+<key>=<value>...]"
NOT_PER_ARM = ("task", "method", "seed", "task.name", "method.name")  # the sweep's, the same for every arm


def parse_arm(item: str) -> Arm:
    """``prompt_tuning`` or ``pt_lw=prompt_tuning+prompt.init=label_words``; a '+' splits only before a
    ``key=``, so a value such as ``1e+3`` stays whole."""
    name, is_arm, spec = item.partition("=")
    if not ARM_NAME.fullmatch(name):
        raise InputError(f"methods: bad arm name {name!r} in {item!r}: letters, digits, '_', '.' or '-' (no '/'), "
                         f"as {ARM_SYNTAX}")
    if not is_arm:
        return Arm(name, name)
    method, *overrides = re.split(r"\+(?=[A-Za-z_][\w.]*=)", spec)
    if not ARM_NAME.fullmatch(method) or any(not re.match(r"[A-Za-z_][\w.]*=", o) for o in overrides):
        raise InputError(f"methods: cannot read the arm {item!r}: expected {ARM_SYNTAX}")
    keys = [o.partition("=")[0] for o in overrides]
    if any(k in NOT_PER_ARM for k in keys):
        raise InputError(f"methods: the arm {name} sets {', '.join(k for k in keys if k in NOT_PER_ARM)}: the task, "
                         f"method and seed are the sweep's (an arm is {ARM_SYNTAX})")
    if len(set(keys)) < len(keys):
        raise InputError(f"methods: the arm {name} sets a key twice: {item!r}")
    if (overrides or method != name) and (CONF_DIR / "method" / f"{name}.yaml").is_file():
        raise InputError(f"methods: the arm {item!r} is named after the method preset {name}: give it a name of its "
                         f"own")
    return Arm(name, method, tuple(overrides))
