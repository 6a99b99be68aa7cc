"""What would break or stall on CUDA, shown on CPU with gloo processes: no collective after testing, no per-step
collectives or host syncs, the precision resolved before saving, the run directory handed over without a second
port, each process's own random state, a torchrun resume, checkpoints read onto the CPU."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(ROOT)}

COUNTING = textwrap.dedent("""
    import json, os, sys
    import lightning as L
    import torch
    import torch.distributed as dist
    import torch.distributed.distributed_c10d as c10d
    from lit_infoprompt.__main__ import main
    from lit_infoprompt.train import runner

    phase = {"now": "setup"}
    counts = {}

    def count(kind):
        key = f"{phase['now']}/{kind}"
        counts[key] = counts.get(key, 0) + 1

    NAMES = ("all_reduce", "all_gather", "all_gather_object", "all_gather_into_tensor", "broadcast",
             "broadcast_object_list", "reduce", "reduce_scatter", "reduce_scatter_tensor", "gather", "scatter",
             "barrier", "all_to_all")
    for name in NAMES:
        for namespace in (dist, c10d):
            real = getattr(namespace, name, None)
            if real is not None and not getattr(real, "_counted", False):
                def wrapped(*a, _real=real, **k):
                    count("collective")
                    return _real(*a, **k)
                wrapped._counted = True
                setattr(namespace, name, wrapped)
    # a tensor turned into a Python value by the project's training code or Lightning (not by the optimiser's CPU
    # step counters, the sampler's CPU indices or transformers' own mask check): a wait for the device on a GPU
    OURS = (os.sep + "lightning" + os.sep, os.sep + os.path.join("lit_infoprompt", "model") + os.sep,
            os.sep + os.path.join("lit_infoprompt", "train") + os.sep)
    for name in ("item", "__bool__", "__float__", "__int__", "tolist"):
        real = getattr(torch.Tensor, name)
        def wrapped(self, *a, _real=real, **k):
            caller = sys._getframe(1).f_code.co_filename
            if any(part in caller for part in OURS):
                count("host_sync")
            return _real(self, *a, **k)
        setattr(torch.Tensor, name, wrapped)

    class Phases(L.Callback):  # training: from the start of fit, and from the end of each evaluation
        def on_train_start(self, *a):
            phase["now"] = "train"
        def on_validation_start(self, *a):
            phase["now"] = "eval"

    from lit_infoprompt.model.module import PromptClassifier
    evaluated = PromptClassifier.on_validation_end  # module hooks run after every callback's (checkpoints too)
    def on_validation_end(self):
        evaluated(self)
        if self.trainer.training:
            phase["now"] = "train"
    PromptClassifier.on_validation_end = on_validation_end

    class End(L.Callback):
        def on_train_end(self, trainer, *a):
            phase["now"] = "end"
            counts["steps"] = trainer.global_step

    make_trainer = runner.make_trainer
    runner.make_trainer = lambda config, run_dir, callbacks, loggers: make_trainer(
        config, run_dir, [Phases(), End(), *callbacks], loggers)
    test = L.Trainer.test
    def tested(self, *a, **k):
        out = test(self, *a, **k)
        phase["now"] = "after_test"
        return out
    L.Trainer.test = tested
    try:
        status = main(["train", *sys.argv[2:]])
    finally:
        rank = os.environ.get("LOCAL_RANK", "0")
        with open(f"{sys.argv[1]}/counts.rank{rank}.json", "w") as handle:
            json.dump(counts, handle)
    sys.exit(status)
