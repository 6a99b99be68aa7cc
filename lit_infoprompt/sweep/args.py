"""What a sweep command was asked for: ``compare`` and ``robustness`` share the parsing of methods, seeds, targets,
margins, prompt learning rates and how the grid is launched.

An item of ``methods=[...]`` is an **arm**: a method preset (``prompt_tuning``: an arm named after it), or
``<arm name>=<preset>+<key>=<value>[+<key>=<value>...]``, the preset with config overrides of its own, e.g.
``pt_lw=prompt_tuning+prompt.init=label_words`` or ``gamma1=infoprompt+method.head_weight=1`` (an override of
``method.*`` wins over the preset's file, as on the command line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from lit_infoprompt.config import Config, load_config, processes
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import INITS, Arm, parse_arm
from lit_infoprompt.sweep.grid import Job, Launch, grid_jobs

DEFAULT_SEEDS = [13, 21, 42, 87, 100]


@dataclass
class Sweep:
    """What a sweep runs: ``parse_sweep`` makes it from the ``compare``/``robustness`` command line,
    ``sweep.experiment_runs.experiment_sweep`` from an ``Experiment`` (typed, no text in between); ``sweep_jobs``
    makes its runs."""

    arms: List[Arm] = field(default_factory=lambda: [Arm("prompt_tuning", "prompt_tuning"),
                                                     Arm("infoprompt", "infoprompt")])  # the baseline first
    seeds: List[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    target: Optional[float] = None
    margin: Optional[float] = None  # equivalence margin of a score difference (None: power.METRIC_MARGIN)
    prompt_lrs: List[Optional[float]] = field(default_factory=lambda: [None])  # [None]: the configured rate
    prompt_lr_from: Optional[str] = None  # a comparison folder whose grid chose each method's prompt lr
    allow_mixed_versions: bool = False
    name: Optional[str] = None
    launch: Launch = field(default_factory=Launch)  # workers=, threads=, launcher=, submitit_cluster=, slurm_*=
    overrides: List[str] = field(default_factory=list)  # config key=value text for every run (the arms' come on top)
    values: Dict[str, object] = field(default_factory=dict)  # typed settings for every run (an experiment's)
    source: Optional[str] = None  # the experiment file the sweep was made from (None: the command line)
    origins: Dict[str, str] = field(default_factory=dict)  # override -> where it was written (error lines)
    inits: Optional[List[str]] = None  # robustness: the initialisations every arm runs under

    @property
    def methods(self) -> List[str]:
        """The arms' names, in order."""
        return [a.name for a in self.arms]


def sweep_jobs(sweep: Sweep, rates: Optional[Dict[str, Optional[float]]] = None) -> List[Job]:
    """Every run of the sweep, each config composed once: (initialisation x) arm x prompt lr x seed. ``rates``:
    each arm's one rate (chosen on dev elsewhere; None: the configured one), else the sweep's ``prompt_lrs``."""
    jobs = []
    for init in sweep.inits or [None]:
        values = {**sweep.values, **({"prompt.init": init} if init else {})}
        for arm in sweep.arms:
            lrs = [rates[arm.name]] if rates is not None else sweep.prompt_lrs
            jobs += grid_jobs(sweep.overrides, [arm], sweep.seeds, lrs, values=values, origins=sweep.origins)
    return jobs


