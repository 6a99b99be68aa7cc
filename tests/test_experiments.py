"""Experiments as files (``conf/experiment/<name>.yaml``): a wrong key or value is one error line naming the file
and the key; every archived comparison and sweep has its file and its plan finds every one of its runs done; the
plan imports no torch; ``experiment`` trains only what is missing (a second call trains nothing)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_overrides
from lit_infoprompt.__main__ import main
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import EXPERIMENTS_DIR
from lit_infoprompt.experiment import load_experiment
from lit_infoprompt.sweep.experiment_runs import experiment_sweep
from lit_infoprompt.sweep.plan import RunIndex, backtest, estimate_seconds, plan

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "docs/results"

GOOD = """kind: compare
task: cb
protocol: per_class
shots: 4
steps: 6
arms:
  prompt_tuning: prompt_tuning
  pt_lw: prompt_tuning+prompt.init=label_words
seeds: [13, 21]
claims: [accuracy, control:label_words]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


# -- the file --------------------------------------------------------------------------------------------
def test_a_file_becomes_a_typed_sweep_and_each_run_a_config_composed_once(tmp_path, monkeypatch):
    """The hops from the file to a run's config, all typed: Experiment -> Sweep (settings, Arms) -> Job.config."""
    from lit_infoprompt import config as config_module
    from lit_infoprompt.experiment import Arm
    from lit_infoprompt.sweep import grid
    from lit_infoprompt.sweep.args import sweep_jobs

    e = load_experiment(str(write(tmp_path, "mine", GOOD.replace("protocol: per_class\nshots: 4", "protocol: budget\nbudget: 24")
                                              + "baseline: pt_lw\n")))
    assert e.name == "mine" and e.split == "budget24" and e.seeds == [13, 21]
    sweep = experiment_sweep(e, ["data.dir=/data", "workers=2"], out_dir=str(tmp_path / "runs"), archive=None)
    assert sweep.values == {"task": "cb", "data.protocol": "budget", "data.budget": 24, "trainer.max_steps": 6}
    # the baseline comes first: every arm is paired against the first
    assert sweep.arms == [Arm("pt_lw", "prompt_tuning", ("prompt.init=label_words",)),
                          Arm("prompt_tuning", "prompt_tuning")]
    assert sweep.seeds == [13, 21] and sweep.name == "mine" and sweep.overrides == ["data.dir=/data"]
    assert sweep.launch.workers == 2
    loads = []
    real = config_module.load_config
    monkeypatch.setattr(grid, "load_config", lambda *a, **k: loads.append(1) or real(*a, **k))
    jobs = sweep_jobs(sweep)
    assert len(jobs) == 4 and len(loads) == 4  # one composition per run, none after
    by_arm = {(j.label, j.seed): j.config for j in jobs}
    lw, pt = by_arm[("pt_lw", 13)], by_arm[("prompt_tuning", 21)]
    assert lw.data.budget == pt.data.budget == 24 and lw.data.protocol == "budget" and lw.data.dir == "/data"
    assert lw.prompt.init == "label_words" and pt.prompt.init != "label_words"
    assert lw.method.name == pt.method.name == "prompt_tuning" and (lw.seed, pt.seed) == (13, 21)
    assert lw.trainer.max_steps == 6 and lw.task.name == "cb"
    assert len(loads) == 4


def test_the_command_line_sets_neither_the_seeds_nor_the_methods_of_an_experiment(tmp_path):
    e = load_experiment(str(write(tmp_path, "mine", GOOD)))
    for bad in ("seed=5", "method=infoprompt", "seeds=[1,2]", "methods=[infoprompt]"):
        with pytest.raises(InputError, match=bad.split("=")[0] + "="):
            experiment_sweep(e, [bad], out_dir=str(tmp_path / "runs"), archive=None)


