"""Mutual-information estimators: InfoNCE and its critics (METHOD.md, InfoPrompt losses).

For a positive pair score s+ and M negative scores s-_1..M, the InfoNCE loss

    L = -E[ log( exp(s+) / (exp(s+) + sum_i exp(s-_i)) ) ]

bounds the mutual information from below: I(A; B) >= log(M + 1) - L (van den Oord et al., 2018;
Poole et al., 2019). Minimising L therefore maximises a lower bound on I, and the estimate never exceeds its
ceiling log(M + 1). The critic is s(a, c) = <a, c> / sqrt(d) (METHOD.md and the reference code: ``dot``), or,
as an option, the cosine similarity over a temperature tau, fixed (``cosine``) or learned (``cosine_learned``:
CLIP's parametrisation, log(1/tau) trainable from log(1/0.07), 1/tau capped at 100).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lit_infoprompt.config import CRITICS


def _at_least_float32(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def scaled_dot(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """<a, c> / sqrt(d) over the last dimension, broadcasting the rest."""
    return (a * c).sum(-1) / math.sqrt(a.shape[-1])


MAX_INVERSE_TEMPERATURE = 100.0  # CLIP's cap on the learned logit scale: tau >= 0.01


def cosine(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """cos(a, c) over the last dimension, broadcasting the rest (0 for a zero vector)."""
    return F.cosine_similarity(a, c, dim=-1, eps=1e-8)


class Critic(nn.Module):
    """s(a, c): ``dot`` = <a, c>/sqrt(d); ``cosine`` = cos(a, c)/tau with tau fixed; ``cosine_learned`` = the same
    with log(1/tau) a parameter, initialised at log(1/temperature) and used capped at log(100)."""

    def __init__(self, kind: str = "dot", temperature: float = 0.07):
        super().__init__()
        if kind not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {kind!r}")
        self.kind = kind
        self.temperature = temperature
        if kind == "cosine_learned":
            self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def inverse_temperature(self):
        """1/tau: a float, or the (capped) learned scalar tensor."""
        if self.kind == "cosine_learned":
            return self.log_scale.clamp(max=math.log(MAX_INVERSE_TEMPERATURE)).exp()
        return 1.0 / self.temperature

    def forward(self, a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.kind == "dot":
            return scaled_dot(a, c)
        return cosine(a, c) * self.inverse_temperature()

    def extra_repr(self) -> str:
        return self.kind if self.kind == "dot" else f"{self.kind}, temperature={self.temperature}"


def info_nce_per_example(positive: torch.Tensor, negatives: torch.Tensor,
                         valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B,) losses -log softmax([s+, s-_1..M])[0], one per example.

    positive: (B,) scores; negatives: (B, M) scores; valid: optional (B, M) bool, False drops a negative
    (padding). Computed in at least float32 (bf16 scores are promoted; float64 stays float64).
    """
    dtype = _at_least_float32(positive, negatives)
    negatives = negatives.to(dtype)
    if valid is not None:
        negatives = negatives.masked_fill(~valid, float("-inf"))
    logits = torch.cat([positive.to(dtype).unsqueeze(1), negatives], dim=1)  # (B, 1 + M)
    return -F.log_softmax(logits, dim=1)[:, 0]


def clamped_mean(losses: torch.Tensor, clamp: Optional[float] = None) -> torch.Tensor:
    """Batch mean of per-example losses; ``clamp`` caps each at that many nats, as the reference code does with
    ``log_softmax(...)[:, 0].clamp(min=-2)``: an example above the cap contributes no gradient."""
    return (losses if clamp is None else losses.clamp(max=clamp)).mean()


def mi_lower_bound(losses: torch.Tensor, num_negatives: torch.Tensor) -> torch.Tensor:
    """Batch mean of log(M_i + 1) - L_i in nats, M_i the negatives example i actually used: the InfoNCE
    estimate of the mutual information (0 = the critic cannot tell the positive from the negatives)."""
    return (torch.log1p(num_negatives.to(losses.dtype)) - losses).mean()


def ceiling(num_negatives: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Batch mean of log(M_i + 1): the most the InfoNCE estimate of this batch can reach."""
    return torch.log1p(num_negatives.to(dtype)).mean()


def gaussian_kl_per_dim(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """(..., k): KL(N(mu_k, sigma_k^2) || N(0, 1)) = 1/2 (sigma_k^2 + mu_k^2 - 1 - 2 log sigma_k) per dimension."""
    dtype = _at_least_float32(mu, log_sigma)
    mu, log_sigma = mu.to(dtype), log_sigma.to(dtype)
    return 0.5 * (torch.exp(2 * log_sigma) + mu.pow(2) - 1 - 2 * log_sigma)


KL_REDUCTIONS = ("mean", "sum")


def gaussian_kl(mu: torch.Tensor, log_sigma: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) of a diagonal Gaussian posterior, reduced over the batch and the k latent dims.

    ``mean`` (default, METHOD.md and the reference implementation): the mean over batch and dims, i.e. nats per
    latent dimension. ``sum``: summed over the k dims, then the batch mean (k times ``mean``): the full KL per
    example.
    """
    per_dim = gaussian_kl_per_dim(mu, log_sigma)
    if reduction == "mean":
        return per_dim.mean()
    if reduction == "sum":
        return per_dim.sum(-1).mean()
    raise ValueError(f"KL reduction must be one of {KL_REDUCTIONS}, got {reduction!r}")