def parse_sweep(args: List[str], whole: bool = True) -> Sweep:
    """``methods=[a,b] seeds=[13,21] target=<score> margin=<score> prompt_lrs=[1e-3,1e-2] prompt_lr_from=<folder>
    allow_mixed_versions=true name=<folder> key=value ...``."""
    sweep = Sweep()
    for item in args:
        key, _, value = item.partition("=")
        if key in ("methods", "seeds", "prompt_lrs"):
            values = list_items(value)
            try:
                if key == "methods":
                    sweep.arms = [parse_arm(v) for v in values]
                elif key == "seeds":
                    sweep.seeds = [int(v) for v in values]
                else:
                    sweep.prompt_lrs = sorted({float(v) for v in values}) or [None]
            except ValueError:
                raise InputError(f"{key}: expected a list of numbers, got {value!r}") from None
            if key == "prompt_lrs" and any(lr is not None and lr <= 0 for lr in sweep.prompt_lrs):
                raise InputError(f"prompt_lrs: learning rates must be positive, got {value!r}")
        elif key in ("target", "margin"):
            try:
                number = float(value)
            except ValueError:
                raise InputError(f"{key}: expected a score, got {value!r}") from None
            if key == "margin" and not 0 < number < 1:
                raise InputError(f"margin: expected a score difference between 0 and 1, got {value!r}")
            setattr(sweep, key, number)
        elif key == "allow_mixed_versions":
            if value.lower() not in ("true", "false"):
                raise InputError(f"allow_mixed_versions: expected true or false, got {value!r}")
            sweep.allow_mixed_versions = value.lower() == "true"
        elif key == "prompt_lr_from":
            sweep.prompt_lr_from = value
        elif key == "inits":
            sweep.inits = list_items(value)
            if not sweep.inits or any(i not in INITS for i in sweep.inits):
                raise InputError(f"inits: expected some of {', '.join(INITS)}, got {value!r}")
        elif key in ("seed", "method"):
            raise InputError(f"{key}={value}: a sweep gives every run its {key} ({key}s=[...]), not one for all")
        elif key in LAUNCH_KEYS:
            parse_launch(sweep.launch, key, value)
        elif key == "name":
            if not value or "/" in value or value.startswith(".") or sweep.name is not None:
                raise InputError(f"name: expected one folder name (no '/'), got {value!r}")
            sweep.name = value
        else:
            sweep.overrides.append(item)
    if whole:  # else: only the command line's part of a sweep an experiment file makes (its machine settings)
        check_sweep(sweep)
    return sweep


def check_sweep(sweep: Sweep) -> None:
    """What no sweep may be, however it was made: without arms or seeds, with two arms of one name, with a key set
    both for every arm and by one arm, or with its prompt learning rate given two ways."""
    if not sweep.arms or not sweep.seeds:
        raise InputError("compare needs at least one method and one seed")
    check_arms(sweep)
    arm_overrides = [o for arm in sweep.arms for o in arm.overrides]
    given = [what for what, on in (("prompt_lrs=[...]", sweep.prompt_lrs != [None]),
                                   ("prompt_lr_from", sweep.prompt_lr_from is not None),
                                   ("optim.prompt_lr", sets_prompt_lr(sweep.overrides + arm_overrides))) if on]
    if len(given) > 1:
        raise InputError(f"give the prompt learning rate one way, not as {' and '.join(given)}")


def check_arms(sweep: Sweep) -> None:
    """Arm names are unique, and no arm sets a key the whole sweep sets too."""
    repeated = sorted({m for m in sweep.methods if sweep.methods.count(m) > 1})
    if repeated:
        raise InputError(f"methods: the arm name(s) {', '.join(repeated)} are given twice: every arm needs a name "
                         f"of its own")
    wide = {o.partition("=")[0] for o in sweep.overrides}
    for arm in sweep.arms:
        both = [o.partition("=")[0] for o in arm.overrides if o.partition("=")[0] in wide]
        if both:
            raise InputError(f"methods: the arm {arm.name} sets {', '.join(both)}, which the sweep sets for every "
                             f"arm too: set it in one place")


def arm_configs(sweep: Sweep) -> Dict[str, Config]:
    """Each arm's config (the sweep's overrides, its preset, its own overrides): fails early, with one line, on a
    bad override of any arm (``sweep.before_runs.check_before_runs`` checks the model and the data too)."""
    return load_arms(sweep.arms, sweep.overrides, values=sweep.values)


def load_arms(arms: Sequence[Arm], overrides: Sequence[str] = (), *, source: Optional[str] = None,
              from_source: Sequence[str] = (), values: Optional[Dict[str, object]] = None) -> Dict[str, Config]:
    """Each arm's config (the sweep's overrides, its preset, its own overrides); a bad one is one line that names
    whose setting it is: the arm's (``the arm <name>:``, or ``<file>: arms.<name>:``), the file's or the command
    line's."""
    origins = {o: str(source) for o in from_source} if source else {}
    configs = {}
    for arm in arms:
        mine = {o: "'" + "+".join([arm.method, *arm.overrides]) + "'" for o in arm.overrides} if source else {}
        shared = [*overrides, f"method={arm.method}"]
        try:
            configs[arm.name] = load_config([*shared, *arm.overrides], origins={**origins, **mine}, values=values,
                                            values_from=str(source or "the sweep"))
        except InputError as err:
            if arm.overrides and not _fails(shared, origins, values):  # without its own overrides the arm loads: theirs
                where = f"{source}: arms.{arm.name}" if source else f"the arm {arm.name}"
                raise InputError(f"{where}: {err}") from None
            # the file's own settings, which fail without the command line's too
            if source and str(source) not in str(err) and _fails([*from_source, f"method={arm.method}"], origins,
                                                                  values):
                raise InputError(f"{source}: {err}") from None
            raise
    return configs


