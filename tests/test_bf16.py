"""bf16-mixed training (the GPU default) for every method preset and every prompt kind, on CPU autocast.

Lightning's ``precision="bf16-mixed"`` on the CPU runs the step under ``torch.autocast("cpu", torch.bfloat16)``, as a
GPU run does under CUDA autocast: the prompt comes out of the autocast region (an instance prompt's generator in
bf16) and then feeds the losses, which run with autocast off. Each case takes two optimiser steps through a Lightning
Trainer and checks that every step's loss is finite and that the prompt's parameters received a finite, non-zero
gradient at each step, then evaluates one dev batch."""

from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import tiny_roberta
from lit_infoprompt.config import CHOICES
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.train.runner import build

ROOT = Path(__file__).resolve().parents[1]
METHODS = sorted(path.stem for path in (ROOT / "conf" / "method").glob("*.yaml"))
KINDS = CHOICES["prompt.kind"]


class StepRecord(L.Callback):
    """Each step's loss and the prompt parameters' gradients, as backward left them."""

    def __init__(self):
        self.losses, self.grads = [], []

    def on_after_backward(self, trainer, module):
        self.grads.append({name: None if p.grad is None else p.grad.detach().clone()
                           for name, p in module.prompt.named_parameters() if p.requires_grad})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(outputs["loss"].detach().clone())


def test_the_presets_and_kinds_are_the_ones_the_config_offers():
    assert {"prompt_tuning", "infoprompt", "infoprompt_plus", "infoprompt_head", "infoprompt_rep"} <= set(METHODS)
    assert set(KINDS) == {"static", "instance"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_and_prompt_kind_trains_under_bf16_mixed(tiny_config, tokenizer, tmp_path, method, kind):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    config = tiny_config(f"method={method}", f"prompt.kind={kind}", "trainer.precision=bf16-mixed")
    module, datamodule, _ = build(config, backbone, tokenizer)
    record = StepRecord()
    trainer = L.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", max_steps=2, limit_val_batches=1,
                        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[record], default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 and len(record.losses) == 2 and len(record.grads) == 2
    for loss in record.losses:
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    for grads in record.grads:
        assert grads, "the prompt has no trainable parameters"
        for name, grad in grads.items():
            assert grad is not None, f"prompt.{name} received no gradient"
            assert torch.isfinite(grad).all() and grad.abs().sum() > 0, f"prompt.{name}: {grad}"
    if method != "prompt_tuning":
        assert set(module.last_terms) > {"loss/ce"}  # the method's MI/KL terms ran in the step
    results = trainer.validate(module, datamodule=datamodule, verbose=False)  # evaluation under bf16 autocast too
    assert results and all(torch.isfinite(torch.tensor(v)) for v in results[0].values())


@pytest.mark.parametrize("method", ["infoprompt", "infoprompt_plus"])
def test_a_bfloat16_backbone_with_instance_prompts_trains_under_bf16_mixed(tiny_config, tokenizer, tmp_path, method):
    """The GPU's memory-saving form: bfloat16 frozen weights (so bfloat16 cached states) and bf16-mixed autocast."""
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False, dtype=torch.bfloat16)
    config = tiny_config(f"method={method}", "prompt.kind=instance", "model.dtype=bfloat16",
                         "trainer.precision=bf16-mixed")
    module, datamodule, _ = build(config, backbone, tokenizer)
    record = StepRecord()
    trainer = L.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", max_steps=2, limit_val_batches=0,
                        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[record], default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)
    assert len(record.losses) == 2 and all(torch.isfinite(loss) for loss in record.losses)
    assert all(p.dtype == torch.float32 for p in module.parameters() if p.requires_grad)
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
               for grads in record.grads for g in grads.values())