""")


def test_a_ddp_run_has_no_collective_after_testing_and_none_per_training_step(roberta_dir, tmp_path):
    script = tmp_path / "counting.py"
    script.write_text(COUNTING)
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "method=infoprompt", "data.batch_size=2",
                          "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_steps=16", "trainer.val_every=8")
    result = subprocess.run([sys.executable, str(script), str(tmp_path), *args], capture_output=True, text=True,
                            timeout=600, env=ENV, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = [json.loads((tmp_path / f"counts.rank{r}.json").read_text()) for r in (0, 1)]
    for rank, c in enumerate(counts):
        steps = c["steps"]
        assert steps == 16
        assert c.get("after_test/collective", 0) == 0, (rank, c)  # NCCL could not gather the CPU-side metric
        # python-level collectives while training (DDP's own gradient all-reduce is not one): at most 1 per 4 steps
        assert c.get("train/collective", 0) <= steps / 4, (rank, c)
        # host syncs while training, at most one per step on average: Lightning's logger turns the logged terms into
        # numbers every log_every_n_steps; no per-step finiteness check, progress-bar value or SIGTERM flag
        assert c.get("train/host_sync", 0) <= steps, (rank, c)


def test_the_precision_is_resolved_before_the_config_is_saved(tiny_config, monkeypatch):
    from lit_infoprompt.train import runner

    config = tiny_config()
    assert config.trainer.precision == "auto"
    runner.resolve_precision(config)
    assert config.trainer.precision == "32-true"  # CPU: what every archived run recorded
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda value: calls.append(value))
    calls = []
    gpu = tiny_config("trainer.accelerator=gpu")
    runner.resolve_precision(gpu)
    assert gpu.trainer.precision == "bf16-mixed" and calls == ["high"]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100")
    old = tiny_config("trainer.accelerator=gpu")
    runner.resolve_precision(old)
    assert old.trainer.precision == "32-true"
    chosen = tiny_config("trainer.accelerator=gpu", "trainer.precision=32-true")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    runner.resolve_precision(chosen)
    assert chosen.trainer.precision == "32-true"  # an explicit precision is kept
    cpu = tiny_config("trainer.accelerator=cpu")
    runner.resolve_precision(cpu)
    assert cpu.trainer.precision == "32-true"


def test_a_cpu_run_saves_32_true_and_matches_the_archived_runs(tiny_config):
    from lit_infoprompt.analysis.runs import as_dict, experiment_key, saved_dict
    from lit_infoprompt.train.runner import run

    summary = run(tiny_config())
    saved = saved_dict(Path(summary["run_dir"]) / "config.yaml")
    assert saved["trainer"]["precision"] == "32-true"
    archived = next((ROOT / "docs/results/runs").rglob("config.yaml"), None)
    if archived is not None:
        assert saved_dict(archived)["trainer"]["precision"] == "32-true"
    assert experiment_key(saved) == experiment_key(as_dict(tiny_config("trainer.precision=32-true")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(port: int, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                           "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "lit_infoprompt", *args],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=timeout)


def test_torchrun_hands_the_run_directory_over_without_a_second_port(roberta_dir, tmp_path):
    # a neighbouring job's process group listens on the next port: the run must not need it
    port = free_port()
    with socket.socket() as neighbour:
        try:
            neighbour.bind(("127.0.0.1", port + 1))
        except OSError:
            pytest.skip(f"port {port + 1} is taken")
        neighbour.listen()
        result = torchrun(port, "train", *tiny_overrides(roberta_dir, tmp_path / "runs", "data.batch_size=2",
                                                         "trainer.devices=2", "trainer.strategy=ddp"))
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "runs").rglob("version_*"))
    assert len(runs) == 1 and (runs[0] / "summary.json").is_file()


def torchrun_run(roberta_dir, tmp_path) -> Path:
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "method=infoprompt", "data.batch_size=2",
                          "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_steps=4", "trainer.val_every=2")
    first = torchrun(free_port(), "train", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    return next((tmp_path / "runs").rglob("version_*"))


def test_each_process_keeps_its_own_random_state(roberta_dir, tmp_path):
    run_dir = torchrun_run(roberta_dir, tmp_path)
    state = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    rng = next(v for k, v in state["callbacks"].items() if "RngState" in k)
    assert len(rng["ranks"]) == 2  # each process's own generators, gathered into rank 0's checkpoint
    assert not torch.equal(rng["ranks"][0]["torch"], rng["ranks"][1]["torch"])  # their own bottleneck noise


RECORD_RENAMES = textwrap.dedent("""
    import os, sys
    from lit_infoprompt.__main__ import main
    from lit_infoprompt.train import runner

    keep = runner.keep_metrics_csv
    def recorded(run_dir, last):  # which processes move metrics.csv aside (two at once: one FileNotFoundError)
        with open(os.path.join(sys.argv[1], f"renamed.rank{os.environ.get('RANK', '0')}"), "w"):
            pass
        return keep(run_dir, last)
    runner.keep_metrics_csv = recorded
    sys.exit(main(sys.argv[2:]))
""")


def test_a_torchrun_resume_moves_the_metrics_aside_once(roberta_dir, tmp_path):
    run_dir = torchrun_run(roberta_dir, tmp_path)
    (run_dir / "summary.json").unlink()  # as if it had stopped after its last checkpoint
    script = tmp_path / "record_renames.py"
    script.write_text(RECORD_RENAMES)
    again = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                            "--master-addr=127.0.0.1", f"--master-port={free_port()}", str(script), str(tmp_path),
                            "train", f"resume={run_dir}"], capture_output=True, text=True, env=ENV, cwd=ROOT,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("renamed.rank*")) == ["renamed.rank0"]
    assert len(list(run_dir.glob("metrics.until_step*.csv"))) == 1 and (run_dir / "summary.json").is_file()


def test_checkpoints_are_read_onto_the_cpu(tmp_path, monkeypatch):
    from lit_infoprompt.train.checkpointing import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / "a.ckpt")
    seen = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("map_location")) or real(*a, **k))
    loaded = io.load_checkpoint(tmp_path / "a.ckpt")
    assert seen == ["cpu"] and loaded["state_dict"]["w"].device.type == "cpu"
