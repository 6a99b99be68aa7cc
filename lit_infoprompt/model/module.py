"""The LightningModule: frozen backbone + soft prompt + class head (+ InfoPrompt's estimator networks).

Vanilla prompt tuning and InfoPrompt are one code path: ``losses`` adds the MI terms whose weights are
non-zero, and only the networks those terms need are built. One trainable predicate
(``requires_grad``) decides what the optimiser sees, what is counted as trainable and what a checkpoint
stores: the frozen backbone is never written to a checkpoint.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Optional, Set

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection, SumMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from lit_infoprompt.model.backbone import Backbone
from lit_infoprompt.model.bottleneck import PromptContext, VariationalBottleneck
from lit_infoprompt.model.cache import cache_key, prompt_free_states
from lit_infoprompt.config import MethodConfig, OptimConfig
from lit_infoprompt.errors import NonFiniteLoss
from lit_infoprompt.model.estimators import (Critic, ceiling, clamped_mean, gaussian_kl, gaussian_kl_per_dim,
                                             mi_lower_bound)
from lit_infoprompt.model.head import ClassHead
from lit_infoprompt.model.losses import head_nce, mi_weight, representation_nce
from lit_infoprompt.model.prompt import InstancePrompt, insert_slots, insertion_points


def warmup_then_linear_decay(warmup_steps: int, total_steps: int):
    """LambdaLR factor: 0 -> 1 over ``warmup_steps``, then 1 -> 0 at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


NEVER = 2 ** 62  # first_nonfinite: no non-finite value yet


def estimate_diagnostics(term: str, per_example: torch.Tensor, count: torch.Tensor) -> Dict[str, torch.Tensor]:
    """A term's InfoNCE estimate in nats, its ceiling (the batch mean of log(M_i + 1)) and the fraction of it."""
    estimate, top = mi_lower_bound(per_example, count), ceiling(count, per_example.dtype)
    return {f"mi_{term}_nats": estimate, f"mi_{term}_ceiling_nats": top, f"mi_{term}_frac_of_ceiling": estimate / top}


