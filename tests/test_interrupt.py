"""Ctrl-C during ``train``, as a user presses it: a real process on the committed tiny model gets SIGINT once its run
has started. Before the first checkpoint the run folder is removed and one line says nothing was saved and why;
after one, the checkpoints stay and one line says how to resume; either way the exit status is 130. And Lightning's
"does not have many workers" warning is not shown for the few-shot loaders."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
TINY = FIXTURES / "models" / "tiny-roberta"


def train_args(out_dir: Path, *extra: str) -> list:
    return ["train", f"model.name={TINY}", f"data.dir={FIXTURES}", f"out_dir={out_dir}", "data.shots=4",
            "data.batch_size=4", "model.max_length=64", "prompt.length=4", "trainer.progress_bar=false",
            "trainer.accelerator=cpu", *extra]


def start(args: list, code: str = "") -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-c", code + "import sys\nfrom lit_infoprompt.__main__ import main\n"
               "sys.exit(main(sys.argv[1:]))", *args] if code else [sys.executable, "-m", "lit_infoprompt", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt_when(process: subprocess.Popen, ready, timeout: float = 240) -> tuple:
    """SIGINT once ``ready()`` holds (the run has started); (exit status, stderr lines)."""
    try:
        started = time.monotonic()
        while not ready():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() - started < timeout, "the run did not start"
            time.sleep(0.1)
        time.sleep(1.0)  # inside validation or fit
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # the test failed: leave no training process behind
            process.kill()
            process.communicate()
    return process.returncode, [line for line in err.splitlines() if line.strip()]


def test_ctrl_c_before_the_first_checkpoint_removes_the_run_and_says_so(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "cb/4shot/prompt_tuning/seed13/version_0"
    process = start(train_args(runs, "trainer.max_steps=100000", "trainer.val_every=50000"))
    status, lines = interrupt_when(process, lambda: (run_dir / "config.yaml").is_file())
    said = [line for line in lines if "interrupt" in line.lower()]
    assert status == 130, lines
    assert len(said) == 1 and said[0] == lines[-1], lines  # one line, the last; not Lightning's own
    assert said[0].startswith("interrupted at step ") and "before the first checkpoint" in said[0]
    assert "every 50000 steps" in said[0] and said[0].endswith(f"nothing was saved, {run_dir} removed")
    assert not any("Traceback" in line for line in lines)
    assert not run_dir.exists()


def test_ctrl_c_after_a_checkpoint_keeps_it_and_says_how_to_resume(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "cb/4shot/prompt_tuning/seed13/version_0"
    process = start(train_args(runs, "trainer.max_steps=100000", "trainer.val_every=2"))
    status, lines = interrupt_when(process, lambda: (run_dir / "checkpoints/last.ckpt").is_file())
    said = [line for line in lines if "interrupt" in line.lower()]
    assert status == 130, lines
    assert len(said) == 1 and said[0] == lines[-1], lines
    assert said[0].startswith("interrupted at step ")
    assert said[0].endswith(f": resume it with `make train RESUME={run_dir}` (python -m lit_infoprompt train "
                            f"resume={run_dir})")
    assert (run_dir / "checkpoints/last.ckpt").is_file() and not (run_dir / "summary.json").exists()


def test_the_few_shot_loaders_raise_no_workers_warning(tmp_path):
    """Lightning warns when a loader has fewer workers than its bound (here forced to 8; on a 2-core machine it is 1
    and it would never say it): the run must not show it."""
    patch = ("import lightning.pytorch.trainer.connectors.data_connector as dc\n"
             "dc.suggested_max_num_workers = lambda devices: 8\n")
    process = start(train_args(tmp_path / "runs", "trainer.max_steps=2", "trainer.val_every=2"), code=patch)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    assert "does not have many workers" not in err
    assert (tmp_path / "runs/cb/4shot/prompt_tuning/seed13/version_0/summary.json").is_file()
