"""``make report`` over the declared experiments: every file of the experiments folder (``conf/experiment/*.yaml``
and ``robustness/*.yaml``, or ``EXPERIMENTS=<folder>``) read into ``analysis.declarations.Declared``; for each one
the archive does not hold in full, the plan of its missing runs (``sweep.plan``), made from the archive alone and
for the device most archived runs recorded, so the committed report does not depend on the machine that writes
it; then ``analysis.report.write_report``. Adding an experiment is adding a file: it shows up as not run, with its plan.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence

from lit_infoprompt.analysis.declarations import Declared, lacking
from lit_infoprompt.errors import InputError
from lit_infoprompt.provenance import git
from lit_infoprompt.experiment import EXPERIMENTS_DIR, load_experiment
from lit_infoprompt.sweep.plan import RunIndex, plan


def experiment_files(folder: Path) -> List[Path]:
    if not folder.is_dir():
        raise InputError(f"no experiments folder {folder} (EXPERIMENTS=<folder of <name>.yaml files>)")
    by_name = lambda paths: sorted(paths, key=lambda p: p.stem)  # noqa: E731 - "a" before "a-b"
    return by_name(folder.glob("*.yaml")) + by_name((folder / "robustness").glob("*.yaml"))


def common_device(index: RunIndex) -> Optional[str]:
    """The device most archived runs recorded (ties: the first by name)."""
    devices = Counter((r.get("environment") or {}).get("device") for r in index.finished)
    devices.pop(None, None)
    return min(devices, key=lambda d: (-devices[d], d)) if devices else None


def run_commits(archive: Path, kind: str, name: str) -> Optional[List[str]]:
    """The code commit each archived run of the experiment recorded (its saved config's ``code.commit``); None when
    a run recorded none or the experiment is not archived."""
    from lit_infoprompt.config import load_saved

    spec = archive / kind / name / "spec.json"
    if not spec.is_file():
        return None
    commits = set()
    for run in json.loads(spec.read_text())["runs"]:
        commit = load_saved(archive / run / "config.yaml").code.commit
        if not commit:
            return None
        commits.add(str(commit))
    return sorted(commits)


def declared_before_runs(path: Path, archive: Path, kind: str, name: str) -> Optional[bool]:
    """Whether the experiment file's first commit is an ancestor of (or is) the commit every one of its archived
    runs was made from: the git history proves the file, its seeds and arms existed before any run. The proof is
    kept beside the archived comparison (``declared.json``: the file's first commit, the runs' commits, the
    answer), so a copy without the history (a shallow clone, a tarball) reads the same answer. None where neither
    the history nor a kept proof can tell."""
    proof = archive / kind / name / "declared.json"
    commits = run_commits(archive, kind, name)
    first = git("log", "--format=%H", "--diff-filter=A", "--", str(path.resolve()))
    if commits and first:
        first = first.splitlines()[-1]
        answer = all(git("merge-base", "--is-ancestor", first, c) is not None for c in commits)
        text = json.dumps({"file": f"{path.parent.name}/{path.name}", "file_first_commit": first, "run_commits": commits,
                           "declared_before_runs": answer}, indent=2) + "\n"
        if not proof.is_file() or proof.read_text() != text:
            proof.write_text(text)
        return answer
    return json.loads(proof.read_text())["declared_before_runs"] if proof.is_file() else None


def declarations(folder: Path, archive: Path) -> List[Declared]:
    """Each experiment file as ``Declared``, with the plan of what the archive lacks of it."""
    out, index, device = [], None, None
    loaded = {p: load_experiment(str(p)) for p in experiment_files(folder)}
    seeds_of = {e.name: set(e.seeds) for e in loaded.values()}
    for path, e in loaded.items():
        kind = e.folder_kind
        own = len(e.prompt_lrs) > 1 or bool(e.rates_from and set(e.seeds) & seeds_of.get(e.rates_from, set(e.seeds)))
        d = Declared(e, rates_on_own_seeds=own)
        if e.claims:
            d.declared_before_runs = declared_before_runs(path, archive, kind, e.name)
        summary_file = archive / kind / e.name / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
        if lacking(d, summary):
            if index is None:
                index = RunIndex([archive / "runs"])
                device = common_device(index)
            try:  # the archive alone: runs/ of this machine does not change the committed report
                p = plan(e, [], out_dir=os.devnull, archive=str(archive), index=index, device=device)
            except InputError as err:
                d.plan = {"error": str(err)}
            else:
                todo = p.to_train
                known = [r.estimate for r in todo if r.estimate is not None]
                d.plan = {"wanted": len(p.runs), "done": len(p.done), "to_train": len(todo),
                          "seconds": sum(known) if known else None, "unknown": len(todo) - len(known) if known else 0,
                          "device": p.device, "basis": "; ".join(sorted({r.basis.split(":")[0] for r in todo}))}
        out.append(d)
    return out


def report(runs_dir: str = "runs", out: str = "docs/RESULTS.md", archive: Optional[str] = None,
           experiments: Optional[str] = None, replace: Sequence[str] = ()) -> Path:
    """``analysis.report.write_report`` with the declared experiments of ``experiments`` (default conf/experiment)."""
    from lit_infoprompt.analysis.report import archive_sweeps, write_report

    folder = Path(experiments) if experiments else EXPERIMENTS_DIR
    archive_root = Path(archive) if archive else Path(out).parent / "results"
    experiment_files(folder)  # a missing folder: one error line before anything is archived
    archive_sweeps(Path(runs_dir), archive_root, folder, replace)  # first, so the plans see what it adds
    return write_report(runs_dir, out, archive, str(folder), replace, declared=declarations(folder, archive_root),
                        archived=True)
