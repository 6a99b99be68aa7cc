"""End to end through the command line, as a user runs it: a few steps into a temporary directory."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import tiny_overrides


def main_stderr(capsys, *args):
    """(exit status, all stderr lines) of the CLI's main(), without a subprocess."""
    from lit_infoprompt.__main__ import main
    status = main(list(args))
    return status, capsys.readouterr().err.strip().splitlines()


def main_in_process(capsys, *args):
    """(exit status, last stderr line) of the CLI's main(), without a subprocess."""
    status, lines = main_stderr(capsys, *args)
    return status, lines[-1]


def cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "lit_infoprompt", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_train_writes_a_complete_run_directory(roberta_dir, tmp_path):
    result = cli("train", *tiny_overrides(roberta_dir, tmp_path / "runs"))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_0"
    assert {"config.yaml", "split.json", "metrics.csv", "curve.csv", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["task"] == "cb" and summary["shots"] == 4
    assert 0 <= summary["test_acc"] <= 1 and 0 <= summary["test_f1_macro"] <= 1
    assert summary["params"]["trainable"] == 4 * 32 + 3 * 32 + 3
    confusion = summary["confusion_matrix_test"]  # gold x predicted over the test file: it gives test_acc back
    assert len(confusion) == 3 and sum(map(sum, confusion)) == summary["sizes"]["test"] > 0
    assert sum(confusion[i][i] for i in range(3)) / summary["sizes"]["test"] == pytest.approx(summary["test_acc"])
    assert summary["params"]["frozen"] > 10 * summary["params"]["trainable"]
    split = json.loads((run_dir / "split.json").read_text())
    assert split["checksum"] == summary["split_checksum"] and len(split["train_ids"]) == 12
    assert not set(split["train_ids"]) & set(split["dev_ids"])
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["shots"] == 4
    curve = (run_dir / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("step,examples,seconds") and [r.split(",")[0] for r in curve[1:]] == ["0", "3", "6"]
    import torch
    state = torch.load(run_dir / "checkpoints/best.ckpt", weights_only=False)["state_dict"]
    assert set(state) == {"prompt.weight", "head.vectors", "head.bias"}
    assert f"acc {summary['test_acc']:.4f}" in result.stdout and str(run_dir) in result.stdout


def test_second_run_gets_a_new_version(roberta_dir, tmp_path):
    for _ in range(2):
        assert cli("train", *tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2",
                                            "trainer.val_every=2")).returncode == 0
    assert (tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_1/summary.json").is_file()


@pytest.mark.parametrize("extra, message", [
    (["trainer.max_stepz=2"], "error: unknown config key 'trainer.max_stepz'"),
    (["data.dir=/nonexistent"], "error: data file not found: /nonexistent/superglue/CB/train.jsonl"),
    (["data.shots=7"], "error: class 'neutral' has 6 training examples, fewer than shots=7"),
    (["task.label_words=[yes,no,'']"], "error: label word '' cannot be encoded"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(roberta_dir, tmp_path, extra, message):
    result = cli("train", *tiny_overrides(roberta_dir, tmp_path / "runs", *extra))  # a real process
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def corrupt_cb(tmp_path, line):
    """A copy of the CB fixture whose train file gets one bad line (line 3)."""
    import shutil

    from conftest import FIXTURES
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "superglue/CB", data / "superglue/CB")
    train = data / "superglue/CB/train.jsonl"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(lines[:2] + [line] + lines[2:]) + "\n")
    return data


@pytest.mark.parametrize("line, message", [
    ('{"premise": "a", "hypothesis": "b", "label": ', "train.jsonl:3: malformed JSON"),
    ('{"premise": "a", "label": "neutral"}', "train.jsonl:3: missing field 'hypothesis'"),
    ('{"premise": "a", "hypothesis": "b", "label": "unsure"}', "train.jsonl:3: label 'unsure' is not one of"),
])
def test_bad_data_is_one_line_with_file_and_line_number(roberta_dir, tmp_path, capsys, line, message):
    data = corrupt_cb(tmp_path, line)
    status, last = main_in_process(capsys, "train", *tiny_overrides(roberta_dir, tmp_path / "runs", f"data.dir={data}"))
    assert status == 2 and last.startswith("error: ") and message in last
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("extra, message", [
    (["task=nosuchtask"], "error: unknown task 'nosuchtask' (known: boolq, cb, cola, copa, mrpc, rte, semeval, sst2, wic)"),
    (["task.template='{premise} {hypothesis}'"], "error: task.template must contain exactly one <mask>"),
    (["task.template={premise} {hypothesis}"], "error: cannot parse override 'task.template={premise} {hypothesis}'"),
    (["task=semeval", "data.shots=2"], "error: class 'Component-Whole(e2,e1)' has 0 training examples"),
])
def test_bad_task_settings_exit_2(roberta_dir, tmp_path, capsys, extra, message):
    status, last = main_in_process(capsys, "train", *tiny_overrides(roberta_dir, tmp_path / "runs", *extra))
    assert status == 2 and last.startswith(message)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("extra, key, value", [
    ("method.decay=3", "method.decay", "3"),  # w(t) < 0 would maximise the MI terms
    ("method.decay=-0.1", "method.decay", "-0.1"),
    ("optim.prompt_lr=0", "optim.prompt_lr", "0"),
    ("optim.head_lr=-1e-3", "optim.head_lr", "-0.001"),
    ("optim.weight_decay=-0.1", "optim.weight_decay", "-0.1"),
    ("prompt.init_std=0", "prompt.init_std", "0"),
    ("method.nce_clamp=0", "method.nce_clamp", "0"),
])
def test_out_of_range_value_is_one_line_naming_key_and_value(roberta_dir, tmp_path, capsys, extra, key, value):
    status, lines = main_stderr(capsys, "train", *tiny_overrides(roberta_dir, tmp_path / "runs", extra))
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and key in lines[0] and value in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("extra, start", [
    ("seed=abc", "error: bad value for 'seed' in the command line: Value 'abc' of type 'str' could not be "
                 "converted to Integer"),
    ("model.dropout=maybe", "error: bad value for 'model.dropout' in the command line: Value 'maybe' is not"),
    ("task.labels=5", "error: bad value for 'task.labels' in the command line:"),
    ("prompt=3", "error: bad value for 'prompt' in the command line:"),  # OmegaConf gives no full_key here
    ("seed=${oops}", "error: bad value in the config: Interpolation key 'oops' not found"),
], ids=["seed=abc", "model.dropout=maybe", "task.labels=5", "prompt=3", "interpolation"])
def test_bad_typed_value_is_exactly_one_line(roberta_dir, tmp_path, capsys, extra, start):
    status, lines = main_stderr(capsys, "train", *tiny_overrides(roberta_dir, tmp_path / "runs", extra))
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith(start) and "full_key" not in lines[0] and "None" not in lines[0]
    assert not (tmp_path / "runs").exists()


def test_unknown_command_is_named_before_the_usage(capsys):
    status, lines = main_stderr(capsys, "trian")
    assert status == 2
    assert lines[0] == "error: unknown command 'trian'" and lines[1].startswith("usage: ")


def test_help_and_no_arguments_print_the_usage(capsys):
    from lit_infoprompt.__main__ import main
    assert main(["--help"]) == 0 and main(["-h"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: ") and not out.err
    assert main([]) == 2  # no command: the usage on stdout, status 2, no error line
    out = capsys.readouterr()
    assert out.out.startswith("usage: ") and not out.err


# -- errors before anything is written, and runs that die early ------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (["trainer.accelerator=gpu", "trainer.devices=2", "trainer.strategy=ddp"],
     "error: trainer.accelerator=gpu asks for 2 GPU(s) per machine and 0 are visible here"),  # make train GPUS=2
    (["trainer.accelerator=gpu"], "error: trainer.accelerator=gpu asks for 1 GPU(s) per machine and 0 are visible"),
    (["model.name=/nonexistent/models/mine"], "error: model.name=/nonexistent/models/mine: folder not found"),
    (["model.name=./no-such-model"], "error: model.name=./no-such-model: folder not found"),
])
def test_what_can_fail_before_training_fails_before_the_run_folder(roberta_dir, tmp_path, capsys, extra, message):
    import torch
    if "gpu" in " ".join(extra) and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    args = tiny_overrides(roberta_dir, tmp_path / "runs", *extra)
    if extra[0].startswith("model.name"):
        args = [a for a in args if not a.startswith("model.name=")] + extra
    status, lines = main_stderr(capsys, "train", *args)
    assert status == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    assert not (tmp_path / "runs").exists()


def test_a_run_that_dies_before_its_first_checkpoint_leaves_nothing(roberta_dir, tmp_path, monkeypatch):
    from lit_infoprompt.config import load_config
    from lit_infoprompt.model.module import PromptClassifier
    from lit_infoprompt.train.runner import run

    def broken(self, batch, batch_idx):
        raise RuntimeError("CUDA error: an illegal memory access")
    monkeypatch.setattr(PromptClassifier, "training_step", broken)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        run(load_config(tiny_overrides(roberta_dir, tmp_path / "runs")))
    assert not list((tmp_path / "runs").rglob("version_*"))  # no config.yaml + split.json husk


def test_an_interrupted_run_says_how_to_resume_and_resuming_is_quiet(roberta_dir, tmp_path, monkeypatch, caplog):
    import warnings

    from lit_infoprompt.config import load_config
    from lit_infoprompt.model.module import PromptClassifier
    from lit_infoprompt.train.runner import run

    real = PromptClassifier.training_step

    def ctrl_c_at_step_4(self, batch, batch_idx):
        if self.trainer.global_step == 4:
            raise KeyboardInterrupt
        return real(self, batch, batch_idx)
    monkeypatch.setattr(PromptClassifier, "training_step", ctrl_c_at_step_4)
    with pytest.raises((SystemExit, KeyboardInterrupt)):
        run(load_config(tiny_overrides(roberta_dir, tmp_path / "runs")))
    run_dir = tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_0"
    assert (run_dir / "checkpoints/last.ckpt").is_file()  # the evaluation at step 3 saved it: kept
    assert f"resume it with `make train RESUME={run_dir}`" in caplog.text
    monkeypatch.setattr(PromptClassifier, "training_step", real)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run(load_config([*tiny_overrides(roberta_dir, tmp_path / "runs"), f"resume={run_dir}"]))
    assert summary["steps"] == 6
    assert not [w for w in caught if "not resumable" in str(w.message)]  # resume is exact: no such warning
