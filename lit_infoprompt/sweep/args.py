"""What a sweep command was asked for: ``compare`` and ``robustness`` share the parsing of methods, seeds, targets,
margins, prompt learning rates and how the grid is launched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from lit_infoprompt.config import Config, processes
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep.grid import Launch

DEFAULT_SEEDS = [13, 21, 42, 87, 100]


@dataclass
class Sweep:
    """What a sweep command was asked for (``compare`` and ``robustness`` share the parsing)."""

    methods: List[str] = field(default_factory=lambda: ["prompt_tuning", "infoprompt"])
    seeds: List[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    target: Optional[float] = None
    margin: Optional[float] = None  # equivalence margin of a score difference (None: power.METRIC_MARGIN)
    prompt_lrs: List[Optional[float]] = field(default_factory=lambda: [None])  # [None]: the configured rate
    prompt_lr_from: Optional[str] = None  # a comparison folder whose grid chose each method's prompt lr
    allow_mixed_versions: bool = False
    name: Optional[str] = None
    launch: Launch = field(default_factory=Launch)  # workers=, threads=, launcher=, submitit_cluster=, slurm_*=
    overrides: List[str] = field(default_factory=list)


def parse_sweep(args: List[str]) -> Sweep:
    """``methods=[a,b] seeds=[13,21] target=<score> margin=<score> prompt_lrs=[1e-3,1e-2] prompt_lr_from=<folder>
    allow_mixed_versions=true name=<folder> key=value ...``."""
    sweep = Sweep()
    for item in args:
        key, _, value = item.partition("=")
        if key in ("methods", "seeds", "prompt_lrs"):
            values = [v for v in value.strip("[]").replace(",", " ").split() if v]
            try:
                if key == "methods":
                    sweep.methods = values
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
        elif key in LAUNCH_KEYS:
            parse_launch(sweep.launch, key, value)
        elif key == "name":
            if not value or "/" in value or value.startswith(".") or sweep.name is not None:
                raise InputError(f"name: expected one folder name (no '/'), got {value!r}")
            sweep.name = value
        else:
            sweep.overrides.append(item)
    if len(sweep.methods) < 1 or not sweep.seeds:
        raise InputError("compare needs at least one method and one seed")
    given = [what for what, on in (("prompt_lrs=[...]", sweep.prompt_lrs != [None]),
                                   ("prompt_lr_from", sweep.prompt_lr_from is not None),
                                   ("optim.prompt_lr", sets_prompt_lr(sweep.overrides))) if on]
    if len(given) > 1:
        raise InputError(f"give the prompt learning rate one way, not as {' and '.join(given)}")
    return sweep


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


def chosen_rates(folder: str, methods: List[str]) -> Dict[str, float]:
    """Each method's prompt lr chosen on dev by a ``compare`` grid (its summary.json); a method the grid did not
    cover (InfoPrompt's ablations) takes the rate chosen for ``infoprompt``."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"prompt_lr_from: no comparison at {path} (run `make compare ... LRS=...` first)")
    choice = json.loads(path.read_text()).get("prompt_lr_choice") or {}
    fallback = choice.get(ABLATION_RATE_FROM)
    missing = [m for m in methods if m not in choice and fallback is None]
    if missing:
        raise InputError(f"prompt_lr_from: {path} chose no prompt lr for {', '.join(missing)} (was it run with LRS?)")
    return {m: (choice.get(m) or fallback)["chosen"] for m in methods}