@pytest.mark.parametrize("change, key", [
    ("colour: red\n", "colour"),  # a key that is not one
    ("seeds: [13, x]\n", "seeds"),  # a value of the wrong type
    ("kind: sweep\n", "kind"),
    ("baseline: nobody\n", "baseline"),
    ("claims: [speed]\n", "claims"),
    ("arms: {a: no_such_preset}\n", "arms.a"),
    ("prompt_lrs: [0.01]\nrates_from: other\n", "prompt_lrs"),
    ("task: nosuchtask\n", "task"),
])
def test_a_wrong_key_or_value_is_one_line_naming_the_file_and_the_key(tmp_path, capsys, change, key):
    lines = [line for line in GOOD.splitlines(keepends=True) if not line.startswith(change.split(":")[0] + ":")]
    if change.startswith("arms"):  # replace the whole arms block
        lines = [line for line in lines if not line.startswith("  ")]
    path = write(tmp_path, "bad", "".join(lines) + change)
    with pytest.raises(InputError) as err:
        load_experiment(str(path))
    assert str(path) in str(err.value) and key in str(err.value) and "\n" not in str(err.value)
    assert main(["experiment", str(path), "plan=true"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and out.err.count("\n") == 1 and "Traceback" not in out.err


def test_an_unknown_experiment_names_the_known_ones(capsys):
    assert main(["experiment", "no-such-experiment", "plan=true"]) == 2
    assert "known: " in capsys.readouterr().err


# -- the archive's experiments ---------------------------------------------------------------------------
def archived():
    return sorted([("compare", d.name) for d in (ARCHIVE / "compare").iterdir()]
                  + [("robustness", d.name) for d in (ARCHIVE / "robustness").iterdir()])


def test_every_archived_comparison_and_sweep_has_its_file_under_its_name():
    for kind, name in archived():
        e = load_experiment(f"robustness/{name}" if kind == "robustness" else name)
        assert e.kind == kind and e.name == name


@pytest.mark.slow
def test_every_archived_experiment_plans_its_archived_runs_as_done():
    """The plan finds each archived experiment's runs, exactly the ones its spec.json lists: the file declares
    what was run, and nothing would be retrained."""
    index = RunIndex([ARCHIVE / "runs"])
    for kind, name in archived():
        e = load_experiment(f"robustness/{name}" if kind == "robustness" else name)
        p = plan(e, [], out_dir="/nonexistent", archive=str(ARCHIVE), index=index)
        spec = json.loads((ARCHIVE / kind / name / "spec.json").read_text())
        assert not p.to_train, f"{name}: {[(r.arm, r.seed, r.prompt_lr) for r in p.to_train]}"
        found = {str(Path(r.run_dir).relative_to(ARCHIVE)) for r in p.done}
        assert found <= set(spec["runs"]), name
        assert len(p.runs) == len(spec["runs"]), name


def test_make_experiment_plan_is_quick_says_40_of_40_and_imports_no_torch():
    code = ("import sys, runpy; sys.argv = ['lit_infoprompt', 'experiment', 'sst2-budget64-1000steps-10seeds', "
            "'plan=true', 'out_dir=/nonexistent']\n"
            "from lit_infoprompt.__main__ import main\nrc = main(sys.argv[1:])\n"
            "assert 'torch' not in sys.modules, 'the plan imported torch'\nsys.exit(rc)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    assert "runs wanted 40, done 40, to train 0" in out.stdout
    print(f"plan took {seconds:.1f} s")


def test_the_estimate_takes_the_closest_finished_runs_and_says_which():
    runs = [{"task": "cb", "protocol": "per_class", "shots": 16, "method": m, "steps": 1000, "seconds": s,
             "environment": {"device": "cpu A"}, "backbone": "/models/all-MiniLM-L6-v2", "dir": f"r{i}"}
            for i, (m, s) in enumerate([("prompt_tuning", 600), ("prompt_tuning", 800), ("infoprompt", 1000)])]
    small = ("cb", "per_class", 16, "prompt_tuning", 1000, "cpu A", "all-MiniLM-L6-v2")
    value, used, how = estimate_seconds(small, runs)
    assert value == 700 and len(used) == 2 and "same task, split, method" in how
    value, used, how = estimate_seconds(small[:4] + (500,) + small[5:], runs)  # scaled per step
    assert value == 350 and "scaled" in how
    assert estimate_seconds(small[:5] + ("gpu B", small[6]), runs)[0] is None
    assert estimate_seconds(small[:6] + ("roberta-large",), runs)[0] is None  # another backbone's seconds say nothing


def test_the_backtest_estimates_each_experiment_from_the_others_only():
    e = load_experiment("sst2-budget64-gamma")
    row = backtest([e], ARCHIVE)[0]
    assert row["experiment"] == "sst2-budget64-gamma" and row["runs"] == 9 and row["estimated"] == 9
    assert 0 <= row["median_abs_error"] < 1


# -- running one -----------------------------------------------------------------------------------------
@pytest.mark.train
def test_experiment_trains_what_is_missing_then_nothing(roberta_dir, tmp_path, capsys):
    folder = tmp_path / "experiments"
    write(folder, "tiny", GOOD.replace("seeds: [13, 21]", "seeds: [13]"))
    machine = [o for o in tiny_overrides(roberta_dir, tmp_path / "runs") if not o.startswith(("data.shots",
                                                                                              "trainer.max_steps"))]
    args = ["experiment", "tiny", f"experiments={folder}", "archive=null", *machine]
    assert main([*args, "plan=true"]) == 0
    assert "runs wanted 2, done 0, to train 2" in capsys.readouterr().out
    assert main(args) == 0
    assert (tmp_path / "runs/compare/tiny/summary.json").is_file()
    capsys.readouterr()
    assert main([*args, "plan=true"]) == 0
    assert "runs wanted 2, done 2, to train 0" in capsys.readouterr().out
    versions = sorted((tmp_path / "runs/cb/4shot/prompt_tuning/seed13").iterdir())
    assert main(args) == 0  # the second call reuses both runs
    assert sorted((tmp_path / "runs/cb/4shot/prompt_tuning/seed13").iterdir()) == versions


def test_every_committed_experiment_file_loads():
    files = sorted(EXPERIMENTS_DIR.glob("**/*.yaml"))
    assert len(files) >= 28
    for f in files:
        load_experiment(str(f))


def named_in(texts: dict, names: list, commits: bool = True) -> list:
    """What ``texts`` ({file name: text}) name: experiments of ``names``, issues, and (``commits``) commits of this
    repository (hex tokens git knows as commits)."""
    import re
    import shutil

    found, hexes = [], {}
    for name, text in texts.items():
        found += [f"{name}: experiment {n}" for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]
        found += [f"{name}: {m.group(0)}" for m in re.finditer(r"(?i)\bissues? #?\d+", text)]
        if commits:
            for token in re.findall(r"\b[0-9a-f]{7,40}\b", text):
                if re.search(r"[a-f]", token) and re.search(r"\d", token):
                    hexes.setdefault(token, name)
    if shutil.which("git") and (ROOT / ".git").exists() and hexes:
        out = subprocess.run(["git", "-C", str(ROOT), "cat-file", "--batch-check"], input="\n".join(hexes) + "\n",
                             capture_output=True, text=True).stdout.splitlines()
        found += [f"{hexes[token]}: commit {token}" for token, line in zip(hexes, out) if line.split()[1:2] == ["commit"]]
    return found


def test_the_package_names_no_experiment_issue_or_commit():
    """The analysis is a library over declared experiments: no experiment's name, no issue number and no commit of
    this repository is written into the package (identities.json, the record of which commit's code computed which
    runs, may name commits)."""
    names = sorted({p.stem for p in EXPERIMENTS_DIR.rglob("*.yaml")})
    assert len(names) > 20
    files = [p for p in (ROOT / "lit_infoprompt").rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".json")]
    found = named_in({str(p.relative_to(ROOT)): p.read_text() for p in files if p.name != "identities.json"}, names)
    found += named_in({"identities.json": (ROOT / "lit_infoprompt/identities.json").read_text()}, names, commits=False)
    assert not found, found
    # the check can fail: an experiment's name, an issue and a commit of this repository are each caught
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    caught = named_in({"sample": f"see issue 24 and commit {head}, E=sst2-budget64-1000steps"}, names)
    assert len(caught) == (3 if head else 2), caught
