"""Theory check: gradient descent trains the InfoNCE head loss when the step size is below 1/L.

The paper argues that gradient descent can train its MI loss. We check the textbook mechanism on a
synthetic version of the head loss (METHOD.md): trainable prompt P (n x d) and class vectors V (C x d),
anchor c = mean V, positive mean P, negatives fixed token embeddings E_b (T per example, B examples),
plus weight decay (lambda/2)(|P|^2 + |V|^2) so that a minimiser exists:

    f(P, V) = mean_b InfoNCE(<P_bar, c>/sqrt d ; <E_bi, c>/sqrt d) + lambda/2 (|P|^2 + |V|^2).

f is smooth (its gradient is Lipschitz on bounded sets). L is estimated as the largest Hessian eigenvalue
(power iteration on Hessian-vector products) over the iterates of a cautious run, times a safety factor.
By the descent lemma, gradient descent with step eta < 1/L decreases f monotonically; with a step far above
(eta * lambda > 2) the weight-decay directions alone make the iterates oscillate with growing amplitude.
This checks the mechanism on our loss, not the paper's theorem itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List

import torch

from lit_infoprompt.model.losses import head_loss


@dataclass
class Problem:
    tokens: torch.Tensor  # (B, T, d) fixed negatives
    mask: torch.Tensor  # (B, T)
    weight_decay: float
    n: int
    classes: int

    @property
    def dim(self) -> int:
        return self.tokens.shape[-1]

    def split(self, x: torch.Tensor):
        prompt = x[: self.n * self.dim].view(self.n, self.dim)
        return prompt, x[self.n * self.dim:].view(self.classes, self.dim)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        prompt, vectors = self.split(x)
        batch = self.tokens.shape[0]
        mi = head_loss(prompt.unsqueeze(0).expand(batch, -1, -1), vectors, self.tokens, self.mask)
        return mi + 0.5 * self.weight_decay * x.pow(2).sum()


def make_problem(seed: int = 0, batch: int = 8, tokens: int = 12, dim: int = 16, n: int = 4, classes: int = 3,
                 weight_decay: float = 0.1):
    generator = torch.Generator().manual_seed(seed)
    emb = torch.randn(batch, tokens, dim, generator=generator, dtype=torch.float64)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[:, tokens - 3:] = torch.randint(0, 2, (batch, 3), generator=generator)  # some padding
    start = 0.5 * torch.randn((n + classes) * dim, generator=generator, dtype=torch.float64)
    return Problem(emb, mask, weight_decay, n, classes), start


def gradient(problem: Problem, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(problem.loss(x), x)[0]


def top_hessian_eigenvalue(problem: Problem, x: torch.Tensor, iterations: int = 50) -> float:
    """Largest |eigenvalue| of the Hessian at x, by power iteration on Hessian-vector products."""
    x = x.detach().requires_grad_(True)
    grad = torch.autograd.grad(problem.loss(x), x, create_graph=True)[0]
    v = torch.randn_like(x, generator=torch.Generator().manual_seed(1))
    v /= v.norm()
    value = 0.0
    for _ in range(iterations):
        hv = torch.autograd.grad(grad, x, v, retain_graph=True)[0]
        value = hv.norm().item()
        v = hv / max(value, 1e-300)
    return value


def descend(problem: Problem, start: torch.Tensor, step: float, iterations: int, keep_every: int = 0) -> dict:
    """Plain gradient descent; ``keep_every`` > 0 also keeps every k-th iterate."""
    x = start.clone()
    history = {"loss": [], "grad_norm": [], "iterates": []}
    for i in range(iterations):
        if keep_every and i % keep_every == 0:
            history["iterates"].append(x.clone())
        g = gradient(problem, x)
        history["loss"].append(problem.loss(x).item())
        history["grad_norm"].append(g.norm().item())
        if not math.isfinite(history["loss"][-1]) or history["loss"][-1] > 1e12:
            break
        x = x - step * g
    return history


def estimate_smoothness(problem: Problem, start: torch.Tensor, safety: float = 1.5, probe_iterations: int = 200,
                        every: int = 20) -> float:
    """L: the largest Hessian eigenvalue along a cautious run (step from the analytic weight-decay bound),
    times ``safety``."""
    cautious = 0.1 / (problem.weight_decay + 1.0)
    x, values = start.clone(), []
    for i in range(probe_iterations):
        if i % every == 0:
            values.append(top_hessian_eigenvalue(problem, x))
        x = x - cautious * gradient(problem, x)
    return safety * max(values)


def is_monotone(losses: List[float], tolerance: float = 1e-12) -> bool:
    return all(b <= a + tolerance for a, b in zip(losses, losses[1:]))


def check(iterations: int = 2000, out: Path = None) -> dict:
    problem, start = make_problem()
    smooth = estimate_smoothness(problem, start)
    small = descend(problem, start, 0.5 / smooth, iterations, keep_every=max(1, iterations // 20))
    curvature_on_run = max(top_hessian_eigenvalue(problem, x) for x in small["iterates"])
    large_step = 25.0 / smooth
    large = descend(problem, start, large_step, iterations)
    result = {
        "L_estimate": smooth, "max_curvature_on_small_step_run": curvature_on_run,
        "small_step": 0.5 / smooth, "large_step": large_step,
        "large_step_times_weight_decay": large_step * problem.weight_decay,
        "small_monotone": is_monotone(small["loss"]), "small_final_loss": small["loss"][-1],
        "small_final_grad_norm": small["grad_norm"][-1], "large_monotone": is_monotone(large["loss"]),
        "large_max_loss": max(large["loss"]), "start_loss": small["loss"][0], "iterations": iterations,
    }
    if out is not None:
        plot(small, large, result, out)
    return result


def plot(small, large, result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    best = min(small["loss"])  # f*: where the small-step run converged
    for history, label in ((small, f"step 0.5/L = {result['small_step']:.3g}"),
                           (large, f"step 25/L = {result['large_step']:.3g}")):
        axes[0].semilogy([max(f - best, 1e-16) for f in history["loss"]], label=label)
    axes[0].set_xlabel("gradient-descent iteration")
    axes[0].set_ylabel("f - f* (head loss + weight decay, log)")
    axes[0].legend()
    axes[1].semilogy(small["grad_norm"], label="step 0.5/L")
    axes[1].semilogy(large["grad_norm"], label="step 25/L", alpha=0.8)
    axes[1].set_xlabel("gradient-descent iteration")
    axes[1].set_ylabel("gradient norm (log)")
    axes[1].legend()
    fig.suptitle(f"Synthetic InfoNCE head loss, L ≈ {result['L_estimate']:.3g} (Hessian power iteration x 1.5)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
