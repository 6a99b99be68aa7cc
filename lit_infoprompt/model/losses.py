"""InfoPrompt's two MI losses and the loss-weight schedule (METHOD.md, "InfoPrompt losses").

Pure functions of tensors; the networks they read (class vectors, bottleneck, context map) live in
``head.py`` and ``bottleneck.py``. Every InfoNCE term uses ``estimators.info_nce_per_example``.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

from lit_infoprompt.model.estimators import clamped_mean, info_nce_per_example, scaled_dot


Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # s(a, c) over the last dim: scaled_dot or a Critic


def head_nce(prompt: torch.Tensor, class_vectors: torch.Tensor, token_embeds: torch.Tensor,
             token_mask: torch.Tensor, critic: Score = scaled_dot) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-example L_head (B,) and the number of negatives each example used (B,).

    Anchor c = mean_k V_k; positive P_bar = mean_j P_j; negatives E[x_i], the frozen embeddings of the
    example's real (non-pad) tokens:
        L_head = -log exp(<P_bar,c>/sqrt d) / (exp(<P_bar,c>/sqrt d) + sum_i exp(<E[x_i],c>/sqrt d)).
    prompt: (B, n, d) (a static prompt expanded over the batch); class_vectors: (C, d);
    token_embeds: (B, T, d); token_mask: (B, T), 1 for real tokens. Gradients reach P and V. ``critic``
    replaces <., .>/sqrt d (an option; the reference's is the default).
    """
    anchor = class_vectors.mean(0)  # (d,)
    positive = critic(prompt.mean(1), anchor)  # (B,)
    negatives = critic(token_embeds, anchor)  # (B, T)
    valid = token_mask.bool()
    return info_nce_per_example(positive, negatives, valid=valid), valid.sum(1)


def representation_nce(u_positive: torch.Tensor, u_negative: torch.Tensor, context: torch.Tensor,
                       critic: Score = scaled_dot) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-example L_rep (B,) and the number of negatives each example used (B,).

    score(z) = <W_o z + b_o, q>/sqrt d with q the prompt context. The positive is the decoded sample of the
    prompted posterior, the negatives m decoded samples of the same example's prompt-free posterior:
    for the same x, the critic must tell the prompted representation from the un-prompted one.
    u_positive: (B, d) = W_o z+ + b_o; u_negative: (B, m, d) = W_o z- + b_o; context: (B, d) = q. With
    ``method.rep_projection=own`` the module passes the critic's own map W_c z + b_c instead of W_o z + b_o.
    """
    positive = critic(u_positive, context)  # (B,)
    negatives = critic(u_negative, context.unsqueeze(1))  # (B, m)
    count = torch.full_like(positive, negatives.shape[1], dtype=torch.long)
    return info_nce_per_example(positive, negatives), count


def head_loss(prompt, class_vectors, token_embeds, token_mask, clamp: Optional[float] = None) -> torch.Tensor:
    """L_head: InfoNCE lower bound on I(P; theta_head), the batch mean of ``head_nce``."""
    return clamped_mean(head_nce(prompt, class_vectors, token_embeds, token_mask)[0], clamp)


def mi_weight(step: int, total_steps: int, decay: float) -> float:
    """w(t) = 1 - decay * t / T (decay = 0: constant 1)."""
    return 1.0 - decay * step / max(1, total_steps)
