"""Arms of a comparison: ``methods=[prompt_tuning,pt_lw=prompt_tuning+prompt.init=label_words]``. How an arm is
parsed and refused, which arm a run belongs to (by its saved config, never by its position), that every table,
the prompt lr choice and ``prompt_lr_from`` key on the arm's name, that ``make report`` computes an arm comparison
again from its spec.json and an old spec without arms as before, and the Makefile's quoting."""

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES, tiny_overrides
from lit_infoprompt.analysis.arms import assign
from lit_infoprompt.analysis.comparison_files import write_comparison
from lit_infoprompt.analysis.report import recompute
from lit_infoprompt.config import load_config, to_yaml
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep import comparison_runs as compare_module
from lit_infoprompt.experiment import Arm
from lit_infoprompt.sweep.args import arm_configs, chosen_rates, parse_sweep
from lit_infoprompt.sweep.comparison_runs import compare, run_all
from lit_infoprompt.sweep.grid import grid_jobs

ROOT = Path(__file__).resolve().parents[1]
LW = "pt_lw=prompt_tuning+prompt.init=label_words"
# what compare records for the arms prompt_tuning (plain) and pt_lw: prompt.init is what tells them apart
ARMS = {"prompt_tuning": {"method": "prompt_tuning", "overrides": [], "match": {"prompt.init": "vocab"}},
        "pt_lw": {"method": "prompt_tuning", "overrides": ["prompt.init=label_words"],
                  "match": {"prompt.init": "label_words"}}}


def stand_in_run(root: Path, method: str, seed: int, test_acc: float, dev: float, *overrides: str,
                 version: int = 0) -> Path:
    """A finished run's files as the runner writes them (no training): runs/cb/4shot/<method>/seed<s>/version_<n>."""
    config = load_config([f"method={method}", f"seed={seed}", *overrides])
    run_dir = root / "runs/cb/4shot" / method / f"seed{seed}" / f"version_{version}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    (run_dir / "curve.csv").write_text(f"step,examples,val/acc\n0,0,0.3\n10,40,{dev - 0.1}\n20,80,{dev}\n")
    (run_dir / "summary.json").write_text(json.dumps({
        "task": "cb", "method": method, "seed": seed, "shots": 4, "protocol": "per_class", "split_size": 4,
        "backbone": "tiny", "dev_metric": "acc", "test_acc": test_acc, "split_checksum": f"data{seed}"}))
    return run_dir


def two_arms(root: Path) -> list:
    """prompt_tuning with its own prompt.init (vocab) and with label_words, seeds 13 and 21, as versions of the
    same seed folders: the run directory does not tell the arms apart, only the saved config does."""
    return [stand_in_run(root, "prompt_tuning", 13, 0.50, 0.6), stand_in_run(root, "prompt_tuning", 21, 0.60, 0.7),
            stand_in_run(root, "prompt_tuning", 13, 0.70, 0.8, "prompt.init=label_words", version=1),
            stand_in_run(root, "prompt_tuning", 21, 0.75, 0.8, "prompt.init=label_words", version=1)]


# -- parsing ---------------------------------------------------------------------------------------------
def test_an_arm_is_a_preset_with_overrides_under_its_own_name():
    sweep = parse_sweep([f"methods=[prompt_tuning,{LW},g1=infoprompt+method.head_weight=1+optim.head_lr=1e+3]"])
    assert sweep.methods == ["prompt_tuning", "pt_lw", "g1"]
    assert [a for a in sweep.arms] == [
        Arm("prompt_tuning", "prompt_tuning"), Arm("pt_lw", "prompt_tuning", ("prompt.init=label_words",)),
        Arm("g1", "infoprompt", ("method.head_weight=1", "optim.head_lr=1e+3"))]  # '+' of 1e+3 is no separator
    configs = arm_configs(sweep)
    assert configs["pt_lw"].prompt.init == "label_words" and configs["prompt_tuning"].prompt.init == "vocab"
    # method.* on the command line wins over the preset's file (infoprompt's own head_weight is 0.1)
    assert configs["g1"].method.head_weight == 1.0 and configs["g1"].optim.head_lr == 1e3
    assert configs["g1"].method.name == "infoprompt" and configs["g1"].method.bottleneck


