"""Multi-process and mixed-precision paths, on CPU: gloo processes and CPU bf16 autocast stand in for NCCL and GPUs.

Each test fails on the code before these fixes: sweeps under DDP, ddp_spawn, a process without dev examples,
bf16-rounded logits, the cache's precision and DDP's buffer re-broadcast, one process's non-finite loss, and
rank-0-only training terms."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import tiny_overrides, tiny_roberta
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.sweep.comparison_runs import compare
from lit_infoprompt.errors import InputError
from lit_infoprompt.train.runner import build, make_trainer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lit_infoprompt", *args], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=timeout)


def test_a_sweep_refuses_ddp_and_points_to_workers(roberta_dir, tmp_path):
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.devices=2", "trainer.strategy=ddp")
    with pytest.raises(InputError, match=r"not DDP over 2 processes .* use WORKERS=N"):
        compare([*args, "methods=[prompt_tuning]", "seeds=[13]"])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork", "ddp_notebook"])
def test_spawning_strategies_are_refused_in_one_line(roberta_dir, tmp_path, strategy):
    result = cli("train", *tiny_overrides(roberta_dir, tmp_path / "runs", f"trainer.strategy={strategy}"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and f"trainer.strategy={strategy} is not supported" in lines[0]


def test_every_process_needs_a_dev_example(roberta_dir, tmp_path):
    # CB with 1 shot per class: 3 dev examples for 4 processes
    result = cli("train", *tiny_overrides(roberta_dir, tmp_path / "runs", "data.shots=1", "trainer.devices=4",
                                          "trainer.strategy=ddp"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "the dev set has 3 examples for 4 processes" in lines[0]
    assert not (tmp_path / "runs").exists()


def make(tiny_config, tokenizer, *extra):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    return build(tiny_config(*extra), backbone, tokenizer)


def test_head_and_losses_run_in_float32_under_bf16_autocast(tiny_config, tokenizer):
    module, datamodule, _ = make(tiny_config, tokenizer, "method=infoprompt")
    module.ensure_cache(datamodule)
    batch = next(iter(datamodule.train_dataloader()))
    from test_model import prompted
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = module(batch)
        terms = module.losses(batch)
        embeds, attention, mask_pos = prompted(module, batch)
        hidden = module.backbone.encode(embeds, attention)  # the encoder runs in bf16, as in a bf16-mixed run
    assert logits.dtype == torch.float32 and all(t.dtype == torch.float32 for t in terms.values())
    rows = torch.arange(len(batch["labels"]))
    h = hidden[rows, mask_pos]  # from bf16 matmuls (the last LayerNorm returns float32 on CPU)
    # step 0 still equals the verbalizer: the MLM transform and decoder in float32 on the same encoder states
    mlm = module.backbone.model
    with torch.no_grad():
        vocab = mlm.lm_head(h.float())  # RobertaLMHead: dense -> gelu -> layer_norm -> decoder, float32
    label_ids = [tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in ("yes", "no", "maybe")]
    prompt_tuning, _, _ = make(tiny_config, tokenizer)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = prompt_tuning(batch)
    torch.testing.assert_close(ours, vocab[:, label_ids], rtol=1e-5, atol=1e-5)


def test_ddp_does_not_rebroadcast_the_cache_and_the_cache_follows_the_precision(tiny_config, tokenizer, tmp_path):
    from lightning.pytorch.strategies import DDPStrategy

    config = tiny_config("trainer.devices=2", "trainer.strategy=ddp")
    trainer = make_trainer(config, tmp_path, [], [])
    kwargs = trainer.strategy._ddp_kwargs  # torch's newer name for it, or the older one
    assert isinstance(trainer.strategy, DDPStrategy)
    assert kwargs.get("forward_sync_buffers", kwargs.get("broadcast_buffers")) is False
    module, datamodule, _ = make(tiny_config, tokenizer, "method=infoprompt", "trainer.precision=bf16-mixed")
    module._trainer = make_trainer(tiny_config("trainer.precision=bf16-mixed"), tmp_path, [], [])
    module.ensure_cache(datamodule)
    rows = datamodule.rows()
    batch = datamodule.collate(rows[:4])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = module.backbone.encode(module.backbone.embed(batch["input_ids"]), batch["attention_mask"])
    r0 = module.backbone.head_input(hidden[torch.arange(4), batch["mask_pos"]])
    torch.testing.assert_close(module.free_mask[:4], r0)  # computed as the prompted states are: under bf16 autocast
    assert module.free_mask.dtype == torch.float32


NAN_ON_RANK_1 = textwrap.dedent("""
    import sys
    import torch
    from lit_infoprompt.model.module import PromptClassifier
    from lit_infoprompt.__main__ import main

    losses = PromptClassifier.losses

    def poisoned(self, batch):  # a non-finite loss on the second process only, from step 2
        terms = losses(self, batch)
        if self.global_rank == 1 and self.global_step >= 2:
            terms["loss/ce"] = terms["loss/ce"] * float("nan")
        return terms

    PromptClassifier.losses = poisoned
    sys.exit(main(["train", *sys.argv[1:]]))
""")


def test_a_non_finite_loss_on_one_process_stops_every_process_with_status_3(roberta_dir, tmp_path):
    script = tmp_path / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1)
    args = tiny_overrides(roberta_dir, tmp_path / "runs", "data.batch_size=2", "trainer.devices=2",
                          "trainer.strategy=ddp", "trainer.max_steps=20", "trainer.val_every=2")
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                            env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT)  # this checkout's package
    assert result.returncode == 3, result.stderr[-2000:]
    # both processes stop at the same step with the message (their stderr lines may interleave)
    assert result.stderr.count("error: non-finite loss") == 2
    assert "error: non-finite loss: train/loss/ce at step 2;" in result.stderr
    assert "error: non-finite loss: the loss of another process at step 2;" in result.stderr


def test_processes_started_by_torchrun_share_one_run_directory(roberta_dir, tmp_path):
    # torchrun starts both processes itself (no Lightning launcher to pass the directory on): rank 0's run
    # directory reaches rank 1 through the TCP store
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "lit_infoprompt", "train",
                             *tiny_overrides(roberta_dir, tmp_path / "runs", "data.batch_size=2", "trainer.devices=2",
                                             "trainer.strategy=ddp")],
                            capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "runs").rglob("version_*"))
    assert len(runs) == 1, runs
    assert (runs[0] / "summary.json").is_file() and (runs[0] / "checkpoints/best.ckpt").is_file()
