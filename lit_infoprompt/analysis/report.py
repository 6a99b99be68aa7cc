"""``report``: docs/RESULTS.md generated from committed run files; nothing in it is typed by hand.

Two steps:

1. **Archive.** Every comparison under ``<runs>/compare/*`` and ``<runs>/robustness/*`` (its ``spec.json``) is
   copied into the archive folder (default ``docs/results``): the spec, and for each of its runs the small files
   a report is computed from (config.yaml, split.json, curve.csv, summary.json; never checkpoints) under
   ``<archive>/runs/<task>/<split>/<method>/seed<seed>/version_<N>``. Sweeps made on several machines accumulate
   there, and ``compare`` reuses archived runs.
2. **Report.** Every archived comparison is computed again from its archived runs (the same code as ``compare``:
   tables, paired tests, diagnostics, plots), then RESULTS.md is written from them.

So ``make report`` on a fresh clone (no ``runs/``) reproduces the committed report without training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from lit_infoprompt.analysis.claim_roles import claim_roles
from lit_infoprompt.analysis.claims_report import claims, verdict_rows
from lit_infoprompt.analysis.claims_words import not_clearly_above, task_of
from lit_infoprompt.analysis.declarations import Declared, lacking_lines
from lit_infoprompt.analysis.prose import prose
from lit_infoprompt.analysis.tables import interval_text, plain
from lit_infoprompt.convergence import EARLY_STEP, INERT_FRACTION, SATURATED_FRACTION
from lit_infoprompt.config import CONF_DIR
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import declared_path, is_declared

RUN_FILES = ("config.yaml", "split.json", "curve.csv", "summary.json")

def run_files_equal(a: Path, b: Path) -> bool:
    return all((a / f).is_file() == (b / f).is_file() and (not (a / f).is_file() or
               (a / f).read_bytes() == (b / f).read_bytes()) for f in RUN_FILES)


def archive_run(run_dir: Path, runs_root: Path, archive: Path) -> Path:
    """Copy one finished run's files into the archive; returns its archived folder. A run already archived
    (same files) is not copied again; another run at the same place gets the next free version."""
    run_dir = Path(run_dir)
    if run_dir.resolve().is_relative_to((archive / "runs").resolve()):
        return run_dir.resolve().relative_to(archive.resolve())
    if not (run_dir / "summary.json").is_file():
        raise InputError(f"cannot archive {run_dir}: it has not finished (no summary.json)")
    relative = run_dir.resolve().relative_to(runs_root.resolve())
    parent = archive / "runs" / relative.parent
    target, version = parent / relative.name, 0
    while target.exists() and not run_files_equal(run_dir, target):
        version += 1
        target = parent / f"version_{version}"
    target.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, target / name)
    return target.relative_to(archive)


def archived_path(run_dir: Path, runs_root: Path, archive: Path) -> Optional[str]:
    """Where a finished run already lies in the archive (the same files), without copying; None if it does not."""
    run_dir = Path(run_dir)
    if run_dir.resolve().is_relative_to((archive / "runs").resolve()):
        return str(run_dir.resolve().relative_to(archive.resolve()))
    try:
        relative = run_dir.resolve().relative_to(runs_root.resolve())
    except ValueError:
        return None
    for target in sorted((archive / "runs" / relative.parent).glob("version_*")):
        if run_files_equal(run_dir, target):
            return str(target.relative_to(archive))
    return None


SPEC_KEYS = ("kind", "methods", "arms", "target", "margin", "lr_grid", "rates_from")


def differences(new: dict, old: dict, runs_root: Path, archive: Path) -> List[str]:
    """What tells a comparison under ``runs/`` apart from the archived one of its name: its arms, seeds, steps or
    runs (empty: the same comparison)."""
    what = [k for k in SPEC_KEYS if new.get(k) != old.get(k)]
    mapped = [archived_path(Path(d), runs_root, archive) or f"new:{d}" for d in new["runs"]]
    if sorted(mapped) != sorted(old["runs"]):
        seeds = lambda runs, root: sorted({json.loads((root / d / "summary.json").read_text())["seed"]  # noqa: E731
                                           for d in runs if (root / d / "summary.json").is_file()})
        steps = lambda runs, root: sorted({json.loads((root / d / "summary.json").read_text())["steps"]  # noqa: E731
                                           for d in runs if (root / d / "summary.json").is_file()})
        new_seeds, old_seeds = seeds(new["runs"], Path(".")), seeds(old["runs"], archive)
        new_steps, old_steps = steps(new["runs"], Path(".")), steps(old["runs"], archive)
        what += ([f"seeds {new_seeds} vs {old_seeds}"] if new_seeds != old_seeds else []) + \
                ([f"steps {new_steps} vs {old_steps}"] if new_steps != old_steps else []) + \
                [f"{len(new['runs'])} runs vs {len(old['runs'])}"]
    return what


def archive_sweeps(runs_root: Path, archive: Path, experiments: Optional[Path] = None,
                   replace: Sequence[str] = (), note=print) -> List[str]:
    """Copy every comparison and robustness sweep under ``runs_root`` (with its runs) into the archive.

    Published evidence is append-only: only a declared experiment (a file of ``experiments``; None: every
    comparison, as before experiment files) is archived, and one that differs from the archived comparison of its
    name (arms, seeds, steps, runs) is refused, in one line naming both, unless ``replace`` names it. Everything is
    checked before anything is written."""
    todo = []
    for kind in ("compare", "robustness"):
        for spec_path in sorted((runs_root / kind).glob("*/spec.json")):
            name, spec = spec_path.parent.name, json.loads(spec_path.read_text())
            if experiments is not None and not is_declared(kind, name, experiments):
                note(f"not archived: {spec_path.parent} is no declared experiment (no "
                     f"{declared_path(kind, name, experiments)}); declare it there to publish it")
                continue
            old_path = archive / kind / name / "spec.json"
            if old_path.is_file():
                changed = differences(spec, json.loads(old_path.read_text()), runs_root, archive)
                if not changed:
                    continue
                if name not in replace:
                    raise InputError(f"{spec_path.parent} differs from the published {old_path.parent} "
                                     f"({'; '.join(changed)}): nothing archived. Keep it under another name "
                                     f"(NAME=... or a new experiment file), or replace the published one on purpose "
                                     f"with REPLACE={name}")
            todo.append((kind, name, spec))
    copied = []
    for kind, name, spec in todo:
        spec["runs"] = [str(archive_run(Path(d), runs_root, archive)) for d in spec["runs"]]
        out = archive / kind / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        copied.append(f"{kind}/{name}")
    return copied


def recompute(archive: Path) -> Dict[str, List[Path]]:
    """Every archived comparison computed again from its archived runs, in its archive folder."""
    from lit_infoprompt.analysis.comparison_files import write_comparison
    from lit_infoprompt.analysis.robustness_files import write_robustness

    done: Dict[str, List[Path]] = {"compare": [], "robustness": []}
    for spec_path in sorted((archive / "compare").glob("*/spec.json")):
        spec, folder = json.loads(spec_path.read_text()), spec_path.parent
        write_comparison([archive / d for d in spec["runs"]], spec["methods"], folder, spec["target"],
                         lr_grid=spec["lr_grid"], allow_mixed_versions=spec["allow_mixed_versions"],
                         rates_from=spec["rates_from"], relative_to=archive, margin=spec.get("margin"),
                         arms=spec.get("arms"))
        done["compare"].append(folder)
    for spec_path in sorted((archive / "robustness").glob("*/spec.json")):
        spec, folder = json.loads(spec_path.read_text()), spec_path.parent
        write_robustness([archive / d for d in spec["runs"]], spec["methods"], folder.parent, spec["rates_from"],
                         spec["allow_mixed_versions"], name=folder.name, relative_to=archive)
        done["robustness"].append(folder)
    return done


def glance(summaries: List[dict]) -> List[str]:
    """One row per comparison: InfoPrompt against the baseline at a glance, with the interval, the smallest
    difference the seeds could detect, and the verdict."""
    roles = claim_roles()
    base_arm, form = roles.baseline, roles.headline
    rows, shown = [], set()
    for s in summaries:
        methods = list(s["methods"])
        if form not in methods or methods[0] != base_arm:
            continue
        test = s[f"paired_vs_{base_arm}"][form]
        same = (task_of(s), tuple(test["seeds"]), tuple(test["differences"]))
        if same in shown:  # an ablation comparison holds the same two arms: one row is enough
            continue
        shown.add(same)
        base, info, key = s["methods"][base_arm], s["methods"][form], s["test_metric"]
        power = s[f"power_vs_{base_arm}"][form]
        t, auc = power["test"], power["dev_auc"]
        mde = plain(t["mde"])
        floor = (s.get("constant_predictor") or {}).get(key.removeprefix("test_"))
        floor = plain(floor and floor["score"])
        below = not_clearly_above(s, (base_arm, form))
        verdict = t["verdict"] + ("; neither clearly above the constant predictor" if len(below) == 2 else
                                  f"; {below[0]} not clearly above the constant predictor" if below else "")
        rows.append(f"| {task_of(s)} | {len(test['seeds'])} | {key.removeprefix('test_')} | {floor} | "
                    f"{base[key]['mean']:.4f} | {info[key]['mean']:.4f} | {t['mean']:+.4f} "
                    f"{interval_text(t['t_interval'], 4)} | {mde} | {verdict} | "
                    f"{auc['mean']:+.4f} {interval_text(auc['t_interval'], 4)}: {auc['verdict']} |")
    if not rows:
        return []
    return ["## At a glance: InfoPrompt against prompt tuning", "", prose("glance"), "",
            "| comparison | seeds | test metric | constant | prompt tuning | InfoPrompt | difference [95 % interval] | "
            "MDE | verdict | dev AUC difference: verdict |", "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def still_lacking(declared: Sequence[Declared], archive: Path) -> List[str]:
    """The section on what the declared experiments ask for and the archive lacks (empty: nothing lacks)."""
    summaries = {}
    for d in declared:
        summary = archive / d.kind / d.name / "summary.json"
        if summary.is_file():
            summaries[(d.kind, d.name)] = json.loads(summary.read_text())
    lines = lacking_lines(declared, summaries)
    if not lines:
        return []
    devices = sorted({d.plan["device"] for d in declared if d.plan and d.plan.get("device")})
    return ["## What the declared experiments still lack", "",
            prose("lacking", device=", ".join(devices) or "no device (no plan made)"), "", *lines, ""]


def first_table(summary_md: Path) -> List[str]:
    """A comparison's summary.md up to the end of its first table (the method table), and its degenerate-run line."""
    lines = summary_md.read_text().splitlines()[2:]  # no title
    end = next(i for i, line in enumerate(lines) if line.startswith("|"))
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    flags = [line for line in lines if line.startswith("**Degenerate runs**")]
    return lines[:end] + ([""] + flags if flags else [])


