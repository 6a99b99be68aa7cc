"""Mutual-information estimators: InfoNCE with a scaled dot-product critic (METHOD.md, InfoPrompt losses).

For a positive pair score s+ and M negative scores s-_1..M, the InfoNCE loss

    L = -E[ log( exp(s+) / (exp(s+) + sum_i exp(s-_i)) ) ]

bounds the mutual information from below: I(A; B) >= log(M + 1) - L (van den Oord et al., 2018;
Poole et al., 2019). Minimising L therefore maximises a lower bound on I. The critic is
s(a, c) = <a, c> / sqrt(d).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F


def _at_least_float32(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def scaled_dot(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """<a, c> / sqrt(d) over the last dimension, broadcasting the rest."""
    return (a * c).sum(-1) / math.sqrt(a.shape[-1])


def info_nce(positive: torch.Tensor, negatives: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over the batch of -log softmax([s+, s-_1..M])[0].

    positive: (B,) scores; negatives: (B, M) scores; valid: optional (B, M) bool, False drops a negative
    (padding). Computed in at least float32 (bf16 scores are promoted; float64 stays float64).
    """
    dtype = _at_least_float32(positive, negatives)
    negatives = negatives.to(dtype)
    if valid is not None:
        negatives = negatives.masked_fill(~valid, float("-inf"))
    logits = torch.cat([positive.to(dtype).unsqueeze(1), negatives], dim=1)  # (B, 1 + M)
    return -F.log_softmax(logits, dim=1)[:, 0].mean()


def gaussian_kl(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum_k (sigma_k^2 + mu_k^2 - 1 - 2 log sigma_k), batch mean."""
    dtype = _at_least_float32(mu, log_sigma)
    mu, log_sigma = mu.to(dtype), log_sigma.to(dtype)
    return 0.5 * (torch.exp(2 * log_sigma) + mu.pow(2) - 1 - 2 * log_sigma).sum(-1).mean()
