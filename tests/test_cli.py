"""End to end through the command line, as a user runs it: a few steps into a temporary directory."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import tiny_overrides


def main_in_process(capsys, *args):
    """(exit status, last stderr line) of the CLI's main(), without a subprocess."""
    from lit_infoprompt.__main__ import main
    status = main(list(args))
    return status, capsys.readouterr().err.strip().splitlines()[-1]


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
    assert f"test_acc {summary['test_acc']:.4f}" in result.stdout


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
    (["task=nosuchtask"], "error: unknown task 'nosuchtask' (known: boolq, cb, copa, rte, semeval, wic)"),
    (["task.template='{premise} {hypothesis}'"], "error: task.template must contain exactly one <mask>"),
    (["task.template={premise} {hypothesis}"], "error: cannot parse override 'task.template={premise} {hypothesis}'"),
    (["task=semeval", "data.shots=2"], "error: class 'Component-Whole(e2,e1)' has 0 training examples"),
])
def test_bad_task_settings_exit_2(roberta_dir, tmp_path, capsys, extra, message):
    status, last = main_in_process(capsys, "train", *tiny_overrides(roberta_dir, tmp_path / "runs", *extra))
    assert status == 2 and last.startswith(message)
    assert not (tmp_path / "runs").exists()