def one_page(rows: List[dict], archive: Path, out_path: Path) -> List[str]:
    """The top of the report: the verdict table (claim x comparison x form, Holm within each claim's family) and
    its forest plot (``<archive>/verdicts.png``); empty when no declared experiment names a claim."""
    from lit_infoprompt.analysis.plots import forest
    from lit_infoprompt.analysis.verdicts import families, verdict_table

    if not rows:
        return []
    figure = archive / "verdicts.png"
    forest(rows, figure)
    return ["## The answer on one page", "", prose("verdicts", families=families(rows)), "", *verdict_table(rows), "",
            f"![paired differences per seed, mean and 95 % interval]({figure.relative_to(out_path.parent)})", ""]


def write_report(runs_dir: str = "runs", out: str = "docs/RESULTS.md", archive: Optional[str] = None,
           experiments: Optional[str] = None, replace: Sequence[str] = (),
           declared: Sequence[Declared] = (), archived: bool = False) -> Path:
    """Archive the declared experiments of ``runs_dir`` (``experiments``: their folder, default ``conf/experiment``
    beside the package; ``replace``: the published ones to replace on purpose), then write the report: the claims
    section from the ``declared`` experiments that name a claim, and what each of them still lacks
    (``sweep.reporting.report`` reads them from the folder and plans what they lack)."""
    runs_root, out_path = Path(runs_dir), Path(out)
    archive_root = Path(archive) if archive else out_path.parent / "results"
    if not archived:  # archived=True: the caller has just archived runs_dir (sweep.reporting does, to plan)
        archive_sweeps(runs_root, archive_root, Path(experiments) if experiments else CONF_DIR / "experiment", replace)
    done = recompute(archive_root)
    if not done["compare"]:
        raise InputError(f"no comparisons under {runs_root}/compare or {archive_root}/compare: run `make compare` first")
    backbones, sections, run_lists, summaries = set(), [], [], []
    for folder in done["compare"]:
        summary = json.loads((folder / "summary.json").read_text())
        summaries.append(summary)
        backbones.add(summary["backbone"])
        figure = (folder / "curves.png").relative_to(out_path.parent)
        details = (folder / "summary.md").relative_to(out_path.parent)
        sections += [f"## {summary['header']}", "", f"`{folder.name}`: the method table below; every other table "
                     f"(paired tests, power, steps to each target, the rate choice, estimator diagnostics, code "
                     f"versions) in [its summary.md]({details}).", "", *first_table(folder / "summary.md"), "",
                     f"![convergence]({figure})", ""]
        runs = (folder / "runs.txt").read_text().split()
        run_lists.append(f"- `{folder.name}`: {len(runs)} runs, listed in "
                         f"[runs.txt]({(folder / 'runs.txt').relative_to(out_path.parent)})")
    from lit_infoprompt.analysis.plots import init_means

    for folder in done["robustness"]:
        init_means(json.loads((folder / "summary.json").read_text()), folder / "inits.png")
        sections += [(folder / "summary.md").read_text().replace("# Robustness", "## Robustness", 1), ""]
        runs = (folder / "runs.txt").read_text().split()
        run_lists.append(f"- robustness `{folder.name}`: {len(runs)} runs, listed in "
                         f"[runs.txt]({(folder / 'runs.txt').relative_to(out_path.parent)})")
    theory = out_path.parent / "theory.json"
    if theory.is_file():
        t = json.loads(theory.read_text())
        sections += ["## Theory check (`make theory`)", "",
                     f"Gradient descent on a synthetic InfoNCE head loss (prompt and class vectors trainable, weight "
                     f"decay 0.1): estimated smoothness L = {t['L_estimate']:.4f} (largest curvature met on the run: "
                     f"{t['max_curvature_on_small_step_run']:.4f}). Step 0.5/L: monotone = {t['small_monotone']}, "
                     f"final gradient norm {t['small_final_grad_norm']:.2e}. Step 25/L: monotone = "
                     f"{t['large_monotone']}, loss up to {t['large_max_loss']:.3g}.", "", "![theory](theory.png)", ""]
    rows = verdict_rows(done, declared)
    claimed = claims(done, declared, rows)
    preamble = prose("preamble", backbones=", ".join(sorted(backbones)), inert=100 * INERT_FRACTION,
                     saturated=100 * SATURATED_FRACTION, early=EARLY_STEP) + "\n"
    title, rest = preamble.split("\n\n", 1)
    answer = one_page(rows, archive_root, out_path)
    text = title + "\n\n" + "\n".join(answer) + ("\n" if answer else "") + rest + "\n" + \
        "\n".join(glance(summaries) + claimed + still_lacking(declared, archive_root) + sections)
    text += ("\n## Runs in this report\n\nUnder `docs/results/runs/` (config.yaml, split.json, curve.csv, "
             "summary.json of each):\n\n" + "\n".join(run_lists) + "\n")
    out_path.write_text(text)
    return out_path
