"""The task head: trainable class vectors V (C x d) and bias b, logits = r . V^T + b.

Initialised from the verbalizer (METHOD.md, Notation): V_c is the output embedding of label word c
(the mean over its sub-tokens for a multi-token word) and b_c the MLM decoder bias of that word (0 for a
multi-token word). With r = g(h) this makes step-0 logits equal the classic verbalizer's MLM scores.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn


class ClassHead(nn.Module):
    def __init__(self, vectors: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.vectors = nn.Parameter(vectors.detach().clone().float())  # (C, d)
        self.bias = nn.Parameter(bias.detach().clone().float())  # (C,)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return r @ self.vectors.to(r.dtype).T + self.bias.to(r.dtype)  # (B, C)


def verbalizer_init(label_ids: Sequence[List[int]], out_weight: torch.Tensor, out_bias: torch.Tensor):
    """(vectors, bias) for ``ClassHead`` from the label words' token ids."""
    vectors = torch.stack([out_weight.detach()[ids].float().mean(0) for ids in label_ids])
    bias = torch.tensor([float(out_bias[ids[0]]) if len(ids) == 1 else 0.0 for ids in label_ids])
    return vectors, bias