@pytest.mark.parametrize("args, message", [
    (["methods=[a/b=prompt_tuning+prompt.init=text]"], "bad arm name 'a/b'"),
    (["methods=[pt=prompt_tuning+]"], "cannot read the arm"),
    (["methods=[pt=+prompt.init=text]"], "cannot read the arm"),
    (["methods=[pt=prompt_tuning+prompt.init]"], "cannot read the arm"),
    (["methods=[pt=prompt_tuning+seed=3]"], "the arm pt sets seed"),
    (["methods=[pt=prompt_tuning+method=infoprompt]"], "the arm pt sets method"),
    (["methods=[pt=prompt_tuning+prompt.init=text+prompt.init=vocab]"], "sets a key twice"),
    (["methods=[prompt_tuning,prompt_tuning]"], "prompt_tuning are given twice"),
    ([f"methods=[{LW},pt_lw=infoprompt+prompt.init=text]"], "pt_lw are given twice"),
    (["methods=[infoprompt=prompt_tuning+prompt.init=text]"], "named after the method preset infoprompt"),
    ([f"methods=[prompt_tuning,{LW}]", "prompt.init=text"], "the arm pt_lw sets prompt.init, which the sweep sets"),
    (["methods=[pt=prompt_tuning+optim.prompt_lr=0.1]", "prompt_lrs=[1e-3,1e-2]"], "prompt learning rate one way"),
])
def test_a_bad_arm_is_one_error(args, message):
    with pytest.raises(InputError, match=message):
        parse_sweep(args)


def test_every_arm_is_checked_before_anything_runs(roberta_dir, tmp_path):
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2")
    with pytest.raises(InputError, match="the arm pt: unknown config key 'prompt.inti'"):
        compare([*args, "methods=[prompt_tuning,pt=prompt_tuning+prompt.inti=text]", "seeds=[13]"])
    with pytest.raises(InputError, match="the arm pt: bad value for 'method.head_weight'"):
        compare([*args, "methods=[prompt_tuning,pt=prompt_tuning+method.head_weight=much]", "seeds=[13]"])
    with pytest.raises(InputError, match="the arm pt: wandb.mode is no setting of the experiment"):
        compare([*args, "methods=[prompt_tuning,pt=prompt_tuning+wandb.mode=disabled]", "seeds=[13]"])
    with pytest.raises(InputError, match="the arms prompt_tuning and pt_vocab would run the same experiment"):
        compare([*args, "methods=[prompt_tuning,pt_vocab=prompt_tuning+prompt.init=vocab]", "seeds=[13]"])
    with pytest.raises(InputError, match="robustness takes method presets, not arms"):
        from lit_infoprompt.sweep.robustness_runs import robustness
        robustness([*args, f"methods=[prompt_tuning,{LW}]", "seeds=[13]"])
    assert not (tmp_path / "runs").exists()  # nothing ran


# -- the grid --------------------------------------------------------------------------------------------
def test_each_arm_runs_with_its_overrides_and_fails_on_its_own(monkeypatch):
    arms = parse_sweep([f"methods=[prompt_tuning,{LW}]"]).arms
    jobs = grid_jobs(["task=cb"], arms, [13, 21], [1e-3, 1e-2])
    assert [(j.label, j.method, j.seed, j.prompt_lr) for j in jobs][:5:4] == [
        ("prompt_tuning", "prompt_tuning", 13, 1e-3), ("pt_lw", "prompt_tuning", 13, 1e-3)]
    lw = jobs[4].config  # composed once, typed: the arm's override, its preset, the grid's rate and seed
    assert (lw.task.name, lw.optim.prompt_lr, lw.method.name, lw.prompt.init, lw.seed) == \
        ("cb", 1e-3, "prompt_tuning", "label_words", 13)
    plain = grid_jobs(["task=cb"], ["prompt_tuning"], [13])[0].config
    assert (plain.method.name, plain.seed, plain.prompt.init) == ("prompt_tuning", 13, load_config([]).prompt.init)
    # pt_lw seed 13 fails at 1e-2: that seed leaves pt_lw's grid, not prompt_tuning's (the same preset)
    def results(jobs, launch, report):
        return [{"error": "NonFiniteLoss: x"} if (j.label, j.seed, j.prompt_lr) == ("pt_lw", 13, 1e-2)
                else {"run_dir": f"/runs/{j.label}/{j.seed}/{j.prompt_lr}"} for j in jobs]
    monkeypatch.setattr(compare_module, "run_grid", results)
    run_dirs, failures, labels = run_all(jobs)
    assert failures == [{"method": "pt_lw", "seed": 13, "prompt_lr": 1e-2, "error": "NonFiniteLoss: x"}]
    assert labels == ["prompt_tuning"] * 4 + ["pt_lw"] * 2
    assert [str(d) for d in run_dirs[4:]] == ["/runs/pt_lw/21/0.001", "/runs/pt_lw/21/0.01"]


