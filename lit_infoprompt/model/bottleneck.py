"""InfoPrompt's estimator networks: the variational bottleneck head and the prompt-context map.

Bottleneck (METHOD.md, representation loss): mu(r), log sigma(r) are linear maps to k dims, log sigma
clamped to [-2, 10]; z = mu + sigma * eps while training, z = mu in evaluation; u = W_o z + b_o feeds
the class head. Context: q = mean_j (W_q stopgrad(P_j) + b_q), so L_rep reaches P only through the
encoder, never through q.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from lit_infoprompt.curves import ACTIVE_DIM_NATS

LOG_SIGMA_RANGE = (-2.0, 10.0)


def diagnostics_row(means: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Scalars for curve.csv and the loggers from the interval means of ``PromptClassifier.last_diagnostics``:
    each InfoNCE term's MI estimate log(M+1) - L in nats, the prompted posterior's KL per latent dimension, the
    number of active dimensions (mean KL above ACTIVE_DIM_NATS) and its mean sigma."""
    row = {f"diag/{name}": float(means[name]) for name in ("mi_head_nats", "mi_rep_nats", "sigma") if name in means}
    if "kl_dims" in means:
        row["diag/kl_per_dim"] = float(means["kl_dims"].mean())
        row["diag/active_dims"] = int((means["kl_dims"] > ACTIVE_DIM_NATS).sum())
    return row


class VariationalBottleneck(nn.Module):
    def __init__(self, hidden: int, k: int):
        super().__init__()
        self.mu = nn.Linear(hidden, k)
        self.log_sigma = nn.Linear(hidden, k)
        self.out = nn.Linear(k, hidden)  # W_o, b_o

    def posterior(self, r: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma), each (..., k)."""
        return self.mu(r), self.log_sigma(r).clamp(*LOG_SIGMA_RANGE)

    @staticmethod
    def sample(mu: torch.Tensor, log_sigma: torch.Tensor, count: int = 0) -> torch.Tensor:
        """One sample (..., k), or ``count`` samples (..., count, k) when count > 0."""
        if count:
            mu, log_sigma = mu.unsqueeze(-2), log_sigma.unsqueeze(-2)
            noise = torch.randn(*mu.shape[:-2], count, mu.shape[-1], device=mu.device, dtype=mu.dtype)
        else:
            noise = torch.randn_like(mu)
        return mu + torch.exp(log_sigma) * noise

    def forward(self, r: torch.Tensor):
        """(u, mu, log sigma, z): z sampled in training, the mean in evaluation."""
        mu, log_sigma = self.posterior(r)
        z = self.sample(mu, log_sigma) if self.training else mu
        return self.out(z), mu, log_sigma, z


class PromptContext(nn.Module):
    """q = mean_j (W_q stopgrad(P_j) + b_q); equal to W_q mean_j(P_j) + b_q by linearity."""

    def __init__(self, hidden: int):
        super().__init__()
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.proj(prompt.detach().mean(1))  # (B, n, d) -> (B, d)
