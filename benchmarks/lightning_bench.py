"""The path users get, timed: ``trainer.fit`` on the datamodule's padded batches, ours against HF PEFT prompt tuning.

``make bench-gpu`` (bench.py) times a hand-written step on fixed-length random batches; this times what a run
does: Lightning's training loop (precision plugin, logging, the finite-loss check) over the few-shot datamodule's
batches, each padded to its longest example. PEFT runs in a small LightningModule of its own over the same
datamodule, the same frozen encoder and the same verbalizer-initialised class head.

Per mode (``bf16-mixed``: float32 weights under autocast; ``bf16-weights``: ``model.dtype=bfloat16`` with
``32-true``), each method gets ``warmup + steps`` optimiser steps in one ``trainer.fit``; the timer callback
synchronises the device at every batch start and end. Reported: the median step (batch start to batch end: the
training step, backward and optimiser step) and the median gap between batch starts (also data loading and the
loop's own work), p10/p90, the fit's wall time and the padded widths seen.
"""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from lit_infoprompt.model.head import ClassHead

MODES = {"bf16-mixed": ("bf16-mixed", "float32"), "bf16-weights": ("32-true", "bfloat16")}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(Callback):
    """Wall time of every training batch (start to end) and between batch starts, device synchronised."""

    def __init__(self):
        self.steps, self.gaps, self.widths, self.real = [], [], [], []
        self._start = self._last = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        sync(pl_module.device)
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._start = self._last = now
        self.widths.append(int(batch["input_ids"].shape[1]))
        self.real.append(float(batch["attention_mask"].float().mean()))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        sync(pl_module.device)
        self.steps.append(time.perf_counter() - self._start)


class PeftClassifier(L.LightningModule):
    """HF PEFT prompt tuning (``num_virtual_tokens`` = our prompt length) on the frozen encoder, the class head on
    the ``<mask>`` state (shifted by the virtual tokens), cross-entropy, AdamW."""

    def __init__(self, backbone, head: ClassHead, prompt_length: int, lr: float = 1e-3):
        super().__init__()
        from peft import PromptTuningConfig, TaskType, get_peft_model

        config = PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=prompt_length)
        self.backbone = backbone
        self.peft = get_peft_model(backbone.encoder, config)
        self.head = ClassHead(head.vectors, head.bias)
        self.prompt_length, self.lr = prompt_length, lr

    def forward(self, batch):
        hidden = self.peft(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self.head(self.backbone.head_input(hidden[rows, batch["mask_pos"] + self.prompt_length]))

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self(batch).float(), batch["labels"])
        self.log("train/loss", loss, batch_size=batch["labels"].shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def trainer_for(precision: str, steps: int, accelerator: str, timer: StepTimer) -> L.Trainer:
    """The run's trainer settings that matter for speed (runner.make_trainer), without evaluation, logging to
    disk or checkpoints."""
    return L.Trainer(max_steps=steps, accelerator=accelerator, devices=1, precision=precision, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer], inference_mode=False,
                     use_distributed_sampler=False)


def summarise(timer: StepTimer, warmup: int, fit_s: float) -> dict:
    steps, gaps = timer.steps[warmup:], timer.gaps[warmup:]
    if not steps:
        raise RuntimeError(f"no timed steps ({len(timer.steps)} steps, {warmup} warm-up)")
    ordered = sorted(steps)
    return {"step_median_ms": 1e3 * statistics.median(steps), "step_p10_ms": 1e3 * ordered[len(ordered) // 10],
            "step_p90_ms": 1e3 * ordered[(9 * len(ordered)) // 10],
            "gap_median_ms": 1e3 * statistics.median(gaps) if gaps else None, "timed_steps": len(steps),
            "fit_s": fit_s, "padded_width_mean": statistics.mean(timer.widths),
            "padded_width_max": max(timer.widths), "real_token_fraction": statistics.mean(timer.real)}


def fit_timed(module, datamodule, precision: str, steps: int, warmup: int, accelerator: str) -> dict:
    timer = StepTimer()
    trainer = trainer_for(precision, warmup + steps, accelerator, timer)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    return summarise(timer, warmup, time.perf_counter() - started)


def run_mode(mode: str, make_backbone, overrides, steps: int, warmup: int, accelerator: str) -> dict:
    """Ours (prompt tuning, the project's module and datamodule) and PEFT, one ``trainer.fit`` each, in ``mode``."""
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train.runner import build

    precision, dtype = MODES[mode]
    backbone, tokenizer = make_backbone(dtype)
    config = load_config([*overrides, f"model.dtype={dtype}", f"trainer.precision={precision}",
                          f"trainer.max_steps={warmup + steps}"])
    module, datamodule, _ = build(config, backbone, tokenizer)
    result = {"precision": precision, "dtype": dtype, "batch_size": config.data.batch_size,
              "prompt_length": config.prompt.length, "max_length": config.model.max_length}
    result["ours"] = fit_timed(module, datamodule, precision, steps, warmup, accelerator)
    peft = PeftClassifier(backbone, module.head, config.prompt.length)
    result["peft"] = fit_timed(peft, datamodule, precision, steps, warmup, accelerator)
    result["ours/peft"] = result["ours"]["step_median_ms"] / result["peft"]["step_median_ms"]
    return result
