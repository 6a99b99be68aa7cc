"""The soft prompt P and where its slots go in the input.

Prompt vectors replace word embeddings only; the encoder adds position embeddings and LayerNorm itself
(METHOD.md, Notation), so P is spliced into ``inputs_embeds``. Placements: ``prefix`` puts all n slots
right after ``<s>`` (Lester et al., 2021); ``template`` puts n/4 slots after ``<s>``, before ``<mask>``,
after ``<mask>`` and before the final ``</s>`` (the reference code's layout). Both are one scatter.
Kinds: ``static`` (one trainable P) or ``instance`` (P generated per example from the cached
prompt-free ``<s>`` state, IDPG-like).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lit_infoprompt.config import PromptConfig
from lit_infoprompt.errors import InputError


class SoftPrompt(nn.Module):
    """Static prompt: the same (n, d) vectors for every example."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(init.detach().clone().float())  # (n, d)

    @property
    def length(self) -> int:
        return self.weight.shape[0]

    def forward(self, batch_size: int, free_cls: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.weight.unsqueeze(0).expand(batch_size, -1, -1)  # (B, n, d)


class InstancePrompt(nn.Module):
    """P(x) = reshape(W2 GELU(W1 h_cls(x)) + b2): one prompt per example, from its prompt-free <s> state.

    b2 starts at the ``prompt.init`` vectors, so every initialisation applies to instance prompts too and
    step 0 starts near the static prompt; W2 starts small so the examples' prompts already differ.
    """

    def __init__(self, init: torch.Tensor, hidden: int, state_size: Optional[int] = None):
        super().__init__()
        n, d = init.shape
        self.n = n
        self.down = nn.Linear(state_size or d, hidden)  # from h_cls (the encoder's width, which may differ from d)
        self.up = nn.Linear(hidden, n * d)
        nn.init.normal_(self.up.weight, std=0.02)
        with torch.no_grad():
            self.up.bias.copy_(init.detach().reshape(-1).float())

    @property
    def length(self) -> int:
        return self.n

    def forward(self, batch_size: int, free_cls: Optional[torch.Tensor] = None) -> torch.Tensor:
        # float32 with autocast off, as a static prompt is: under bf16-mixed an autocast generator would hand the
        # losses (float32, autocast off) a bfloat16 P; the encoder casts P to its own dtype where it splices it in
        with torch.autocast(device_type=free_cls.device.type, enabled=False):
            flat = self.up(F.gelu(self.down(free_cls.float())))  # (B, n*d)
        return flat.view(batch_size, self.n, -1)  # (B, n, d)


def insertion_points(placement: str, attention_mask: torch.Tensor, mask_pos: torch.Tensor) -> torch.Tensor:
    """(B, G) ascending token indices before which each slot group goes."""
    if placement == "prefix":
        return torch.ones_like(mask_pos).unsqueeze(1)  # after <s>
    last = attention_mask.sum(1) - 1  # index of the final </s>
    return torch.stack([torch.ones_like(mask_pos), mask_pos, mask_pos + 1, last], dim=1)


def insert_slots(embeds: torch.Tensor, attention_mask: torch.Tensor, prompt: torch.Tensor, points: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Splice the n prompt vectors into the sequence, n/G before each of the G points.

    embeds: (B, T, d); attention_mask: (B, T); prompt: (B, n, d); points: (B, G).
    Returns (B, n+T, d) embeddings, (B, n+T) mask and shift (B, T): token t moved to t + shift[:, t].
    """
    batch, length, dim = embeds.shape
    n, groups = prompt.shape[1], points.shape[1]
    per = n // groups
    tokens = torch.arange(length, device=embeds.device)
    shift = (tokens.view(1, -1, 1) >= points.unsqueeze(1)).sum(-1) * per  # (B, T) slots placed before t
    slot = torch.arange(n, device=embeds.device)
    group = slot // per
    slot_pos = points[:, group] + group * per + slot % per  # (B, n): earlier groups' slots come first
    token_pos = tokens.unsqueeze(0) + shift  # (B, T)
    out = embeds.new_zeros(batch, length + n, dim)
    out = out.scatter(1, token_pos.unsqueeze(-1).expand(-1, -1, dim), embeds)
    out = out.scatter(1, slot_pos.unsqueeze(-1).expand(-1, -1, dim), prompt.to(embeds.dtype))
    mask = attention_mask.new_ones(batch, length + n).scatter(1, token_pos, attention_mask)
    return out, mask, shift


def build_prompt(config: PromptConfig, init: torch.Tensor, state_size: Optional[int] = None) -> nn.Module:
    """The static prompt, or the instance-prompt generator reading h_cls of ``state_size`` dims."""
    return SoftPrompt(init) if config.kind == "static" else InstancePrompt(init, config.generator_hidden, state_size)


def initial_prompt(config: PromptConfig, embeddings: torch.Tensor, tokenizer, label_ids: Sequence[List[int]],
                   seed: int) -> torch.Tensor:
    """The (n, d) starting value of P for ``config.init``.

    random: N(0, init_std^2); vocab: n distinct rows of E drawn uniformly from the non-special vocabulary;
    text: the embeddings of ``init_text``'s tokens, cycled or cut to n; label_words: the label words'
    token embeddings, cycled to n (Lester et al., 2021, class-label init).
    """
    n, (vocab, d) = config.length, embeddings.shape
    generator = torch.Generator().manual_seed(seed)
    if config.init == "random":
        return torch.randn(n, d, generator=generator) * config.init_std
    if config.init == "vocab":
        special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        allowed = torch.ones(vocab, dtype=torch.bool)
        allowed[special[special < vocab]] = False
        candidates = allowed.nonzero().squeeze(1)
        ids = candidates[torch.randperm(len(candidates), generator=generator)[:n]]
    elif config.init == "text":
        ids = torch.tensor(tokenizer.encode(config.init_text, add_special_tokens=False), dtype=torch.long)
        if len(ids) == 0:
            raise InputError("prompt.init=text needs a non-empty prompt.init_text")
    else:  # label_words
        ids = torch.tensor([i for word in label_ids for i in word], dtype=torch.long)
    ids = ids.repeat(-(-n // len(ids)))[:n]  # cycle to n
    return embeddings.detach()[ids].float().clone()
