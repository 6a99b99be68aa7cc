"""Encoder families: each loads from a saved tiny random checkpoint (no download), with or without MLM head weights.

With head weights, ``model.mlm_head=auto`` uses the head and step-0 logits equal the verbalizer's MLM scores of
the family's own ``*ForMaskedLM`` forward; without them (a config that declares ``*ForMaskedLM`` over a bare
encoder's weights, like many sentence-embedding exports) it uses the bare encoder. Either way one training step
changes the prompt and the head only.
"""

import json
import logging

import pytest
import torch

from conftest import tiny_overrides
from lit_infoprompt.model.backbone import MLM_HEADS, load_backbone
from lit_infoprompt.config import load_config
from lit_infoprompt.train.runner import build

SMALL = dict(num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def family_configs(vocab: int, pad: int):
    """model_type -> (config class name, kwargs); ALBERT and ELECTRA embed in 16 dims under a 32-dim encoder."""
    return {
        "bert": ("BertConfig", dict(hidden_size=32, max_position_embeddings=128, **SMALL)),
        "roberta": ("RobertaConfig", dict(hidden_size=32, max_position_embeddings=130, **SMALL)),
        "distilbert": ("DistilBertConfig", dict(dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                                                max_position_embeddings=128)),
        "electra": ("ElectraConfig", dict(hidden_size=32, embedding_size=16, max_position_embeddings=128, **SMALL)),
        "deberta-v2": ("DebertaV2Config", dict(hidden_size=32, max_position_embeddings=128, **SMALL)),
        "deberta-v3": ("DebertaV2Config", dict(hidden_size=32, max_position_embeddings=128, legacy=False,
                                               position_biased_input=False, relative_attention=True,
                                               pos_att_type=["p2c", "c2p"], **SMALL)),
        "albert": ("AlbertConfig", dict(hidden_size=32, embedding_size=16, max_position_embeddings=128, **SMALL)),
        "mpnet": ("MPNetConfig", dict(hidden_size=32, max_position_embeddings=130, **SMALL)),
        "modernbert": ("ModernBertConfig", dict(hidden_size=32, max_position_embeddings=128, global_attn_every_n_layers=1,
                                                num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)),
    }


def saved_family(family, tokenizer, folder, with_head: bool):
    """Save a tiny random model of ``family``: the MaskedLM model, or its bare encoder under a config that still
    declares ``*ForMaskedLM`` (a checkpoint without head weights)."""
    import transformers

    name, kwargs = family_configs(len(tokenizer), tokenizer.pad_token_id)[family]
    if not hasattr(transformers, name):
        pytest.skip(f"transformers {transformers.__version__} has no {name}")
    config = getattr(transformers, name)(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **kwargs)
    torch.manual_seed(0)
    model = transformers.AutoModelForMaskedLM.from_config(config).eval()
    with torch.no_grad():  # a random head whose decoder bias is not all zeros, so the bias path is checked too
        for name_, p in model.named_parameters():
            if name_.endswith("bias") and p.shape == (len(tokenizer),):
                p.normal_(0, 0.5)
    (model if with_head else model.base_model).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config_file = folder / "config.json"  # both declare *ForMaskedLM (save_pretrained wrote the saved class)
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "architectures": [type(model).__name__]}))
    return model


FAMILIES = list(family_configs(10, 0))


def test_every_family_asked_for_has_an_mlm_head_entry():
    assert {"bert", "roberta", "distilbert", "electra", "deberta-v2", "albert", "mpnet", "modernbert"} <= set(MLM_HEADS)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_with_head_weights_uses_the_head_and_equals_the_verbalizer_at_step0(family, tokenizer, tmp_path):
    reference = saved_family(family, tokenizer, tmp_path / "model", with_head=True)
    config = load_config(tiny_overrides(tmp_path / "model", tmp_path / "runs"))
    backbone, tok = load_backbone(config.model)
    assert backbone.has_mlm_head
    module, datamodule, _ = build(config, backbone, tok)
    batch = next(iter(datamodule.train_dataloader()))
    enc = module.encode(batch)
    with torch.no_grad():
        ours = module(batch)
        # the family's own MaskedLM forward on the same prompted input (its model_type's head, not ours)
        from test_model import prompted
        embeds, attention, mask_pos = prompted(module, batch)
        extra = {"token_type_ids": torch.zeros_like(attention)} if backbone.token_types else {}
        vocab = reference(inputs_embeds=embeds, attention_mask=attention, **extra).logits
    rows = torch.arange(len(batch["labels"]))
    label_ids = [ids[0] for ids in module_label_ids(config, tok, datamodule)]
    torch.testing.assert_close(ours, vocab[rows, mask_pos][:, label_ids], rtol=1e-4, atol=1e-4)
    assert enc["r"].shape[-1] == backbone.head_size == backbone.embedding_size
    one_step_changes_only_prompt_and_head(module, batch)


def module_label_ids(config, tokenizer, datamodule):
    from lit_infoprompt.tasks.templates import label_word_ids
    ids = label_word_ids(config.task.label_words, tokenizer, datamodule.encoder.mask_space)
    assert all(len(i) == 1 for i in ids)  # the fixture tokenizer has each label word as one token
    return ids


@pytest.mark.parametrize("family", FAMILIES)
def test_family_without_head_weights_uses_the_bare_encoder(family, tokenizer, tmp_path, caplog):
    saved_family(family, tokenizer, tmp_path / "model", with_head=False)
    config = load_config(tiny_overrides(tmp_path / "model", tmp_path / "runs"))
    if family in ("albert", "electra"):  # embeddings narrower than the encoder: the head needs the MLM head
        with pytest.raises(Exception, match="word embeddings have 16"):
            load_backbone(config.model)
        return
    with caplog.at_level(logging.WARNING):
        backbone, tok = load_backbone(config.model)
    assert not backbone.has_mlm_head
    assert sum("ships no MLM head weights" in r.getMessage() for r in caplog.records) == 1  # one line, no key list
    module, datamodule, _ = build(config, backbone, tok)
    batch = next(iter(datamodule.train_dataloader()))
    assert module.encode(batch)["r"].shape[-1] == backbone.hidden_size
    one_step_changes_only_prompt_and_head(module, batch)


def test_an_explicit_mlm_head_without_weights_is_one_error(tokenizer, tmp_path):
    saved_family("mpnet", tokenizer, tmp_path / "model", with_head=False)
    config = load_config(tiny_overrides(tmp_path / "model", tmp_path / "runs", "model.mlm_head=true"))
    with pytest.raises(Exception, match="has no MLM head weights"):
        load_backbone(config.model)


def one_step_changes_only_prompt_and_head(module, batch):
    frozen = {k: v.clone() for k, v in module.backbone.state_dict().items()}
    trainable = {k: p.detach().clone() for k, p in module.named_parameters() if p.requires_grad}
    assert set(trainable) == {"prompt.weight", "head.vectors", "head.bias"}
    optimizer = module.configure_optimizers()["optimizer"]
    module.train()
    module.training_step(batch, 0).backward()
    optimizer.step()
    assert all(torch.equal(frozen[k], v) for k, v in module.backbone.state_dict().items())
    assert all(not torch.equal(trainable[k], p) for k, p in module.named_parameters() if p.requires_grad)
