"""Shared fixtures: a tiny random RoBERTa (with MLM head) and a tiny BERT encoder (without), each with a
tokenizer trained in the test on the fixture text. No files are downloaded, nothing touches the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

# Tiny models: one intra-op thread is faster than two fighting over a loaded 2-core machine (15-40x here).
torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
SPECIALS = {"cls_token": "<s>", "bos_token": "<s>", "pad_token": "<pad>", "sep_token": "</s>",
            "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>"}


def corpus():
    lines = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            lines += [str(v) for v in json.loads(line).values() if isinstance(v, str)]
    return lines + ["Answer: yes no maybe ? , . Classify the relation between the two sentences."] * 20


def bpe_tokenizer():
    """A byte-level BPE tokenizer (RoBERTa-like) trained on the fixture text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)


def tiny_roberta(tokenizer, seed=0):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                           architectures=["RobertaForMaskedLM"])
    return RobertaForMaskedLM(config).eval()


def tiny_bert_encoder(tokenizer, seed=0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                        architectures=["BertModel"])
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="session")
def tokenizer():
    return bpe_tokenizer()


@pytest.fixture(scope="session")
def roberta_dir(tmp_path_factory, tokenizer):
    """A saved tiny RoBERTa with MLM head, loadable by model.name=<dir>."""
    path = tmp_path_factory.mktemp("tiny-roberta")
    tiny_roberta(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, tokenizer):
    """A saved tiny bare BERT encoder (no MLM head), like all-MiniLM-L6-v2."""
    path = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert_encoder(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_overrides(model_dir, out_dir, *extra):
    """Overrides for a seconds-long CPU run on the fixture data."""
    return [f"model.name={model_dir}", f"data.dir={FIXTURES}", f"out_dir={out_dir}", "data.shots=4",
            "data.batch_size=4", "model.max_length=64", "prompt.length=4", "trainer.max_steps=6",
            "trainer.val_every=3", "trainer.progress_bar=false", "trainer.accelerator=cpu", *extra]


@pytest.fixture
def tiny_config(roberta_dir, tmp_path):
    from lit_infoprompt.config import load_config

    return lambda *extra: load_config(tiny_overrides(roberta_dir, tmp_path / "runs", *extra))