def _fails(overrides: Sequence[str], origins: dict, values: Optional[Dict[str, object]] = None) -> bool:
    try:
        load_config(list(overrides), origins=origins, values=values)
    except InputError:
        return True
    return False


def list_items(value: str) -> List[str]:
    """``[a,b]``, ``a,b`` or ``a b`` as ``["a", "b"]``: how the command line writes a list."""
    return [v for v in value.strip("[]").replace(",", " ").split() if v]


LAUNCH_KEYS = ("workers", "threads", "launcher", "submitit_cluster", "slurm_partition", "slurm_gpus", "slurm_cpus",
               "slurm_time", "slurm_mem_gb", "slurm_array")


def parse_launch(launch: Launch, key: str, value: str) -> None:
    """workers=N|auto threads=N launcher=local|submitit submitit_cluster=local|slurm|debug slurm_partition=<name>
    slurm_gpus=N slurm_cpus=N slurm_time=<minutes> slurm_mem_gb=N slurm_array=<max jobs at once>."""
    if key == "launcher":
        if value not in ("local", "submitit"):
            raise InputError(f"launcher: expected local or submitit, got {value!r}")
        launch.launcher = value
    elif key == "submitit_cluster":
        if value not in ("local", "slurm", "debug"):
            raise InputError(f"submitit_cluster: expected local, slurm or debug, got {value!r}")
        launch.submitit_cluster = value
    elif key == "slurm_partition":
        launch.slurm["partition"] = value
    elif key == "workers" and value == "auto":
        launch.workers = "auto"
    else:
        try:
            number = float(value) if key == "slurm_mem_gb" else int(value)
        except ValueError:
            raise InputError(f"{key}: expected a number, got {value!r}") from None
        if number < (0 if key == "slurm_gpus" else 1):
            raise InputError(f"{key}: expected a positive number, got {value!r}")
        if key in ("workers", "threads"):
            setattr(launch, key, number)
        else:
            launch.slurm[key.removeprefix("slurm_")] = number


def refuse_ddp(config: Config) -> None:
    """A sweep trains many short runs in one command: Lightning's DDP launcher would start every worker on the
    whole sweep. Spread the grid over the devices with workers instead (one run per device)."""
    if processes(config) > 1:
        raise InputError(f"a sweep runs one process per run, not DDP over {processes(config)} processes "
                         f"(trainer.devices x trainer.num_nodes): use WORKERS=N (workers=N) to put the grid's runs on "
                         f"N devices, or make train for one run on several GPUs")


def sets_prompt_lr(overrides: List[str]) -> bool:
    return any(o.startswith("optim.prompt_lr=") for o in overrides)


ABLATION_RATE_FROM = "infoprompt"  # a method the grid did not cover runs at the rate chosen for this one


def chosen_rates(folder: str, methods: List[str], presets: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Each arm's prompt lr chosen on dev by a ``compare`` grid (its summary.json, keyed on arm names); an arm the
    grid did not cover takes the rate chosen for its preset (``presets``: arm name -> preset), else the rate
    chosen for ``infoprompt`` (InfoPrompt's ablations)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"prompt_lr_from: no comparison at {path} (run `make compare ... LRS=...` first)")
    choice = json.loads(path.read_text()).get("prompt_lr_choice") or {}
    presets = presets or {}
    source = {m: next((k for k in (m, presets.get(m), ABLATION_RATE_FROM) if k in choice), None) for m in methods}
    missing = [m for m in methods if source[m] is None]
    if missing:
        raise InputError(f"prompt_lr_from: {path} chose no prompt lr for {', '.join(missing)} (was it run with LRS?)")
    return {m: choice[source[m]]["chosen"] for m in methods}
