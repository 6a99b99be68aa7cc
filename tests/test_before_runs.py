"""What every run of a sweep shares is checked once, before the plan or any run (``sweep.before_runs``): the model
folder, the data under ``data.dir`` and every arm's keys; one ``error:`` line naming the experiment file and the arm,
not one failure per run. And the plan's "run it" line carries the backbone and data it was made with."""

from pathlib import Path

import pytest

from conftest import FIXTURES
from lit_infoprompt.__main__ import main
from lit_infoprompt.errors import InputError
from lit_infoprompt.sweep import comparison_runs, grid
from lit_infoprompt.sweep.before_runs import check_before_runs, check_model_folder
from lit_infoprompt.experiment import load_experiment
from lit_infoprompt.experiment import Arm
from lit_infoprompt.sweep.plan import Plan, plan_text, run_command

TINY = Path(__file__).parent / "fixtures" / "models" / "tiny-roberta"
EXPERIMENT = """kind: compare
task: cb
shots: 4
steps: 6
arms:
  prompt_tuning: prompt_tuning
  {arm}
seeds: [13, 21, 42, 87]
"""


def write(tmp_path: Path, arm: str = "infoprompt: infoprompt", extra: str = "") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(arm=arm) + extra)
    return path


@pytest.fixture
def no_runs(monkeypatch):
    """Any run started fails the test: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a run was started")
    monkeypatch.setattr(grid, "run_grid", refuse)
    monkeypatch.setattr(comparison_runs, "run_grid", refuse)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("planned", [True, False])
def test_a_missing_model_folder_fails_the_plan_and_the_run_with_one_line(tmp_path, capsys, no_runs, planned):
    path = write(tmp_path, extra=f"model: {tmp_path / 'no-such-model'}\n")
    args = ["experiment", str(path), f"out_dir={tmp_path / 'runs'}", "archive=null", f"data.dir={FIXTURES}"]
    assert main([*args, *(["plan=true"] if planned else [])]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {path}: model: model.name={tmp_path / 'no-such-model'}: folder not found")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("planned", [True, False])
def test_data_dir_without_the_tasks_files_is_one_line_before_any_run(tmp_path, capsys, no_runs, planned):
    (tmp_path / "empty").mkdir()
    args = ["experiment", str(write(tmp_path)), f"out_dir={tmp_path / 'runs'}", "archive=null",
            f"model.name={TINY}", f"data.dir={tmp_path / 'empty'}"]
    assert main([*args, *(["plan=true"] if planned else [])]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: data file not found: {tmp_path / 'empty'}/superglue/CB/train.jsonl")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("arm, words", [
    ("ip_x: infoprompt+method.nosuch=1", ["arms.ip_x: unknown config key 'method.nosuch'"]),
    ("ip_x: infoprompt+method.decay=3", ["arms.ip_x: method.decay must be in [0, 1], got 3"]),
    ("ip_x: infoprompt+method.head_weight=much", ["arms.ip_x: bad value for 'method.head_weight'"]),
    ("ip_x: infoprompt+seed=3", ["arms.ip_x", "sets seed"]),
])
@pytest.mark.parametrize("planned", [True, False])
def test_a_bad_key_in_an_arm_names_the_file_and_the_arm_once(tmp_path, capsys, no_runs, arm, words, planned):
    path = write(tmp_path, arm)
    args = ["experiment", str(path), f"out_dir={tmp_path / 'runs'}", "archive=null", f"model.name={TINY}",
            f"data.dir={FIXTURES}"]
    assert main([*args, *(["plan=true"] if planned else [])]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {path}: ") and all(w in line for w in words), line
    assert "in the command line" not in line


def test_whose_setting_is_wrong_the_files_or_the_command_lines(tmp_path, capsys):
    path = write(tmp_path, extra="overrides: [optim.nosuch=1]\n")
    assert main(["experiment", str(path), "plan=true", f"model.name={TINY}"]) == 2
    line = one_error_line(capsys)
    assert line == f"error: unknown config key 'optim.nosuch' in {path}" and "arms." not in line
    assert main(["experiment", str(write(tmp_path)), "plan=true", "trainer.nosuch=1"]) == 2
    assert one_error_line(capsys) == "error: unknown config key 'trainer.nosuch' in the command line"


def test_compare_robustness_and_paper_check_before_their_first_run(tmp_path, no_runs):
    from lit_infoprompt.sweep.paper import paper_plan, parse_paper_args, run_paper
    from lit_infoprompt.sweep.robustness_runs import robustness

    missing = tmp_path / "no-such-model"
    common = [f"model.name={missing}", f"data.dir={FIXTURES}", f"out_dir={tmp_path / 'runs'}", "seeds=[13,21]"]
    with pytest.raises(InputError, match=f"model.name={missing}: folder not found"):
        comparison_runs.compare([*common, "methods=[prompt_tuning,infoprompt]"])
    with pytest.raises(InputError, match="data file not found"):
        robustness([f"model.name={TINY}", f"data.dir={tmp_path}", f"out_dir={tmp_path / 'runs'}", "seeds=[13,21]",
                    "methods=[prompt_tuning,infoprompt]"])
    p = parse_paper_args(["only=paper-cb-16shot", "seeds=13", "steps=2", f"model={missing}", f"data.dir={FIXTURES}",
                          f"archive={tmp_path / 'a'}", f"results={tmp_path / 'r.md'}", f"out_dir={tmp_path / 'runs'}"])
    for call in (paper_plan, run_paper):
        with pytest.raises(InputError, match=f"model.name={missing}: folder not found") as err:
            call(p)
        assert "paper-cb-16shot.yaml" not in str(err.value)  # model= came from the command line, not the file
    assert not (tmp_path / "runs").exists()


def test_the_check_returns_each_arms_config():
    arms = [Arm("prompt_tuning", "prompt_tuning"), Arm("pt_lw", "prompt_tuning", ("prompt.init=label_words",)),
            Arm("infoprompt", "infoprompt")]
    configs = check_before_runs(arms, ["task=cb", f"model.name={TINY}", f"data.dir={FIXTURES}"])
    assert list(configs) == ["prompt_tuning", "pt_lw", "infoprompt"]
    assert configs["pt_lw"].prompt.init == "label_words" and configs["prompt_tuning"].prompt.init == "vocab"
    assert configs["infoprompt"].method.name == "infoprompt" and configs["pt_lw"].model.name == str(TINY)


def test_the_fallback_backbone_may_be_unpacked_after_the_plan_not_after_the_check(tmp_path, monkeypatch):
    from lit_infoprompt import hub

    monkeypatch.setenv("LIT_INFOPROMPT_MODELS", str(tmp_path / "models"))
    folder = str(hub.models_dir() / hub.FALLBACK_NAME)
    check_model_folder(folder, planned=True)  # a plan: fetch-backbone unpacks it before the runs
    with pytest.raises(InputError, match="fetch-backbone"):
        check_model_folder(folder, planned=False)


def test_the_plan_says_how_to_run_it_with_its_model_and_data(tmp_path):
    e = load_experiment(str(write(tmp_path)))
    bare = Plan(e, "cpu")
    assert run_command(bare) == f"make experiment E={tmp_path / 'exp.yaml'}"
    made = Plan(e, "cpu", machine=[f"model.name={TINY}", "data.dir=/data/my folder", "workers=2"])
    assert run_command(made) == f"make experiment E={tmp_path / 'exp.yaml'} MODEL={TINY} DATA_DIR='/data/my folder'"
    assert f"  nothing to train: {run_command(made)} only writes the comparison" in plan_text(made)
    assert run_command(Plan(load_experiment("robustness/cb-16shot"), "cpu")) == \
        "make experiment E=robustness/cb-16shot"  # as make finds the file, not the compare one of that name
    assert run_command(Plan(load_experiment("cb-16shot"), "cpu", machine=["data.dir=../d"])) == \
        "make experiment E=cb-16shot DATA_DIR=../d"


def test_the_plans_run_line_from_the_command_line(tmp_path, capsys):
    args = ["experiment", str(write(tmp_path)), "plan=true", "archive=null", f"out_dir={tmp_path / 'runs'}",
            f"model.name={TINY}", f"data.dir={FIXTURES}"]
    assert main(args) == 0
    assert f"  run it: make experiment E={tmp_path / 'exp.yaml'} MODEL={TINY} DATA_DIR={FIXTURES}" in \
        capsys.readouterr().out
