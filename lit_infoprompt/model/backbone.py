"""The frozen masked-LM encoder f, its word embeddings E and (if present) its MLM transform g.

Any Hugging Face masked-LM encoder loads by hub id or local folder. With an MLM head the class head reads
g(h), the frozen MLM transform of the ``<mask>`` state, and starts from the MLM decoder's rows of the label
words, so step-0 logits are the classic verbalizer's MLM scores; without one (all-MiniLM-L6-v2 is a bare
``BertModel``) the head reads h itself. ``model.mlm_head=auto`` uses the head only when its weights were
actually loaded: many sentence-embedding exports declare ``*ForMaskedLM`` in their config but ship no head.
Nothing here is ever trainable.

Families with a known MLM transform (``MLM_HEADS``): BERT, RoBERTa (and XLM-R, CamemBERT), DistilBERT, ELECTRA
(generator), DeBERTa-v2/v3 (both head layouts), ALBERT, MPNet, ModernBERT.
"""

from __future__ import annotations

import inspect
import logging
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from lit_infoprompt.config import ModelConfig
from lit_infoprompt.errors import InputError

log = logging.getLogger(__name__)


class Chain(nn.Module):
    """Apply modules (or plain activation functions) in order: an MLM head minus its vocabulary projection."""

    def __init__(self, *steps):
        super().__init__()
        self.steps = list(steps)
        self.modules_ = nn.ModuleList([s for s in steps if isinstance(s, nn.Module)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x


class MlmHead(NamedTuple):
    """A family's MLM head: the transform g (hidden -> head space) and the decoder (weight (V, a), bias (V,))."""

    transform: Callable[[nn.Module], nn.Module]
    decoder: Callable[[nn.Module], Tuple[torch.Tensor, Optional[torch.Tensor]]]


def _linear(get: Callable[[nn.Module], nn.Linear]):
    return lambda model: (get(model).weight, get(model).bias)


def _deberta_v2_transform(model) -> nn.Module:
    if getattr(model, "legacy", True):  # cls.predictions: transform (dense -> act -> LayerNorm) + decoder
        return model.cls.predictions.transform
    head = model.lm_predictions.lm_head  # dense -> act -> LayerNorm, then the tied word embeddings + bias
    return Chain(head.dense, head.transform_act_fn, head.LayerNorm)


def _deberta_v2_decoder(model):
    if getattr(model, "legacy", True):
        return model.cls.predictions.decoder.weight, model.cls.predictions.bias
    return model.get_input_embeddings().weight, model.lm_predictions.lm_head.bias


# model_type -> its MLM head. Plain dict; add a line for a new family.
_ROBERTA = MlmHead(lambda m: Chain(m.lm_head.dense, nn.GELU(), m.lm_head.layer_norm), _linear(lambda m: m.lm_head.decoder))
MLM_HEADS: Dict[str, MlmHead] = {
    "bert": MlmHead(lambda m: m.cls.predictions.transform, _linear(lambda m: m.cls.predictions.decoder)),
    "roberta": _ROBERTA,
    "xlm-roberta": _ROBERTA,
    "camembert": _ROBERTA,
    "distilbert": MlmHead(lambda m: Chain(m.vocab_transform, m.activation, m.vocab_layer_norm),
                          _linear(lambda m: m.vocab_projector)),
    "electra": MlmHead(lambda m: m.generator_predictions, _linear(lambda m: m.generator_lm_head)),
    "deberta-v2": MlmHead(_deberta_v2_transform, _deberta_v2_decoder),
    "albert": MlmHead(lambda m: Chain(m.predictions.dense, m.predictions.activation, m.predictions.LayerNorm),
                      _linear(lambda m: m.predictions.decoder)),
    "mpnet": MlmHead(lambda m: Chain(m.lm_head.dense, nn.GELU(), m.lm_head.layer_norm), _linear(lambda m: m.lm_head.decoder)),
    "modernbert": MlmHead(lambda m: m.head, _linear(lambda m: m.decoder)),
}

class Backbone(nn.Module):
    """Frozen encoder with ``embed`` (word embeddings only) and ``encode`` (inputs_embeds -> states).

    ``model``: the whole HF model (``*ForMaskedLM`` with ``head`` given, else a bare encoder). Sizes: prompt
    vectors live in the word-embedding space (``embedding_size``), encoder states have ``hidden_size``, and the
    class head reads r = g(h) of ``head_size`` (the decoder's width; ``hidden_size`` without a head).
    """

    def __init__(self, model: nn.Module, head: Optional[MlmHead], dropout: bool, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.model = model.to(dtype)
        self.transform = head.transform(self.model) if head is not None else nn.Identity()
        self._decoder = head.decoder if head is not None else None
        self.has_mlm_head = head is not None
        self.dropout = dropout
        forward = inspect.signature(self.encoder.forward).parameters
        # a single segment: zeros where the family has token types (BERT); others take no token_type_ids
        self.token_types = "token_type_ids" in forward and getattr(model.config, "type_vocab_size", 0) > 0
        self.requires_grad_(False)
        self.train(False)
        if self.has_mlm_head and self.embedding_size != self.head_size:
            raise InputError(f"{model.config.model_type}: the MLM decoder's width ({self.head_size}) differs from the "
                             f"word embeddings' ({self.embedding_size}): the head loss compares the two")
        if not self.has_mlm_head and self.embedding_size != self.hidden_size:
            raise InputError(f"{model.config.model_type}: without its MLM head the class head reads the encoder "
                             f"state ({self.hidden_size} dims), but its word embeddings have {self.embedding_size}; "
                             f"use a checkpoint with the MLM head (model.mlm_head=true)")

    @property
    def encoder(self) -> nn.Module:
        return self.model.base_model  # a bare encoder is its own base model

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def embedding_size(self) -> int:
        return self.word_embeddings.weight.shape[1]

    @property
    def head_size(self) -> int:
        return self.output_embeddings()[0].shape[1]

    def output_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (V, a), bias (V,)) of the MLM decoder; the input embeddings and zeros without a head."""
        if self._decoder is None:
            weight = self.word_embeddings.weight
            return weight, torch.zeros(weight.shape[0])
        weight, bias = self._decoder(self.model)
        return weight, bias if bias is not None else torch.zeros(weight.shape[0])

    def train(self, mode: bool = True):
        # Lightning calls .train() on the whole module; the backbone's dropout mode is a config value.
        return super().train(mode and self.dropout)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)  # (B, T, e); positions are added inside encode

    def encode(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = {"token_type_ids": torch.zeros_like(attention_mask)} if self.token_types else {}
        out = self.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra)
        return out.last_hidden_state  # (B, L, d)

    @property
    def max_positions(self) -> Optional[int]:
        """Tokens one sequence may have: learned absolute positions (RoBERTa-like families start after the padding
        index); None where the family has no such limit in its config."""
        config = self.model.config
        limit = getattr(config, "max_position_embeddings", None)
        relative = getattr(config, "position_embedding_type", "absolute") != "absolute" or (
            config.model_type.startswith("deberta") and not getattr(config, "position_biased_input", True))
        if not limit or relative:
            return None
        if config.model_type in ("roberta", "xlm-roberta", "camembert", "mpnet"):
            limit -= (config.pad_token_id or 0) + 1
        return limit

    def check_length(self, max_length: int, name: str) -> None:
        if self.max_positions is not None and max_length > self.max_positions:
            raise InputError(f"model.max_length={max_length} is more than {name} takes ({self.max_positions} "
                             f"positions): set model.max_length={self.max_positions} or less")

    @property
    def dtype(self) -> torch.dtype:
        return self.word_embeddings.weight.dtype

    def head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """r = g(h) with an MLM head, h without one; float32, computed outside autocast (in the weights' own dtype),
        so the class head reads the same r under bf16-mixed as the verbalizer would."""
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return self.transform(hidden.to(self.dtype)).float()


def declares_mlm_head(hf_config) -> bool:
    return any(arch.endswith("ForMaskedLM") for arch in (hf_config.architectures or []))


def from_pretrained_model(model: nn.Module, mlm_head: bool, dropout: bool,
                          dtype: torch.dtype = torch.float32) -> Backbone:
    """Wrap a loaded ``*ForMaskedLM`` (mlm_head=True) or bare encoder model; weights cast to ``dtype``
    (bfloat16 halves the frozen weights' memory and skips autocast's per-step casts on GPU)."""
    if not mlm_head:
        return Backbone(model, None, dropout, dtype)
    model_type = model.config.model_type
    if model_type not in MLM_HEADS:
        raise InputError(f"no MLM transform known for model_type '{model_type}' "
                         f"(known: {', '.join(MLM_HEADS)}); set model.mlm_head=false")
    return Backbone(model, MLM_HEADS[model_type], dropout, dtype)


def missing_head_weights(model: nn.Module, missing: List[str]) -> List[str]:
    """The missing keys outside the base encoder: the MLM head's, if the checkpoint had none."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    return [k for k in missing if not k.startswith(prefix)]


def _quiet_load(loader, name: str, **kwargs):
    """from_pretrained with the loading info, without transformers' per-key report (we say it in one line)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return loader.from_pretrained(name, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_backbone(config: ModelConfig):
    """Load (backbone, tokenizer) from a hub id or local folder (``config.name``, already resolved from ``auto``:
    see ``hub.resolve_model``). A hub model is first made ready in the local cache by ``fetch.ensure_model`` (a
    download in view where the hub answers and the cache lacks it; one error line where it cannot be had), then read
    from local files only, so loading never downloads and never retries."""
    from pathlib import Path

    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

    from lit_infoprompt.fetch import ensure_model
    from lit_infoprompt.hub import check_model_name

    check_model_name(config.name)
    name = config.name if Path(config.name).expanduser().is_dir() else ensure_model(config.name)
    local = {"local_files_only": True}
    # transformers' Auto classes look for a PEFT adapter_config.json without passing local_files_only on (a HEAD
    # request to the hub on every load); the adapter lookup gets it explicitly.
    weights_local = {**local, "adapter_kwargs": {"local_files_only": True}}
    try:
        hf_config = AutoConfig.from_pretrained(name, **local)
        tokenizer = AutoTokenizer.from_pretrained(name, **local)
        if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise InputError(f"tokenizer of '{config.name}' lacks a mask, cls or sep token: not a masked-LM encoder")
        mlm = config.mlm_head == "true" or (config.mlm_head == "auto" and declares_mlm_head(hf_config))
        model, info = _quiet_load(AutoModelForMaskedLM if mlm else AutoModel, name, config=hf_config,
                                  **weights_local)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot load model '{config.name}': {str(err).strip().splitlines()[0]}") from None
    if mlm:
        absent = missing_head_weights(model, info.get("missing_keys") or [])
        if absent and config.mlm_head == "true":
            raise InputError(f"model.mlm_head=true, but '{config.name}' has no MLM head weights (missing "
                             f"{absent[0]}{' and more' if len(absent) > 1 else ''}); use model.mlm_head=auto or false")
        if absent:
            log.warning("%s declares %s but ships no MLM head weights: using the bare encoder (the class head reads "
                        "the <mask> state)", config.name, ", ".join(hf_config.architectures or []))
            model, mlm = model.base_model, False
    if not mlm and getattr(model, "pooler", None) is not None:
        model.pooler = None  # the pooler is never used; keep it out of the parameter counts
    return from_pretrained_model(model, mlm, config.dropout, getattr(torch, config.dtype)), tokenizer
