"""The prompted classifier: the prompt matters, only prompt/head train, step 0 equals the verbalizer,
checkpoints hold trainable tensors only."""

import torch

from conftest import tiny_bert_encoder, tiny_roberta
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.model.prompt import insert_slots, insertion_points
from lit_infoprompt.train.runner import build


def make(tiny_config, tokenizer, *extra, model=None):
    config = tiny_config(*extra)
    backbone = from_pretrained_model(model or tiny_roberta(tokenizer), mlm_head=model is None, dropout=False)
    return build(config, backbone, tokenizer)


def batch_of(datamodule):
    return next(iter(datamodule.train_dataloader()))


def prompted(module, batch):
    """(embeds, attention, new <mask> index) as the module builds them."""
    prompt = module.prompt(len(batch["labels"]))
    points = insertion_points(module.placement, batch["attention_mask"], batch["mask_pos"])
    embeds, attention, shift = insert_slots(module.backbone.embed(batch["input_ids"]), batch["attention_mask"],
                                            prompt, points)
    rows = torch.arange(len(batch["labels"]))
    return embeds, attention, batch["mask_pos"] + shift[rows, batch["mask_pos"]]


def test_prompt_changes_the_output(tiny_config, tokenizer):
    module, datamodule, _ = make(tiny_config, tokenizer)
    batch = batch_of(datamodule)
    before = module(batch)
    with torch.no_grad():
        module.prompt.weight.add_(torch.randn_like(module.prompt.weight))
    assert not torch.allclose(before, module(batch))


def test_prompt_is_spliced_after_cls(tiny_config, tokenizer):
    module, datamodule, _ = make(tiny_config, tokenizer)
    batch = batch_of(datamodule)
    embeds, attention, mask_pos = prompted(module, batch)
    n = module.prompt.length
    assert embeds.shape[1] == batch["input_ids"].shape[1] + n and attention[:, 1:1 + n].eq(1).all()
    assert torch.equal(embeds[0, 1:1 + n], module.prompt.weight)
    assert torch.equal(mask_pos, batch["mask_pos"] + n)
    rows = torch.arange(len(batch["labels"]))
    masked = embeds[rows, mask_pos]
    assert torch.equal(masked, module.backbone.embed(torch.full_like(batch["labels"], tokenizer.mask_token_id)))


def test_only_prompt_and_head_change_after_a_step(tiny_config, tokenizer):
    module, datamodule, _ = make(tiny_config, tokenizer)
    frozen = {k: v.clone() for k, v in module.backbone.state_dict().items()}
    trainable = {k: p.detach().clone() for k, p in module.named_parameters() if p.requires_grad}
    assert set(trainable) == {"prompt.weight", "head.vectors", "head.bias"}
    optimizer = module.configure_optimizers()["optimizer"]
    module.train()
    module.training_step(batch_of(datamodule), 0).backward()
    optimizer.step()
    assert all(torch.equal(frozen[k], v) for k, v in module.backbone.state_dict().items())
    assert all(not torch.equal(trainable[k], p) for k, p in module.named_parameters() if p.requires_grad)


def test_backbone_dropout_mode_survives_train_calls(tiny_config, tokenizer):
    module, _, _ = make(tiny_config, tokenizer)
    module.train()
    assert not module.backbone.training and not module.backbone.model.training
    assert module.prompt.training
    module.backbone.dropout = True
    module.train()
    assert module.backbone.model.training


def test_step0_logits_equal_the_mlm_verbalizer(tiny_config, tokenizer):
    module, datamodule, _ = make(tiny_config, tokenizer)
    batch = batch_of(datamodule)
    mlm = module.backbone.model
    embeds, attention, mask_pos = prompted(module, batch)
    with torch.no_grad():
        vocab_logits = mlm(inputs_embeds=embeds, attention_mask=attention).logits  # (B, L, V)
        ours = module(batch)
    rows = torch.arange(len(batch["labels"]))
    label_ids = [tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in ("yes", "no", "maybe")]
    verbalizer = vocab_logits[rows, mask_pos][:, label_ids]
    torch.testing.assert_close(ours, verbalizer, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.argmax(-1), verbalizer.argmax(-1))


def test_encoder_without_mlm_head_feeds_the_mask_state(tiny_config, tokenizer):
    module, datamodule, _ = make(tiny_config, tokenizer, model=tiny_bert_encoder(tokenizer))
    batch = batch_of(datamodule)
    assert not module.backbone.has_mlm_head
    embeds, attention, mask_pos = prompted(module, batch)
    with torch.no_grad():
        hidden = module.backbone.model(inputs_embeds=embeds, attention_mask=attention).last_hidden_state
    rows = torch.arange(len(batch["labels"]))
    torch.testing.assert_close(module.encode(batch)["r"], hidden[rows, mask_pos])  # r = h, no transform
    yes = tokenizer.encode(" yes", add_special_tokens=False)[0]
    torch.testing.assert_close(module.head.vectors[0], module.backbone.word_embeddings.weight[yes])
    assert module.head.bias.eq(0).all()


def test_checkpoint_holds_trainable_tensors_only_and_reloads(tiny_config, tokenizer):
    module, _, _ = make(tiny_config, tokenizer)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert set(checkpoint["state_dict"]) == {"prompt.weight", "head.vectors", "head.bias"}
    other, _, _ = make(tiny_config, tokenizer, "seed=99")
    other.on_load_checkpoint(checkpoint)
    other.load_state_dict(checkpoint["state_dict"], strict=True)
    assert torch.equal(other.prompt.weight, module.prompt.weight)
