"""The frozen masked-LM encoder f, its word embeddings E and (if present) its MLM transform g.

Any Hugging Face masked-LM encoder loads by hub id or local folder. With an MLM head (RoBERTa, BERT)
the class head reads g(h), the frozen MLM transform of the ``<mask>`` state; a checkpoint without one
(all-MiniLM-L6-v2 is a bare ``BertModel``) gives the head h itself. Nothing here is ever trainable.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch import nn

from lit_infoprompt.config import ModelConfig
from lit_infoprompt.errors import InputError


def _bert_transform(model) -> nn.Module:
    return model.cls.predictions.transform  # dense -> act -> LayerNorm


def _roberta_transform(model) -> nn.Module:
    head = model.lm_head  # RobertaLMHead.forward: dense -> gelu -> layer_norm -> decoder
    return nn.Sequential(head.dense, nn.GELU(), head.layer_norm)


# model_type -> the MLM head minus its vocabulary projection. Plain dict; add a line for a new family.
MLM_TRANSFORMS: Dict[str, Callable[[nn.Module], nn.Module]] = {
    "bert": _bert_transform,
    "roberta": _roberta_transform,
    "xlm-roberta": _roberta_transform,
    "camembert": _roberta_transform,
}


class Backbone(nn.Module):
    """Frozen encoder with ``embed`` (word embeddings only) and ``encode`` (inputs_embeds -> states)."""

    def __init__(self, model: nn.Module, transform: Optional[nn.Module], dropout: bool,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.model = model.to(dtype)  # the whole HF model: *ForMaskedLM, or a bare encoder
        self.transform = transform if transform is not None else nn.Identity()
        self.has_mlm_head = transform is not None
        self.dropout = dropout
        self.requires_grad_(False)
        self.train(False)

    @property
    def encoder(self) -> nn.Module:
        return self.model.base_model  # a bare encoder is its own base model

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def output_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (V, d), bias (V,)) of the MLM decoder; the input embeddings and zeros without a head."""
        decoder = self.model.get_output_embeddings() if self.has_mlm_head else None
        if decoder is None:
            weight = self.word_embeddings.weight
            return weight, torch.zeros(weight.shape[0])
        bias = decoder.bias if decoder.bias is not None else torch.zeros(decoder.weight.shape[0])
        return decoder.weight, bias

    def train(self, mode: bool = True):
        # Lightning calls .train() on the whole module; the backbone's dropout mode is a config value.
        return super().train(mode and self.dropout)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)  # (B, T, d); positions are added inside encode

    def encode(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                           token_type_ids=torch.zeros_like(attention_mask))  # single segment
        return out.last_hidden_state  # (B, L, d)

    def head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """r = g(h) with an MLM head, h without one."""
        return self.transform(hidden)


def wants_mlm_head(config: ModelConfig, hf_config) -> bool:
    if config.mlm_head == "auto":
        return any(arch.endswith("ForMaskedLM") for arch in (hf_config.architectures or []))
    return config.mlm_head == "true"


def from_pretrained_model(model: nn.Module, mlm_head: bool, dropout: bool,
                          dtype: torch.dtype = torch.float32) -> Backbone:
    """Wrap a loaded ``*ForMaskedLM`` (mlm_head=True) or bare encoder model; weights cast to ``dtype``
    (bfloat16 halves the frozen weights' memory and skips autocast's per-step casts on GPU)."""
    if not mlm_head:
        return Backbone(model, None, dropout, dtype)
    model_type = model.config.model_type
    if model_type not in MLM_TRANSFORMS:
        raise InputError(f"no MLM transform known for model_type '{model_type}' "
                         f"(known: {', '.join(MLM_TRANSFORMS)}); set model.mlm_head=false")
    return Backbone(model, MLM_TRANSFORMS[model_type](model), dropout, dtype)


def load_backbone(config: ModelConfig):
    """Load (backbone, tokenizer) from a hub id or local folder."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

    try:
        hf_config = AutoConfig.from_pretrained(config.name)
        tokenizer = AutoTokenizer.from_pretrained(config.name)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot load model '{config.name}': {str(err).splitlines()[0]}") from None
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise InputError(f"tokenizer of '{config.name}' lacks a mask, cls or sep token: not a masked-LM encoder")
    mlm = wants_mlm_head(config, hf_config)
    loader = AutoModelForMaskedLM if mlm else AutoModel
    model = loader.from_pretrained(config.name, config=hf_config)
    if not mlm and hasattr(model, "pooler"):
        model.pooler = None  # the pooler is never used; keep it out of the parameter counts
    return from_pretrained_model(model, mlm, config.dropout, getattr(torch, config.dtype)), tokenizer
