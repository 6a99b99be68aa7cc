"""Long-run safety, as a user meets it: a run killed by a real signal resumes to the same result, two
CPU processes (DDP, gloo) give the metrics of one, W&B offline writes its run files."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_overrides

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_SILENT": "true"}
ENV.pop("WANDB_API_KEY", None)


def train(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "lit_infoprompt", "train", *args], capture_output=True, text=True,
                          env={**ENV, **kwargs.pop("env", {})}, timeout=600)


def summary_of(out_dir: Path) -> dict:
    return json.loads(next(out_dir.rglob("summary.json")).read_text())


def dev_curve(run_dir: Path):
    """Every column of curve.csv but the clock: dev metrics, train loss means and estimator diagnostics."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader((run_dir / "curve.csv").open())]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["prompt_tuning", "infoprompt", "prompt_tuning_bottleneck"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(roberta_dir, tmp_path, method):
    # the bottleneck methods draw noise every step: equal only if the RNG state travels with the checkpoint
    args = tiny_overrides(roberta_dir, tmp_path / "killed", "trainer.max_steps=600", "trainer.val_every=10",
                          f"method={method}")
    process = subprocess.Popen([sys.executable, "-m", "lit_infoprompt", "train", *args], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = tmp_path / f"killed/cb/4shot/{method}/seed13/version_0"
    deadline = time.time() + 300
    while not (run_dir / "checkpoints/last.ckpt").is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a few steps past the first checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "summary.json").exists(), "the run finished before it could be killed"
    resumed = train(f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert list(run_dir.glob("metrics.until_step*.csv")), "the first session's metrics.csv was kept"
    whole = train(*tiny_overrides(roberta_dir, tmp_path / "whole", "trainer.max_steps=600", "trainer.val_every=10",
                                  f"method={method}"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    a, b = summary_of(tmp_path / "killed"), summary_of(tmp_path / "whole")
    for key in ("test_acc", "test_f1_macro", "best_dev", "best_step", "final_dev", "dev_auc", "steps"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    assert dev_curve(run_dir) == dev_curve(Path(b["run_dir"]))
    again = train(f"resume={run_dir}")
    assert again.returncode == 2 and "it has finished" in again.stderr


@pytest.mark.slow
def test_two_cpu_processes_match_one(roberta_dir, tmp_path):
    one = train(*tiny_overrides(roberta_dir, tmp_path / "one", "data.batch_size=4"))
    two = train(*tiny_overrides(roberta_dir, tmp_path / "two", "data.batch_size=2", "trainer.devices=2",
                                "trainer.strategy=ddp"))
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = summary_of(tmp_path / "one"), summary_of(tmp_path / "two")
    runs = list((tmp_path / "two").rglob("version_*"))
    assert len(runs) == 1, "both processes write into one run directory"
    for key in ("test_acc", "test_f1_macro", "best_dev", "final_dev", "dev_step0"):
        assert a[key] == pytest.approx(b[key], abs=1e-4), key
    def dev_scores(summary):
        return [float(row[k]) for row in dev_curve(Path(summary["run_dir"])) for k in ("val/acc", "val/f1_macro")]
    assert dev_scores(b) == pytest.approx(dev_scores(a), abs=1e-4)
    def train_terms(summary):  # the mean over both processes' halves of each batch = the one process's value
        return [float(v) for row in dev_curve(Path(summary["run_dir"])) for k, v in row.items()
                if k.startswith("train/") and v != ""]
    assert len(train_terms(b)) > 0 and train_terms(b) == pytest.approx(train_terms(a), abs=1e-4)
    assert b["sizes"] == a["sizes"]
    import torch
    states = [torch.load(Path(s["run_dir"]) / "checkpoints/last.ckpt", weights_only=False) for s in (a, b)]
    assert states[0]["global_step"] == states[1]["global_step"] == 6
    for name, tensor in states[0]["state_dict"].items():  # the same global batches gave the same updates
        torch.testing.assert_close(states[1]["state_dict"][name], tensor, rtol=1e-4, atol=1e-5)



def test_wandb_offline_writes_its_run_files(roberta_dir, tmp_path):
    result = train(*tiny_overrides(roberta_dir, tmp_path / "runs", "logger=wandb", "wandb.mode=online"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "logging offline" in result.stderr  # no API key here: online falls back to offline
    run_dir = next((tmp_path / "runs").rglob("version_0"))
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(wandb_runs) == 1 and wandb_runs[0].stat().st_size > 0
    assert (run_dir / "summary.json").is_file() and (run_dir / "metrics.csv").is_file()


def test_wandb_with_a_key_and_no_network_decides_at_once_and_logs_offline(roberta_dir, tmp_path):
    """A key, and a W&B host that takes no connection: one line says it logs offline, no online start is tried
    (it would wait for wandb.init's timeout and leave a half-made online run folder)."""
    import socket
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: every connection is refused
        result = train(*tiny_overrides(roberta_dir, tmp_path / "runs", "logger=wandb", "wandb.mode=online"),
                       env={"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": f"http://127.0.0.1:{port}"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "W&B" in line]
    assert len(lines) == 1 and "cannot be reached: logging offline" in lines[0], lines
    run_dir = next((tmp_path / "runs").rglob("version_0"))
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert not list((run_dir / "wandb").glob("run-*"))  # no half-made online run for `wandb sync` to trip on


def test_a_failed_online_start_says_so_and_leaves_no_online_folder(tmp_path, monkeypatch, caplog):
    import lightning.pytorch.loggers as loggers

    from lit_infoprompt.config import load_config
    from lit_infoprompt.train import tracking

    class Stalled:  # what wandb.init does when its online start times out: a run folder, then an error
        def __init__(self, save_dir, **kwargs):
            (Path(save_dir) / "wandb/run-20261206_000000-abc").mkdir(parents=True)

        @property
        def experiment(self):
            raise RuntimeError("timed out waiting for the W&B server")
    monkeypatch.setattr(loggers, "WandbLogger", Stalled)
    config = load_config(["wandb.mode=online"])
    split = {"protocol": "per_class", "size": 4}
    logger, why = tracking._start(config, tmp_path, split, "online", tmp_path)
    assert logger is None and why == "RuntimeError: timed out waiting for the W&B server"
    assert not list((tmp_path / "wandb").glob("run-*"))  # the half-made online run is removed

    monkeypatch.setattr(tracking, "has_api_key", lambda: True)
    monkeypatch.setattr(tracking, "wandb_reachable", lambda timeout=0: True)
    monkeypatch.setattr(tracking, "_start", lambda c, r, s, mode, d: (None, "CommError: timed out") if mode == "online"
                        else ("offline logger", ""))
    assert tracking.wandb_logger(config, tmp_path, split) == "offline logger"
    assert "online start failed (CommError: timed out): logging offline" in caplog.text
    assert "continuing without it" not in caplog.text


def test_an_interrupted_checkpoint_write_leaves_the_old_file(tmp_path, monkeypatch):
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    from lit_infoprompt.train.checkpointing import AtomicCheckpointIO
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"previous checkpoint")

    def killed_mid_write(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"half a checkp")
        raise KeyboardInterrupt
    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({}, target)
    assert target.read_bytes() == b"previous checkpoint"
