"""Evaluation metrics by name: ``acc``, ``f1_macro``, ``f1`` (binary, class 1), ``mcc`` (Matthews correlation, 0
where undefined) and SemEval-2010 Task 8's official score.

All are torchmetrics ``Metric``s with sum-reduced states, so under DDP they are computed over the union
of the ranks' examples.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (BinaryF1Score, MulticlassAccuracy, MulticlassF1Score,
                                        MulticlassMatthewsCorrCoef)

from lit_infoprompt.semeval import relation_type


class SemEvalF1(Metric):
    """Official SemEval-2010 Task 8 score: macro-F1 over the 9 relation types, direction-aware, Other excluded.

    For each type R: precision = exact (relation and direction) hits / predictions of R in either
    direction; recall = exact hits / gold examples of R in either direction; F1 per type, then the
    unweighted mean over the 9 types (the scorer's "(9+1)-way evaluation with directionality").
    """

    full_state_update = False

    def __init__(self, labels: Sequence[str]):
        super().__init__()
        types = [relation_type(str(label)) for label in labels]
        self.type_names = sorted({t for t in types if t is not None})
        member = torch.zeros(len(self.type_names), len(labels))  # (R, C): class c belongs to type r
        for cls, name in enumerate(types):
            if name is not None:
                member[self.type_names.index(name), cls] = 1
        self.register_buffer("member", member, persistent=False)
        self.add_state("confusion", torch.zeros(len(labels), len(labels)), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        flat = target * self.confusion.shape[0] + preds
        counts = torch.bincount(flat, minlength=self.confusion.numel()).view_as(self.confusion)
        self.confusion = self.confusion + counts.to(self.confusion.dtype)  # not in place: states may be inference tensors

    def compute(self) -> torch.Tensor:
        member = self.member.to(self.confusion)
        hits = member @ self.confusion.diagonal()  # (R,) exact hits
        predicted = member @ self.confusion.sum(0)  # (R,) predictions of the type, any direction
        gold = member @ self.confusion.sum(1)  # (R,)
        precision = hits / predicted.clamp(min=1)
        recall = hits / gold.clamp(min=1)
        f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        return f1.mean()


class MatthewsCorrCoef(MulticlassMatthewsCorrCoef):
    """Matthews correlation (multiclass form R_K) with GLUE's and scikit-learn's convention: **0 where it is
    undefined**, i.e. when all predictions fall in one class (or all gold labels do). torchmetrics (1.9) returns an
    eps-smoothed value there instead: 0.0256 for answering "acceptable" to every sentence of CoLA's dev file, more
    than many real models score; selecting on dev with it ranks a collapsed, constant predictor above a model
    that learned something. Same state and reduction as torchmetrics' (a summed confusion matrix)."""

    def compute(self) -> torch.Tensor:
        confusion = self.confmat.double()
        n, correct = confusion.sum(), confusion.trace()
        predicted, gold = confusion.sum(0), confusion.sum(1)
        numerator = correct * n - (predicted * gold).sum()
        denominator = ((n ** 2 - (predicted ** 2).sum()) * (n ** 2 - (gold ** 2).sum())).sqrt()
        safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        return torch.where(denominator > 0, numerator / safe, torch.zeros_like(numerator)).float()


def build_metrics(names: Sequence[str], labels: List[Any], prefix: str) -> MetricCollection:
    makers: Dict[str, Any] = {
        "acc": lambda: MulticlassAccuracy(len(labels), average="micro"),
        "f1_macro": lambda: MulticlassF1Score(len(labels), average="macro"),
        "semeval_f1": lambda: SemEvalF1(labels),
        "f1": lambda: BinaryF1Score(),  # F1 of the second class (label 1: MRPC's "equivalent"), GLUE's F1
        "mcc": lambda: MatthewsCorrCoef(len(labels)),  # Matthews correlation, GLUE's CoLA metric (0 if undefined)
    }
    return MetricCollection({name: makers[name]() for name in names}, prefix=prefix)