# -- which arm a run belongs to ----------------------------------------------------------------------------
def test_a_run_belongs_to_the_arm_its_saved_config_matches(tmp_path):
    from lit_infoprompt.analysis.runs import read_run

    dirs = two_arms(tmp_path)
    for order in (dirs, dirs[::-1]):  # not by position
        runs = [read_run(d) for d in order]
        assign(runs, ["pt_lw", "prompt_tuning"], ARMS)
        assert {str(r["dir"]): r["arm"] for r in runs} == {str(d): arm for d, arm in
                                                          zip(dirs, ["prompt_tuning"] * 2 + ["pt_lw"] * 2)}
    stray = [read_run(stand_in_run(tmp_path, "prompt_tuning", 13, 0.5, 0.6, "prompt.init=text", version=2))]
    with pytest.raises(InputError, match="prompt.init='text'.* matches no arm of prompt_tuning, pt_lw"):
        assign(stray, ["prompt_tuning", "pt_lw"], ARMS)
    twice = {**ARMS, "pt_lw2": ARMS["pt_lw"]}
    with pytest.raises(InputError, match="matches arms pt_lw and pt_lw2"):
        assign([read_run(dirs[2])], ["prompt_tuning", "pt_lw", "pt_lw2"], twice)
    with pytest.raises(InputError, match="method infoprompt.* matches no arm"):  # the preset must be the arm's
        assign([read_run(stand_in_run(tmp_path, "infoprompt", 13, 0.5, 0.6))], ["prompt_tuning", "pt_lw"], ARMS)


def test_two_arms_of_one_preset_are_compared_under_their_names(tmp_path):
    dirs = two_arms(tmp_path)
    result = write_comparison(dirs, ["prompt_tuning", "pt_lw"], tmp_path / "out", None, arms=ARMS)
    assert result["methods"]["prompt_tuning"]["test_acc"]["mean"] == pytest.approx(0.55)
    assert result["methods"]["pt_lw"]["test_acc"]["mean"] == pytest.approx(0.725)
    assert result["paired_vs_prompt_tuning"]["pt_lw"]["differences"] == pytest.approx([0.20, 0.15])
    text = (tmp_path / "out/summary.md").read_text()
    assert text.count("`pt_lw` = `prompt_tuning` with prompt.init=label_words") == 1
    assert "`prompt_tuning` = the preset itself (prompt.init=vocab); `pt_lw` = " in text
    assert "| pt_lw | 0.001 | 2 | 0.7250 ± 0.0354 |" in text and "| prompt_tuning | 0.001 | 2 | 0.5500" in text
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["arms"] == ARMS and list(summary["methods"]) == ["prompt_tuning", "pt_lw"]
    spec = json.loads((tmp_path / "out/spec.json").read_text())
    assert spec["methods"] == ["prompt_tuning", "pt_lw"] and spec["arms"] == ARMS
    # without the arms the two would be one method's runs that differ in prompt.init: refused
    with pytest.raises(InputError, match="they differ in prompt.init"):
        write_comparison(dirs, ["prompt_tuning"], tmp_path / "plain", None)
    # within an arm nothing but the seed may differ, though the arms may differ in prompt.init
    other = stand_in_run(tmp_path / "b", "prompt_tuning", 21, 0.7, 0.8, "prompt.init=label_words", "optim.head_lr=0.1")
    with pytest.raises(InputError, match="they differ in optim.head_lr"):
        write_comparison([*dirs[:3], other], ["prompt_tuning", "pt_lw"], tmp_path / "mixed", None, arms=ARMS)


