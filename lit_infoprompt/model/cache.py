"""The prompt-free states r_0(x) = g(h_0(x)) at <mask> and h_0,cls(x) at <s>, computed once per example.

The backbone is frozen, so with dropout off these are constants of each example (METHOD.md, Notation):
one batched pass when training starts replaces the reference code's second encoder pass per step.
With ``model.dropout=true`` the cache holds the dropout-free states (the pass runs in eval mode).
The key covers the backbone, the template, ``max_length`` and every token id, so any change that
would alter a state rebuilds the cache instead of serving a stale one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Tuple

import torch

from lit_infoprompt.model.backbone import Backbone


def cache_key(backbone_name: str, template: str, max_length: int, rows: List[Dict[str, Any]]) -> str:
    digest = hashlib.sha256(f"{backbone_name}\n{template}\n{max_length}\n".encode())
    for row in rows:
        digest.update(str(row["input_ids"]).encode())
    return digest.hexdigest()


@torch.no_grad()
def prompt_free_states(backbone: Backbone, rows: List[Dict[str, Any]], collate, batch_size: int,
                       device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """(r_0 at <mask>, h_0 at <s>), each (N, d), in row order; one encoder pass per ``batch_size`` rows."""
    was_training = backbone.training
    backbone.eval()
    mask_states, cls_states = [], []
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start:start + batch_size])
        ids, attention = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        hidden = backbone.encode(backbone.embed(ids), attention)  # (b, T, d)
        picked = hidden[torch.arange(len(ids), device=device), batch["mask_pos"].to(device)]  # (b, d)
        mask_states.append(backbone.head_input(picked))
        cls_states.append(hidden[:, 0])
    backbone.train(was_training)
    return torch.cat(mask_states), torch.cat(cls_states)
