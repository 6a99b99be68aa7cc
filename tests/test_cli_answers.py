"""A command line that answers at once: every command's ``--help``, and bad input (a wrong key or value, an unknown
task or preset, a model folder, data folder, ``--input`` file or run folder that is not there) answered with one
``error:`` line before torch is imported; ``make help``."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lit_infoprompt.__main__ import COMMAND_USAGE, COMMANDS, USAGE, command_usage, main
from lit_infoprompt.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_has_its_block_of_usage():
    missing = sorted(set(COMMANDS) - set(COMMAND_USAGE))
    assert not missing, f"add a COMMAND_USAGE block (synopsis, what it does) for {', '.join(missing)}"
    assert set(COMMAND_USAGE) <= set(COMMANDS)


def test_each_command_prints_its_own_usage_for_help(capsys):
    for name in COMMAND_USAGE:
        for flag in ("--help", "-h"):
            assert main([name, flag]) == 0, name
            out = capsys.readouterr()
            assert not out.err and out.out == command_usage(name) + "\n"
            assert out.out.startswith(f"usage: python -m lit_infoprompt {name}")
            synopsis, text = COMMAND_USAGE[name]
            assert synopsis in out.out.splitlines()[0] and text.splitlines()[0] in out.out
            assert f"  {name:<7} {synopsis}".rstrip() in USAGE  # the same block in the whole usage
    assert main(["train", "task=cb", "--help"]) == 0  # anywhere after the command
    assert capsys.readouterr().out.startswith("usage: python -m lit_infoprompt train [task=cb]")


def bad_inputs(tmp_path: Path) -> list:
    """(argv, exit status, the start of the last stderr line) for inputs that must be answered before torch."""
    run = tmp_path / "a-run"  # enough of a run directory for predict to look at its --input first
    run.mkdir()
    (run / "config.yaml").write_text("seed: 13\n")
    experiment = tmp_path / "no-model.yaml"
    experiment.write_text(f"task: cb\nshots: 4\nsteps: 6\nmodel: {tmp_path}/no-model\n"
                          "arms: {prompt_tuning: prompt_tuning, infoprompt: infoprompt}\nseeds: [13, 21, 42, 87]\n")
    missing = tmp_path / "missing"
    out = f"out_dir={tmp_path / 'runs'}"
    return [
        (["train", "--help"], 0, ""),
        (["experiment", "--help"], 0, ""),
        (["train", "trainer.max_stepz=2"], 2, "error: unknown config key 'trainer.max_stepz'"),
        (["train", "seed=abc"], 2, "error: bad value for 'seed' in the command line"),
        (["train", "prompt.init=nope"], 2, "error: prompt.init=nope is not one of"),
        (["train", "task=nosuchtask"], 2, "error: unknown task 'nosuchtask'"),
        (["train", "method=nosuch"], 2, "error: unknown method 'nosuch'"),
        (["train", f"model.name={missing}/model"], 2, f"error: model.name={missing}/model: folder not found"),
        (["train", f"data.dir={missing}"], 2, f"error: data file not found: {missing}/superglue/CB/train.jsonl"),
        (["train", f"resume={missing}/run"], 2, f"error: cannot resume {missing}/run: no such folder"),
        (["predict", str(run), "--input", f"{missing}/x.jsonl"], 2, f"error: --input {missing}/x.jsonl: no such file"),
        (["evaluate", str(run), "--input", f"{missing}/x.jsonl"], 2, f"error: --input {missing}/x.jsonl: no such"),
        (["predict", f"{missing}/run", "--input", f"{missing}/x.jsonl"], 2, f"error: {missing}/run: no such folder"),
        (["export-peft", f"{missing}/run", str(tmp_path / "out")], 2, f"error: {missing}/run: not a run directory"),
        (["experiment", str(experiment), "plan=true", out], 2,
         f"error: {experiment}: model: model.name={tmp_path}/no-model: folder not found"),
        (["compare", "methods=[prompt_tuning,infoprompt]", "seeds=[13]", f"data.dir={missing}", out], 2,
         f"error: data file not found: {missing}/superglue/CB/train.jsonl"),
        (["robustness", "methods=[prompt_tuning]", "seeds=[13]", f"model.name={missing}/model", out], 2,
         f"error: model.name={missing}/model: folder not found"),
    ]


def test_bad_input_is_answered_before_torch_is_imported(tmp_path):
    """One fresh process runs every case in turn: after each, torch must still be unimported (a case that imported
    it fails there, so the cases after it cannot hide it)."""
    cases = bad_inputs(tmp_path)
    code = """
import contextlib, io, json, sys
from lit_infoprompt.__main__ import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    results.append([rc, "torch" in sys.modules, err.getvalue().strip().splitlines()])
print(json.dumps(results))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps([argv for argv, _, _ in cases])], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    for (argv, status, start), (rc, torch_loaded, lines) in zip(cases, json.loads(out.stdout)):
        assert not torch_loaded, f"{argv} imported torch"
        assert rc == status, (argv, rc, lines)
        if start:
            assert len(lines) == 1 and lines[0].startswith(start), (argv, lines)
    assert not (tmp_path / "runs").exists()  # nothing was written


def saved_run(tmp_path: Path, *files: str) -> Path:
    from lit_infoprompt.config import load_config, to_yaml

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(load_config(["trainer.max_steps=6"])))
    for name in files:
        (run / name).write_text("")
    return run


@pytest.mark.parametrize("files, message", [
    ((), "no checkpoints/last.ckpt yet (it stopped before its first dev evaluation)"),
    (("checkpoints/last.ckpt", "summary.json"), "it has finished (summary.json exists)"),
])
def test_a_run_that_cannot_be_resumed_is_refused_before_anything_loads(tmp_path, files, message):
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train.preflight import check_run, resumable_config

    run = saved_run(tmp_path, *files)
    with pytest.raises(InputError, match=re.escape(message)):
        resumable_config(run)
    with pytest.raises(InputError, match="no config.yaml"):
        resumable_config(tmp_path)
    good = saved_run(tmp_path / "good", "checkpoints/last.ckpt")
    config = check_run(load_config([f"resume={good}"]))
    assert config.resume == str(good) and config.trainer.max_steps == 6  # the saved config is the one checked


def test_ctrl_c_before_a_run_starts_is_one_line_and_status_130(monkeypatch, capsys):
    import lit_infoprompt.train.preflight as preflight

    def interrupted(config):
        raise KeyboardInterrupt
    monkeypatch.setattr(preflight, "check_run", interrupted)
    assert main(["train"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted before the run started: nothing was saved"]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_help_prints_the_makefiles_header():
    out = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    text = (ROOT / "Makefile").read_text().splitlines()
    header = text[:next(i for i, line in enumerate(text) if not line.startswith("#"))]
    assert out.stdout.splitlines() == header and len(header) > 20
    assert any(line.startswith("#   make help") for line in header)
    assert any(line.startswith("#   make bench-cli") for line in header)


@pytest.mark.subprocess
def test_the_cli_benchmark_sees_every_call_answer_as_expected(tmp_path):
    """benchmarks/bench_cli.py (make bench-cli) checks each call's exit status and error line while it times it:
    run once, every call must behave (timings are reported, never asserted)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_cli

    out = tmp_path / "bench-cli.json"
    assert bench_cli.main(["--repeat", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert not result["failures"]
    calls = [row["call"] for row in result["rows"]]
    assert "import torch" in calls and any("bad key" in c for c in calls) and any("--input" in c for c in calls)
    assert all(row["median_s"] > 0 and "ratio_to_import_torch" in row for row in result["rows"])
