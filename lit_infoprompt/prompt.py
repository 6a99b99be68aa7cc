"""The soft prompt P (n x d) and where it goes: n vectors right after ``<s>`` (Lester-style prefix).

Prompt vectors replace word embeddings only; the encoder adds position embeddings and LayerNorm itself
(METHOD.md, Notation), so P is spliced into ``inputs_embeds``.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from lit_infoprompt.config import PromptConfig
from lit_infoprompt.errors import InputError


class SoftPrompt(nn.Module):
    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(init.detach().clone().float())  # (n, d)

    @property
    def length(self) -> int:
        return self.weight.shape[0]

    def prepend(self, embeds: torch.Tensor, attention_mask: torch.Tensor):
        """Insert P after position 0: (B, T, d) -> (B, n+T, d); the mask grows by n ones."""
        batch = embeds.shape[0]
        prompt = self.weight.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)  # (B, n, d)
        embeds = torch.cat([embeds[:, :1], prompt, embeds[:, 1:]], dim=1)  # (B, n+T, d)
        ones = attention_mask.new_ones(batch, self.length)
        attention_mask = torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)
        return embeds, attention_mask


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