def full_precision(tensor: torch.Tensor):
    """Autocast off on the tensor's device: the code inside runs in the tensors' own dtypes (float32 here)."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)


class PromptClassifier(L.LightningModule):
    def __init__(self, backbone: Backbone, prompt: nn.Module, head: ClassHead, method: MethodConfig,
                 optim: OptimConfig, max_steps: int, metrics: MetricCollection, placement: str = "prefix",
                 num_negatives: int = 32):
        super().__init__()
        self.backbone = backbone
        self.prompt = prompt
        self.head = head
        self.method = method
        self.optim = optim
        self.max_steps = max_steps
        self.placement = placement
        self.num_negatives = method.num_negatives or num_negatives
        d = backbone.head_size  # r = g(h); the prompt lives in the word-embedding space of the same width
        self.bottleneck = (VariationalBottleneck(d, method.bottleneck_dim, method.bottleneck_form)
                           if method.bottleneck else None)
        self.context = PromptContext(d) if method.rep_weight > 0 else None
        # options beyond the reference (defaults: its <a,c>/sqrt d critics and W_o shared with the classifier)
        self.head_critic = Critic(method.head_critic, method.head_temperature) if method.head_weight > 0 else None
        self.rep_critic = Critic(method.rep_critic, method.rep_temperature) if method.rep_weight > 0 else None
        self.rep_projection = (nn.Linear(method.bottleneck_dim, d)
                               if method.rep_weight > 0 and method.rep_projection == "own" else None)
        self.needs_cache = isinstance(prompt, InstancePrompt) or method.rep_weight > 0 or method.kl_weight > 0
        self.register_buffer("free_mask", torch.empty(0), persistent=False)  # (N, d) r_0 per row index
        self.register_buffer("free_cls", torch.empty(0), persistent=False)  # (N, d) h_0,cls per row index
        self.cache_key: Optional[str] = None
        self.last_terms: Dict[str, torch.Tensor] = {}  # detached loss terms of the latest step (DevCurve reads them)
        self.last_diagnostics: Dict[str, torch.Tensor] = {}  # detached estimator diagnostics of the latest step
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # the test set's confusion matrix (gold x predicted), for intervals over test examples (bootstrap) in compare
        self.test_confusion = MulticlassConfusionMatrix(head.vectors.shape[0])
        self.test_confusion_result: Optional[torch.Tensor] = None  # computed inside the test loop (on CPU)
        # test examples whose two highest logits tie (argmax would pick the first class): a degenerate head
        self.test_ties = SumMetric()
        self.test_ties_result: Optional[int] = None
        # per loss term (and the total, last): the first step whose value was not finite, NEVER if none; kept on
        # the device, so a step waits for nothing; decided once per evaluation (check_finite)
        self.first_nonfinite: Optional[torch.Tensor] = None
        self.term_names: list = []

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

    def attached_trainer(self) -> Optional[L.Trainer]:
        """The Trainer this module is attached to, or None: the cache and the finiteness check also run without
        one (tests, sweeps, prediction), where Lightning's ``self.trainer`` raises rather than answering None."""
        try:
            return self.trainer
        except RuntimeError:  # "... is not attached to a `Trainer`."
            return None

    # -- the prompt-free cache ---------------------------------------------------------------------
    def ensure_cache(self, datamodule) -> None:
        """Compute r_0 and h_0,cls for the rows the method needs, unless a cache with the same key exists."""
        if not self.needs_cache:
            return
        rows = datamodule.rows(all_splits=isinstance(self.prompt, InstancePrompt))
        key = cache_key(*datamodule.cache_identity, rows)
        if key == self.cache_key:
            return
        trainer = self.attached_trainer()
        precision = trainer.precision_plugin.forward_context() if trainer is not None else contextlib.nullcontext()
        with precision:  # the run's precision, as the prompted states that are compared with these
            self.free_mask, self.free_cls = prompt_free_states(self.backbone, rows, datamodule.collate,
                                                               datamodule.config.data.eval_batch_size, self.device)
        self.cache_key = key

    def on_fit_start(self):
        self.ensure_cache(self.trainer.datamodule)

    def on_test_start(self):
        self.ensure_cache(self.trainer.datamodule)

    # -- forward -----------------------------------------------------------------------------------
    def encode(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """One encoder pass with the prompt: token embeddings, the prompt P and r_P = g(h_P) at <mask>."""
        ids, attention, mask_pos = batch["input_ids"], batch["attention_mask"], batch["mask_pos"]
        tokens = self.backbone.embed(ids)  # (B, T, d)
        free_cls = self.free_cls[batch["index"]] if isinstance(self.prompt, InstancePrompt) else None
        prompt = self.prompt(ids.shape[0], free_cls)  # (B, n, d)
        points = insertion_points(self.placement, attention, mask_pos)
        embeds, mask, shift = insert_slots(tokens, attention, prompt, points)  # (B, n+T, d)
        hidden = self.backbone.encode(embeds, mask)  # (B, n+T, d)
        rows = torch.arange(ids.shape[0], device=ids.device)
        h = hidden[rows, mask_pos + shift[rows, mask_pos]]  # (B, d)
        # The MLM transform, the head, the estimator networks and the losses run in float32 outside autocast,
        # whatever the backbone's dtype and the run's precision (B x d: cheap): bf16 logits would tie.
        return {"tokens": tokens, "prompt": prompt, "r": self.backbone.head_input(h)}

    def classify(self, r: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Logits from the head input; through the bottleneck when the method has one (float32, no autocast)."""
        with full_precision(r):
            if self.bottleneck is None:
                return {"logits": self.head(r)}
            u, mu, log_sigma, z = self.bottleneck(r)
            return {"logits": self.head(u), "mu": mu, "log_sigma": log_sigma, "z": z}

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classify(self.encode(batch)["r"])["logits"]  # (B, C)

    def losses(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Every loss term by its log name; the whole method difference is in this function. Also keeps the
        step's estimator diagnostics (detached) in ``last_diagnostics``."""
        enc = self.encode(batch)
        out = self.classify(enc["r"])
        with full_precision(enc["r"]):
            return self._loss_terms(batch, enc, out)

    def _loss_terms(self, batch, enc, out) -> Dict[str, torch.Tensor]:
        terms = {"loss/ce": F.cross_entropy(out["logits"].float(), batch["labels"])}
        diagnostics = {}
        m = self.method
        prompt = enc["prompt"].float()  # P as the losses read it, whatever dtype its module gave it (float32 networks)
        if m.head_weight > 0:
            per_example, count = head_nce(prompt, self.head.vectors, enc["tokens"].float(),
                                          batch["attention_mask"], self.head_critic)
            terms["mi/head"] = clamped_mean(per_example, m.nce_clamp)
            diagnostics.update(estimate_diagnostics("head", per_example, count))
        if m.rep_weight > 0 or m.kl_weight > 0:
            mu0, log_sigma0 = self.bottleneck.posterior(self.free_mask[batch["index"]].float())
        if m.rep_weight > 0:
            negatives = self.bottleneck.sample(mu0, log_sigma0, self.num_negatives)  # (B, m, k)
            decode = self.rep_projection or self.bottleneck.out  # own critic map, or the classifier's W_o, b_o
            per_example, count = representation_nce(decode(out["z"]), decode(negatives), self.context(prompt),
                                                    self.rep_critic)
            terms["mi/rep"] = clamped_mean(per_example, m.nce_clamp)
            diagnostics.update(estimate_diagnostics("rep", per_example, count))
        if m.kl_weight > 0:
            terms["kl"] = (gaussian_kl(out["mu"], out["log_sigma"], m.kl_reduction)
                           + gaussian_kl(mu0, log_sigma0, m.kl_reduction))
        if self.bottleneck is not None:
            diagnostics["kl_dims"] = gaussian_kl_per_dim(out["mu"], out["log_sigma"]).mean(0)  # (k,) prompted
            diagnostics["sigma"] = out["log_sigma"].exp().mean()
        self.last_diagnostics = {k: v.detach() for k, v in diagnostics.items()}
        return terms

    def total_loss(self, terms: Dict[str, torch.Tensor]) -> torch.Tensor:
        """CE + w(t) * (gamma L_head + beta L_rep + lambda L_KL)."""
        m = self.method
        weights = {"mi/head": m.head_weight, "mi/rep": m.rep_weight, "kl": m.kl_weight}
        extra = sum(weights[k] * v for k, v in terms.items() if k in weights)
        return terms["loss/ce"] + mi_weight(self.global_step, self.max_steps, m.decay) * extra

    # -- steps -------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        terms = self.losses(batch)
        loss = self.total_loss(terms)
        self.note_nonfinite(terms, loss)
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        size = batch["labels"].shape[0]
        # this process's values (Lightning turns them into numbers every log_every_n_steps): no collective per
        # step; curve.csv has the mean over processes of every term, taken once per evaluation (DevCurve)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=size)
        self.log("train/loss", loss, batch_size=size)
        return loss

    def note_nonfinite(self, terms: Dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        """Remember, on the device, the first step at which each term (and the total) was not finite."""
        values = [*terms.values(), loss]
        bad = torch.stack([~torch.isfinite(v.detach()).all() for v in values])
        if self.first_nonfinite is None or len(self.term_names) != len(values):
            self.term_names = [*terms, "total"]
            self.first_nonfinite = torch.full((len(values),), NEVER, dtype=torch.long, device=bad.device)
        step = torch.full_like(self.first_nonfinite, self.global_step)
        self.first_nonfinite = torch.where(bad & (self.first_nonfinite == NEVER), step, self.first_nonfinite)

    def check_finite(self) -> None:
        """Stop every process at once when any saw a non-finite loss since training started: called before each
        evaluation and at the end of fit, so no checkpoint is saved after the bad step (checkpoints/last.ckpt keeps
        the last good state) and the message names the first bad step of any process. One host sync, and under
        DDP one all-reduce, per call."""
        if self.first_nonfinite is None:
            return
        mine = self.first_nonfinite
        first = mine.clone()
        trainer = self.attached_trainer()
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        first, mine = first.tolist(), mine.tolist()
        step = min(first)
        if step == NEVER:
            return
        index = first.index(step)
        where = f"train/{self.term_names[index]}" if mine[index] == step else "the loss of another process"
        raise NonFiniteLoss(f"non-finite loss: {where} at step {step}; the last good checkpoint is "
                            f"checkpoints/last.ckpt")

    def on_validation_start(self):
        self.check_finite()
        self.ensure_cache(self.trainer.datamodule)

    def on_train_end(self):
        self.check_finite()

    def _evaluate(self, batch, metrics: MetricCollection, ties: Optional[SumMetric] = None) -> torch.Tensor:
        logits = self(batch)
        predictions = logits.argmax(-1)
        metrics.update(predictions, batch["labels"])
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch["labels"].shape[0])
        if ties is not None:
            top = logits.topk(min(2, logits.shape[-1]), dim=-1).values
            ties.update((top[:, 0] == top[:, -1]).sum() if top.shape[-1] > 1 else torch.zeros((), device=logits.device))
        return predictions

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_metrics)

    def on_test_epoch_start(self):
        self.test_confusion.reset()
        self.test_ties.reset()

    def test_step(self, batch, batch_idx):
        self.test_confusion.update(self._evaluate(batch, self.test_metrics, self.test_ties), batch["labels"])

    def on_test_epoch_end(self):
        # summed over the processes' test examples here, while the test loop still holds the module on its device:
        # after trainer.test returns, Lightning has moved it to the CPU, where NCCL cannot gather
        self.test_confusion_result = self.test_confusion.compute().long().cpu()
        self.test_ties_result = int(self.test_ties.compute().item())

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
