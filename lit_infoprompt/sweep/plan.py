"""What an experiment would train, and how long that takes, without training and without importing torch.

``plan`` lists the experiment's runs as the grid would make them (the same ``grid_jobs``, the same configs with
``model.name=auto`` and ``trainer.precision=auto`` resolved as a run resolves them), and looks each one up where
the grid looks (``runs/``, then the archive's finished runs) by its experiment key. The runs still to train get an
estimate: the median recorded seconds of finished runs of the same task, split, method preset, steps and device;
where there are none, of the same task, split, steps and device with any method (InfoPrompt and prompt tuning cost
the same per step within 2.3 %, ``make bench``); where there are none either, no estimate, and the plan says so.
``backtest`` checks the estimate on the archive: each archived experiment's runs estimated from the other
experiments' runs only.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from lit_infoprompt.analysis.declarations import hours
from lit_infoprompt.analysis.runs import experiment_key, find_run, saved_dict
from lit_infoprompt.config import GPU_ACCELERATORS
from lit_infoprompt.devices import gpu_names, planned_on_gpu
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import Experiment
from lit_infoprompt.sweep.args import chosen_rates, sweep_jobs
from lit_infoprompt.sweep.experiment_runs import experiment_sweep, own_runs
from lit_infoprompt.sweep.grid import Job, job_config, on_one_gpu


@dataclass
class PlannedRun:
    arm: str
    seed: int
    prompt_lr: Optional[float]
    init: Optional[str] = None
    run_dir: Optional[str] = None  # where it is, when done
    estimate: Optional[float] = None  # seconds, when to train
    basis: str = ""  # which runs the estimate comes from


@dataclass
class Plan:
    experiment: Experiment
    device: str
    runs: List[PlannedRun] = field(default_factory=list)
    rates: str = ""  # how each arm's rate is set
    machine: List[str] = field(default_factory=list)  # the command line's settings (data.dir=, model.name=, ...)

    @property
    def done(self) -> List[PlannedRun]:
        return [r for r in self.runs if r.run_dir]

    @property
    def to_train(self) -> List[PlannedRun]:
        return [r for r in self.runs if not r.run_dir]


def here_device(gpu: bool) -> str:
    """The device name a run here would record (``provenance.device_name``) without importing torch: the first
    GPU's name when the runs use a GPU, else the CPU's model."""
    if gpu:
        return (gpu_names() or ["a GPU"])[0]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


class RunIndex:
    """The finished and unfinished runs under the roots, read once: their experiment keys and recorded seconds."""

    def __init__(self, roots: List[Path]):
        self.roots = roots
        self._keys: Dict[Path, dict] = {}
        self.finished: List[dict] = []  # summaries of finished runs (with "dir")
        for root in roots:
            for summary in sorted(root.glob("*/*/*/seed*/version_*/summary.json")):
                try:
                    record = json.loads(summary.read_text())
                except (OSError, ValueError):
                    continue
                record["dir"] = str(summary.parent)
                self.finished.append(record)

    def key(self, config_file: Path) -> dict:
        if config_file not in self._keys:
            self._keys[config_file] = experiment_key(saved_dict(config_file))
        return self._keys[config_file]

    def find(self, config, prefer: Sequence[str] = ()) -> Optional[Path]:
        """A finished run of this experiment key: ``analysis.runs.find_run`` over these roots, finished runs only,
        each saved config read once."""
        return find_run(config, prefer, roots=self.roots, key=self.key, finished_only=True)[0]


def cost_key(record: dict) -> Tuple:
    """What a run's seconds depend on: task, split, method preset, steps, device and backbone (its folder's or hub
    id's last part; the arm's own overrides, e.g. prompt.init, do not change the cost of a step)."""
    env = record.get("environment") or {}
    return (record.get("task"), record.get("protocol"), record.get("shots") or record.get("split_size"),
            record.get("method"), record.get("steps"), env.get("device"), backbone_name(record.get("backbone")))


def backbone_name(name) -> Optional[str]:
    return Path(str(name)).name if name else None


# How close a finished run must be to stand for a run to train: (what it shares, the fields of ``cost_key`` that
# must be equal). The looser matches scale the recorded seconds by steps (per-step cost; evaluation included).
# Device and backbone always match: a run of another backbone or device says nothing of this one's seconds.
MATCHES = [("same task, split, method, steps, device and backbone", (0, 1, 2, 3, 4, 5, 6)),
           ("same task, split, steps, device and backbone, any method", (0, 1, 2, 4, 5, 6)),
           ("same task, split, method, device and backbone, scaled to the steps", (0, 1, 2, 3, 5, 6)),
           ("same task, device and backbone, any split, method or steps, scaled to the steps", (0, 5, 6))]


def estimate_seconds(want: Tuple, records: List[dict]) -> Tuple[Optional[float], List[dict], str]:
    """(median seconds, the runs it comes from, how they match) for a cost key, from ``records``: the closest
    match of ``MATCHES`` that has any run."""
    timed = [r for r in records if r.get("seconds") and r.get("steps")]
    for words, fields in MATCHES:
        same = [r for r in timed if all(cost_key(r)[i] == want[i] for i in fields)]
        if same:
            per_step = 4 not in fields
            value = statistics.median(r["seconds"] / r["steps"] * want[4] if per_step else r["seconds"] for r in same)
            return value, same, words
    return None, [], "no finished run of this task, device and backbone"


def jobs_of(e: Experiment, extra: List[str], out_dir: str, archive: Optional[str]) -> Tuple[List[Job], str]:
    """The experiment's runs as its grid makes them (``sweep.args.sweep_jobs`` of ``experiment_sweep``), and how
    their rates are set."""
    sweep = experiment_sweep(e, list(extra), out_dir, archive, rates_needed=False)
    arms = sweep.arms
    rates: Optional[Dict[str, Optional[float]]] = None
    if e.rates_from:
        if sweep.prompt_lr_from is None:
            rates = {a.name: None for a in arms}
            how = f"the rates {e.rates_from} chooses on dev (not run yet: counted once per arm and seed)"
        else:
            rates = chosen_rates(sweep.prompt_lr_from, [a.name for a in arms], {a.name: a.method for a in arms})
            how = f"chosen on dev in {e.rates_from}: " + ", ".join(f"{a} {lr:g}" for a, lr in rates.items())
    else:
        how = (f"a grid of {', '.join(f'{lr:g}' for lr in sweep.prompt_lrs)}, chosen on dev per arm" if e.prompt_lrs
               else "each arm's configured rate")
    jobs = sweep_jobs(sweep, rates)
    if sweep.launch.launcher != "submitit" and jobs and gpu_names() and \
            str(jobs[0].config.trainer.accelerator).lower() in GPU_ACCELERATORS:
        jobs = [on_one_gpu(j) for j in jobs]
    return jobs, how


LAUNCH_PREFIXES = ("workers=", "threads=", "launcher=", "submitit_cluster=", "slurm_")


def plan(e: Experiment, extra: List[str] = (), out_dir: str = "runs", archive: Optional[str] = "docs/results",
         index: Optional[RunIndex] = None, device: Optional[str] = None) -> Plan:
    """Every run the experiment wants: done (where), or to train (with an estimate and where it comes from).
    ``device``: the device the estimate is for (default: this machine's, as a run here would record it)."""
    jobs, how = jobs_of(e, list(extra), out_dir, archive)
    roots = [Path(out_dir)] + ([Path(archive) / "runs"] if archive else [])
    index = index or RunIndex(roots)
    result, prefer = None, own_runs(e, out_dir, archive)
    for job in jobs:
        config = job_config(job, planned=True)
        init = config.prompt.init if e.kind == "robustness" else None
        if result is None:
            result = Plan(e, device or here_device(planned_on_gpu(config.trainer.accelerator)), rates=how,
                          machine=list(extra))
        run = PlannedRun(job.label, job.seed, job.prompt_lr, init)
        found = index.find(config, prefer) if job.prompt_lr is not None or not e.rates_from else None
        if found is not None:
            run.run_dir = str(found)
        else:
            want = (config.task.name, config.data.protocol,
                    config.data.shots if config.data.protocol == "per_class" else config.data.budget,
                    config.method.name, config.trainer.max_steps, result.device, backbone_name(config.model.name))
            run.estimate, source, run.basis = estimate_seconds(want, index.finished)
            if source:
                run.basis += f": {len(source)} runs, e.g. {source[0]['dir']}"
        result.runs.append(run)
    return result


def plan_text(p: Plan) -> str:
    """The plan as the console prints it."""
    e = p.experiment
    todo = p.to_train
    known = [r.estimate for r in todo if r.estimate is not None]
    lines = [f"experiment {e.name} ({e.kind}): {e.task} {e.split}, {e.steps} steps, arms "
             f"{', '.join(a.item for a in e.arm_list())}, seeds {' '.join(map(str, e.seeds))}",
             f"  prompt lr: {p.rates}",
             f"  runs wanted {len(p.runs)}, done {len(p.done)}, to train {len(todo)}"]
    if todo:
        total = sum(known)
        unknown = len(todo) - len(known)
        lines.append(f"  estimate on {p.device}: {hours(total)} for {len(known)} runs in one process"
                     + (f"; {unknown} runs without an estimate" if unknown else ""))
        bases = sorted({r.basis for r in todo})
        lines += [f"    from {b}" for b in bases[:4]]
        lines.append("  to train: " + ", ".join(f"{r.arm}/seed{r.seed}" + (f"/lr{r.prompt_lr:g}" if r.prompt_lr else "")
                                                + (f"/{r.init}" if r.init else "") for r in todo[:12])
                     + (f" ... ({len(todo) - 12} more)" if len(todo) > 12 else ""))
    command = run_command(p)
    lines.append(f"  run it: {command}" if todo else f"  nothing to train: {command} only writes the comparison")
    return "\n".join(lines)


def run_command(p: Plan) -> str:
    """``make experiment E=<name>`` with the backbone and data the plan was made with (``MODEL=``, ``DATA_DIR=``
    when ``model.name=``/``data.dir=`` were on its command line): the runs it counts as done are looked up with
    them. E names the file as make finds it: relative to conf/experiment/ (``robustness/<name>``), else its path."""
    import shlex

    from lit_infoprompt.experiment import EXPERIMENTS_DIR

    e = p.experiment
    name = e.name
    if e.path:
        path = Path(e.path).resolve()
        inside = path.parent == EXPERIMENTS_DIR.resolve() or EXPERIMENTS_DIR.resolve() in path.parents
        name = str(path.relative_to(EXPERIMENTS_DIR.resolve()).with_suffix("")) if inside else e.path
    words = [f"make experiment E={shlex.quote(name)}"]
    for key, variable in (("model.name", "MODEL"), ("data.dir", "DATA_DIR")):
        value = next((a.partition("=")[2] for a in reversed(p.machine) if a.startswith(key + "=")), None)
        if value:
            words.append(f"{variable}={shlex.quote(value)}")
    return " ".join(words)


def backtest(experiments: List[Experiment], archive: Path) -> List[dict]:
    """For each archived experiment: its runs' recorded seconds against the estimate from the other experiments'
    runs only (a run shared by two experiments is left out of both's sources)."""
    records = RunIndex([archive / "runs"]).finished
    by_dir = {str(Path(r["dir"]).relative_to(archive)): r for r in records}
    rows = []
    for e in experiments:
        spec_file = archive / ("compare" if e.kind == "compare" else "robustness") / e.name / "spec.json"
        if not spec_file.is_file():
            continue
        own = set(json.loads(spec_file.read_text())["runs"])
        others = [r for d, r in by_dir.items() if d not in own]
        errors = []
        for d in own:
            record = by_dir.get(d)
            if record is None or not record.get("seconds"):
                continue
            guess, _, _ = estimate_seconds(cost_key(record), others)
            if guess is not None:
                errors.append((guess - record["seconds"]) / record["seconds"])
        total_true = sum(by_dir[d]["seconds"] for d in own if d in by_dir)
        total_guess = sum((estimate_seconds(cost_key(by_dir[d]), others)[0] or 0) for d in own if d in by_dir)
        rows.append({"experiment": e.name if e.kind == "compare" else f"robustness/{e.name}", "runs": len(own), "estimated": len(errors),
                     "median_abs_error": statistics.median(abs(x) for x in errors) if errors else None,
                     "total_error": (total_guess - total_true) / total_true if errors and total_true else None})
    if not rows:
        raise InputError(f"no archived experiment under {archive} to back-test")
    return rows
