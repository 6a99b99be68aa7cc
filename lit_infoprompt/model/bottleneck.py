"""InfoPrompt's estimator networks: the variational bottleneck head and the prompt-context map.

Bottleneck (METHOD.md, representation loss): mu(r), log sigma(r) are linear maps to k dims, log sigma
clamped to [-2, 10]; z = mu + sigma * eps while training, z = mu in evaluation; u = W_o z + b_o feeds
the class head (``replace``, METHOD.md and the reference). The option ``residual`` feeds u = r + W_o z + b_o with W_o,
b_o = 0 and sigma at the floor of its clamp at initialisation: at step 0 it predicts exactly what prompt tuning
predicts, and the bottleneck learns what to add. Context: q = mean_j (W_q stopgrad(P_j) + b_q), so L_rep reaches P only through the
encoder, never through q.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from lit_infoprompt.config import BOTTLENECK_FORMS
from lit_infoprompt.convergence import ACTIVE_DIM_NATS

LOG_SIGMA_RANGE = (-2.0, 10.0)


# each InfoNCE term's estimate, its ceiling (the batch mean of log(M_i + 1)) and the estimate's fraction of it
DIAGNOSTICS = tuple(f"mi_{term}_{what}" for term in ("head", "rep")
                    for what in ("nats", "ceiling_nats", "frac_of_ceiling")) + ("sigma",)


def diagnostics_row(means: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Scalars for curve.csv and the loggers from the interval means of ``PromptClassifier.last_diagnostics``:
    each InfoNCE term's MI estimate log(M+1) - L in nats, the prompted posterior's KL per latent dimension, the
    number of active dimensions (mean KL above ACTIVE_DIM_NATS) and its mean sigma. Each term also has its ceiling
    log(M+1) in nats and the estimate as a fraction of it (the interval mean of the per-step fractions)."""
    row = {f"diag/{name}": float(means[name]) for name in DIAGNOSTICS if name in means}
    if "kl_dims" in means:
        row["diag/kl_per_dim"] = float(means["kl_dims"].mean())
        row["diag/active_dims"] = int((means["kl_dims"] > ACTIVE_DIM_NATS).sum())
    return row


class VariationalBottleneck(nn.Module):
    def __init__(self, hidden: int, k: int, form: str = "replace"):
        super().__init__()
        if form not in BOTTLENECK_FORMS:
            raise ValueError(f"bottleneck form must be one of {BOTTLENECK_FORMS}, got {form!r}")
        self.form = form
        self.mu = nn.Linear(hidden, k)
        self.log_sigma = nn.Linear(hidden, k)
        self.out = nn.Linear(k, hidden)  # W_o, b_o
        if form == "residual":  # the same random draws as replace (same RNG state after), then the residual's start
            with torch.no_grad():
                self.out.weight.zero_()
                self.out.bias.zero_()
                self.log_sigma.weight.zero_()
                self.log_sigma.bias.fill_(LOG_SIGMA_RANGE[0])

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

    def decode(self, r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """u, the class head's input: W_o z + b_o (replace) or r + W_o z + b_o (residual)."""
        return self.out(z) if self.form == "replace" else r + self.out(z)

    def forward(self, r: torch.Tensor):
        """(u, mu, log sigma, z): z sampled in training, the mean in evaluation."""
        mu, log_sigma = self.posterior(r)
        z = self.sample(mu, log_sigma) if self.training else mu
        return self.decode(r, z), mu, log_sigma, z


class PromptContext(nn.Module):
    """q = mean_j (W_q stopgrad(P_j) + b_q); equal to W_q mean_j(P_j) + b_q by linearity."""

    def __init__(self, hidden: int):
        super().__init__()
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.proj(prompt.detach().mean(1))  # (B, n, d) -> (B, d)
