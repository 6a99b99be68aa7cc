"""The LightningModule: frozen backbone + soft prompt + class head, trained with AdamW.

One trainable predicate (``requires_grad``) decides what the optimiser sees, what is counted as
trainable and what a checkpoint stores: the frozen backbone is never written to a checkpoint.
"""

from __future__ import annotations

from typing import Dict, Set

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from lit_infoprompt.backbone import Backbone
from lit_infoprompt.config import OptimConfig
from lit_infoprompt.head import ClassHead
from lit_infoprompt.prompt import SoftPrompt


def eval_metrics(num_classes: int, prefix: str) -> MetricCollection:
    return MetricCollection({"acc": MulticlassAccuracy(num_classes, average="micro"),
                             "f1_macro": MulticlassF1Score(num_classes, average="macro")}, prefix=prefix)


def warmup_then_linear_decay(warmup_steps: int, total_steps: int):
    """LambdaLR factor: 0 -> 1 over ``warmup_steps``, then 1 -> 0 at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


class PromptClassifier(L.LightningModule):
    def __init__(self, backbone: Backbone, prompt: SoftPrompt, head: ClassHead, optim: OptimConfig,
                 max_steps: int):
        super().__init__()
        self.backbone = backbone
        self.prompt = prompt
        self.head = head
        self.optim = optim
        self.max_steps = max_steps
        num_classes = head.vectors.shape[0]
        self.val_metrics = eval_metrics(num_classes, "val/")
        self.test_metrics = eval_metrics(num_classes, "test/")

    # -- what is trainable -------------------------------------------------------------------------
    def trainable_names(self) -> Set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def parameter_counts(self) -> Dict[str, int]:
        params = dict(self.named_parameters())
        trainable = self.trainable_names()
        return {"trainable": sum(p.numel() for n, p in params.items() if n in trainable),
                "frozen": sum(p.numel() for n, p in params.items() if n not in trainable)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_names()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # The checkpoint holds trainable tensors only; the frozen ones come from the loaded backbone,
        # so strict loading still catches a missing or misnamed trainable tensor.
        keep = self.trainable_names()
        frozen = {k: v for k, v in self.state_dict().items() if k not in keep}
        checkpoint["state_dict"] = {**frozen, **checkpoint["state_dict"]}

    # -- forward -----------------------------------------------------------------------------------
    def mask_states(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """h_P(x): the last hidden state at <mask> with the prompt inserted. (B, d)"""
        embeds = self.backbone.embed(batch["input_ids"])  # (B, T, d)
        embeds, attention = self.prompt.prepend(embeds, batch["attention_mask"])  # (B, n+T, d)
        hidden = self.backbone.encode(embeds, attention)  # (B, n+T, d)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, batch["mask_pos"] + self.prompt.length]

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.backbone.head_input(self.mask_states(batch)))  # (B, C)

    def losses(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        logits = self(batch)
        return {"ce": F.cross_entropy(logits.float(), batch["labels"])}

    # -- steps -------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        terms = self.losses(batch)
        loss = sum(terms.values())
        size = batch["labels"].shape[0]
        self.log_dict({f"train/loss/{k}": v for k, v in terms.items()}, batch_size=size)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        return loss

    def _evaluate(self, batch, metrics: MetricCollection):
        metrics.update(self(batch).argmax(-1), batch["labels"])
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch["labels"].shape[0])

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_metrics)

    def configure_optimizers(self):
        prompt_params = [p for p in self.prompt.parameters() if p.requires_grad]
        prompt_ids = {id(p) for p in prompt_params}
        other = [p for p in self.parameters() if p.requires_grad and id(p) not in prompt_ids]
        optimizer = torch.optim.AdamW([{"params": prompt_params, "lr": self.optim.prompt_lr},
                                       {"params": other, "lr": self.optim.head_lr}],
                                      weight_decay=self.optim.weight_decay)
        warmup = int(self.optim.warmup_ratio * self.max_steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_linear_decay(warmup, self.max_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

