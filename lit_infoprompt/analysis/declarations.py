"""What the declared experiments ask of the archive: ``Declared`` is one experiment file (the typed
``lit_infoprompt.experiment.Experiment`` itself, not a copy of its fields) with what the archive and the git history
say of it (made by ``sweep.reporting`` from ``conf/experiment/``, or by hand by a researcher with their own
folder), and ``lacking`` says what the archived comparison of its name does not hold yet (not run, an arm without
runs, seeds short, runs of other steps), with the plan's estimate of what the missing runs cost where one was
made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from lit_infoprompt.experiment import Experiment

MAIN_CLAIMS = ("convergence", "accuracy")


@dataclass
class Declared:
    experiment: Experiment
    plan: Optional[dict] = None  # runs wanted, done, to_train, seconds, unknown, basis, device; or error
    rates_on_own_seeds: bool = False  # its seeds chose its rates (a grid, or rates_from an experiment sharing seeds)
    declared_before_runs: Optional[bool] = None  # its file's first commit precedes every run (None: cannot tell)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def kind(self) -> str:
        """compare | robustness: where its comparison is archived."""
        return self.experiment.folder_kind

    @property
    def task(self) -> str:
        """The task and split as the report names them: "sst2 budget 64"."""
        return f"{self.experiment.task} {self.experiment.split_words}"

    @property
    def arms(self) -> List[str]:
        """The arms' names, the baseline first."""
        return [a.name for a in self.experiment.arm_list()]

    @property
    def evidence(self) -> str:
        """found (the seeds that chose the rate), declared replication (rate fixed elsewhere, file committed before
        its runs, seeds of its own) or held-out seeds (rate fixed elsewhere, file written after its runs)."""
        if self.rates_on_own_seeds:
            return "found"
        return "declared replication" if self.declared_before_runs else "held-out seeds"

    @property
    def command(self) -> str:
        return f"make experiment E={'robustness/' if self.kind == 'robustness' else ''}{self.name}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def lacking(d: Declared, summary: Optional[dict]) -> List[str]:
    """What the archived summary.json of ``d``'s name (None: nothing archived) lacks against its file."""
    if summary is None:
        return ["not run yet"]
    out = []
    if summary.get("steps") != d.experiment.steps:
        out.append(f"its runs trained {summary.get('steps')} steps, the file says {d.experiment.steps}")
    methods = summary["methods"]
    absent = [a for a in d.arms if a not in methods]
    if absent:
        out.append(f"no runs of {', '.join(absent)}")
    for arm in (a for a in d.arms if a in methods):
        if d.kind == "compare":
            short = sorted(set(d.experiment.seeds) - set(methods[arm]["seeds"]))
            if short:
                out.append(f"{arm} lacks seed{'s' if len(short) > 1 else ''} {', '.join(map(str, short))}")
            continue
        cells = methods[arm]["per_init"]
        wanted = len(d.experiment.seeds)
        short = [f"{init} ({cells[init]['n'] if init in cells else 0} of {wanted})" for init in d.experiment.inits
                 if cells.get(init, {}).get("n", 0) < wanted]
        if short:
            out.append(f"{arm} has fewer seeds than the file's at {', '.join(short)}")
    return out


def plan_words(plan: Optional[dict]) -> str:
    if not plan:
        return ""
    if plan.get("error"):
        return f" (no plan: {plan['error']})"
    text = f"; {plan['to_train']} of {plan['wanted']} runs to train"
    if plan["to_train"] and plan.get("seconds") is not None:
        text += f", about {hours(plan['seconds'])} in one process on {plan['device']} ({plan['basis']})"
    elif plan["to_train"]:
        text += f", no estimate ({plan['basis']})"
    return text + (f" and {plan['unknown']} without one" if plan.get("unknown") else "")


def lacking_lines(declared: Sequence[Declared], summaries: Dict[Tuple[str, str], dict]) -> List[str]:
    """One line per declared experiment that lacks something (``summaries``: {(kind, name): summary.json} of the
    archive), with its command; empty when the archive holds every experiment in full."""
    lines = []
    for d in declared:
        gaps = lacking(d, summaries.get((d.kind, d.name)))
        if gaps:
            lines.append(f"- `{d.name}` ({d.kind}: {d.task}, {d.experiment.steps} steps, arms {', '.join(d.arms)}, "
                         f"{len(d.experiment.seeds)} seeds): {'; '.join(gaps)}{plan_words(d.plan)}; run it: `{d.command}`.")
    return lines