def test_the_prompt_lr_choice_and_prompt_lr_from_key_on_the_arm(tmp_path):
    dirs = [stand_in_run(tmp_path, "prompt_tuning", seed, 0.5, dev, f"optim.prompt_lr={lr}", *init, version=v)
            for v, (lr, init, dev) in enumerate([(1e-3, [], 0.7), (1e-2, [], 0.6),
                                                (1e-3, ["prompt.init=label_words"], 0.5),
                                                (1e-2, ["prompt.init=label_words"], 0.8)])
            for seed in (13, 21)]
    out = tmp_path / "grid"
    result = write_comparison(dirs, ["prompt_tuning", "pt_lw"], out, None, lr_grid=True, arms=ARMS)
    assert {a: c["chosen"] for a, c in result["prompt_lr_choice"].items()} == {"prompt_tuning": 1e-3, "pt_lw": 1e-2}
    assert result["methods"]["pt_lw"]["prompt_lr"] == [1e-2] and len(result["methods"]["pt_lw"]["seeds"]) == 2
    assert "| pt_lw | 0.5000 ± 0.0000 | **0.8000 ± 0.0000** |" in (out / "summary.md").read_text()
    # a later sweep takes each arm's rate; an arm the grid did not cover its preset's, then infoprompt's
    assert chosen_rates(str(out), ["pt_lw", "prompt_tuning", "pt_text"], {"pt_text": "prompt_tuning"}) == \
        {"pt_lw": 1e-2, "prompt_tuning": 1e-3, "pt_text": 1e-3}
    with pytest.raises(InputError, match="chose no prompt lr for pt_text"):
        chosen_rates(str(out), ["pt_text"], {"pt_text": "infoprompt"})


def test_prompt_lr_from_runs_each_arm_at_its_rate(tmp_path, monkeypatch):
    folder = tmp_path / "grid"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"prompt_lr_choice": {
        "prompt_tuning": {"chosen": 0.003}, "pt_lw": {"chosen": 0.03}}}))
    seen = []

    class Stop(Exception):
        pass

    def grid(jobs, launch):
        seen.extend(jobs)
        raise Stop  # nothing runs

    monkeypatch.setattr(compare_module, "run_all", grid)
    with pytest.raises(Stop):
        compare([f"methods=[prompt_tuning,{LW},pt_text=prompt_tuning+prompt.init=text]", "seeds=[13]",
                 f"prompt_lr_from={folder}", "trainer.accelerator=cpu", f"model.name={FIXTURES / 'models/tiny-roberta'}",
                 f"data.dir={FIXTURES}"])  # what the runs share exists: the grid is reached
    assert {(j.label, j.prompt_lr) for j in seen} == {("prompt_tuning", 0.003), ("pt_lw", 0.03), ("pt_text", 0.003)}


# -- the report --------------------------------------------------------------------------------------------
def archived(tmp_path: Path, methods, arms=None) -> Path:
    """The stand-in runs as a comparison of an archive (what `make report` recomputes), its files written once."""
    archive = tmp_path / "archive"
    dirs = two_arms(archive)
    write_comparison(dirs, methods, archive / "compare/cb-4shot", None, relative_to=archive, arms=arms)
    return archive / "compare/cb-4shot"


def files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".png"}


@pytest.mark.slow
def test_the_report_computes_an_arm_comparison_again_from_its_spec(tmp_path):
    folder = archived(tmp_path, ["pt_lw", "prompt_tuning"], ARMS)
    before = files(folder)
    assert json.loads(before["spec.json"])["arms"] == ARMS
    for name in before:
        (folder / name).unlink() if name != "spec.json" else None
    assert recompute(folder.parents[1])["compare"] == [folder]
    assert files(folder) == before and "`pt_lw` = `prompt_tuning`" in before["summary.md"].decode()


@pytest.mark.slow
def test_an_old_spec_without_arms_recomputes_as_before(tmp_path):
    archive = tmp_path / "archive"
    dirs = [stand_in_run(archive, m, s, 0.5 + s / 100, 0.6) for m in ("prompt_tuning", "infoprompt") for s in (13, 21)]
    folder = archive / "compare/cb-4shot"
    write_comparison(dirs, ["prompt_tuning", "infoprompt"], folder, None, relative_to=archive)
    spec = json.loads((folder / "spec.json").read_text())
    assert "arms" not in spec and "arms" not in json.loads((folder / "summary.json").read_text())
    assert "Arms (" not in (folder / "summary.md").read_text()
    before = files(folder)
    recompute(archive)
    assert files(folder) == before
    # an old spec names presets only: runs of one preset that differ in its settings are still refused
    stand_in_run(archive, "infoprompt", 13, 0.5, 0.6, "prompt.init=text", version=1)
    (folder / "spec.json").write_text(json.dumps({**spec, "runs": spec["runs"][:3] + [
        "runs/cb/4shot/infoprompt/seed13/version_1"]}))
    with pytest.raises(InputError, match="they differ in prompt.init"):
        recompute(archive)


# -- the whole command, and make ---------------------------------------------------------------------------
@pytest.mark.train
def test_compare_runs_two_arms_of_one_preset_and_reuses_them(roberta_dir, tmp_path):
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2", "archive=null")
    out = compare([*args, f"methods=[prompt_tuning,{LW}]", "seeds=[13]"])
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["prompt_tuning", "pt_lw"] and set(summary["paired_vs_prompt_tuning"]) == {"pt_lw"}
    assert summary["arms"]["pt_lw"]["match"] == {"prompt.init": "label_words"}
    assert summary["arms"]["prompt_tuning"]["match"] == {"prompt.init": load_config(args).prompt.init}
    runs = sorted((tmp_path / "runs/cb").rglob("summary.json"))
    assert [p.parts[-4:-1] for p in runs] == [("prompt_tuning", "seed13", "version_0"),
                                              ("prompt_tuning", "seed13", "version_1")]  # the layout of any run
    assert "`pt_lw` = `prompt_tuning` with prompt.init=label_words" in (out / "summary.md").read_text()
    before = {p: p.read_bytes() for p in runs}
    again = compare([*args, f"methods=[{LW},prompt_tuning]", "seeds=[13]", "name=again"])  # reused, either order
    assert {p: p.read_bytes() for p in (tmp_path / "runs/cb").rglob("summary.json")} == before
    assert json.loads((again / "summary.json").read_text())["methods"]["pt_lw"]["test_acc"] == \
        summary["methods"]["pt_lw"]["test_acc"]


def test_make_passes_an_arm_through_methods():
    line = subprocess.run(["make", "-n", "-s", "--no-print-directory", "compare", "PY=PYBIN", "TASK=cb",
                           f"METHODS=prompt_tuning {LW} g1=infoprompt+method.head_weight=1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    call = next(x for x in line.replace("\\\n", " ").splitlines() if x.startswith("PYBIN -m lit_infoprompt compare"))
    sweep = parse_sweep(shlex.split(call)[4:])
    assert sweep.methods == ["prompt_tuning", "pt_lw", "g1"]
    assert sweep.arms[2] == Arm("g1", "infoprompt", ("method.head_weight=1",))


def test_the_summary_says_once_what_each_arm_is():
    from lit_infoprompt.analysis.arms import describe_arms

    arms = {"pt": {"method": "prompt_tuning", "overrides": []},
            "g1": {"method": "infoprompt", "overrides": ["method.head_weight=1"], "match": {"method.head_weight": 1.0}},
            "infoprompt": {"method": "infoprompt", "overrides": [], "match": {"method.head_weight": 0.1}}}
    [line] = describe_arms(["pt", "infoprompt", "g1"], arms)
    assert line.endswith(": `pt` = `prompt_tuning`; `infoprompt` = the preset itself (method.head_weight=0.1); "
                         "`g1` = `infoprompt` with method.head_weight=1.")
    assert describe_arms(["prompt_tuning", "infoprompt"], None) == []  # presets under their own names: nothing to say
