"""InfoPrompt in the module: gradient paths, one encoder pass per step, the prompt-free cache, instance
prompts, template placement, and every method preset trained end to end."""

import json

import pytest
import torch

from conftest import tiny_roberta
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.model.prompt import InstancePrompt, insert_slots, insertion_points
from lit_infoprompt.train.runner import build, run

METHODS = ["prompt_tuning", "infoprompt", "prompt_tuning_bottleneck", "infoprompt_head", "infoprompt_rep",
           "infoprompt_plus"]


def make(tiny_config, tokenizer, *extra):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    module, datamodule, _ = build(tiny_config(*extra), backbone, tokenizer)
    module.ensure_cache(datamodule)
    module.train()
    return module, datamodule, next(iter(datamodule.train_dataloader()))


def grads(module, loss):
    module.zero_grad()
    loss.backward()
    return {n: p.grad for n, p in module.named_parameters() if p.requires_grad}


def test_estimator_networks_exist_only_where_used_and_are_trainable(tiny_config, tokenizer):
    module = make(tiny_config, tokenizer, "method=infoprompt")[0]
    names = module.trainable_names()
    assert {"bottleneck.mu.weight", "bottleneck.out.weight", "context.proj.weight"} <= names
    baseline = make(tiny_config, tokenizer, "method=prompt_tuning")[0]
    assert baseline.bottleneck is None and baseline.context is None
    assert module.parameter_counts()["trainable"] > baseline.parameter_counts()["trainable"]


def test_head_loss_reaches_prompt_and_class_vectors(tiny_config, tokenizer):
    module, _, batch = make(tiny_config, tokenizer, "method=infoprompt_head")
    g = grads(module, module.losses(batch)["mi/head"])
    assert g["prompt.weight"].abs().sum() > 0 and g["head.vectors"].abs().sum() > 0


def test_rep_loss_reaches_prompt_only_through_the_encoder(tiny_config, tokenizer, monkeypatch):
    module, _, batch = make(tiny_config, tokenizer, "method=infoprompt")
    g = grads(module, module.losses(batch)["mi/rep"])
    assert g["prompt.weight"].abs().sum() > 0 and g["context.proj.weight"].abs().sum() > 0
    encode = module.backbone.encode
    monkeypatch.setattr(module.backbone, "encode", lambda embeds, mask: encode(embeds.detach(), mask))
    g = grads(module, module.losses(batch)["mi/rep"])
    assert g["prompt.weight"] is None or g["prompt.weight"].abs().sum() == 0  # q is stop-gradient
    assert g["context.proj.weight"].abs().sum() > 0


def test_zero_mi_weights_give_the_prompt_tuning_update(tiny_config, tokenizer):
    """Two training steps of a method whose MI weights are zero (losses -> total_loss -> the optimiser of
    configure_optimizers) equal two hand-written CE-only AdamW steps: cross-entropy of the logits, the prompt at
    optim.prompt_lr, the class vectors and bias at optim.head_lr, decoupled weight decay. Warm-up is off, so
    the scheduled rate is the base rate (the schedule has its own tests). Gradients are compared too: Adam's
    first step is nearly sign(g) and would hide an extra loss term."""
    from torch.nn.functional import cross_entropy

    optim = ["optim.prompt_lr=0.02", "optim.head_lr=0.005", "optim.weight_decay=0.1", "optim.warmup_ratio=0"]
    names = ("prompt.weight", "head.vectors", "head.bias")

    def state(module):
        return {n: p.detach().clone() for n, p in module.named_parameters() if n in names}

    def steps(module, batches, loss_fn, optimizer):
        grads = []
        for batch in batches:
            optimizer.zero_grad()
            loss_fn(module, batch).backward()
            grads.append({n: p.grad.clone() for n, p in module.named_parameters() if n in names})
            optimizer.step()
        return grads, state(module)

    hand, datamodule, _ = make(tiny_config, tokenizer, "method=prompt_tuning", *optim)
    batches = [batch for batch, _ in zip(datamodule.train_dataloader(), range(2))]
    start = state(hand)
    adamw = torch.optim.AdamW([{"params": [hand.prompt.weight], "lr": 0.02},
                               {"params": [hand.head.vectors, hand.head.bias], "lr": 0.005}], weight_decay=0.1)
    expected_grads, expected = steps(hand, batches, lambda m, b: cross_entropy(m(b), b["labels"]), adamw)
    assert all(not torch.equal(expected[n], start[n]) for n in names)  # every trainable moved

    def method_steps(*extra):
        module = make(tiny_config, tokenizer, *optim, *extra)[0]
        assert all(torch.equal(p, start[n]) for n, p in state(module).items())  # same start as the baseline
        optimizer = module.configure_optimizers()["optimizer"]
        return steps(module, batches, lambda m, b: m.total_loss(m.losses(b)), optimizer)

    zero = ["method.head_weight=0", "method.rep_weight=0", "method.kl_weight=0", "method.bottleneck=false"]
    for extra in (["method=prompt_tuning"], ["method=infoprompt_head", "method.head_weight=0"],
                  ["method=infoprompt", *zero]):
        grads, after = method_steps(*extra)
        for got, want in zip(grads, expected_grads):
            assert got.keys() == want.keys(), extra
            for n in names:
                torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-8, msg=f"{extra} grad {n}")
        for n in names:
            torch.testing.assert_close(after[n], expected[n], rtol=1e-5, atol=1e-8, msg=f"{extra} {n}")
    grads, after = method_steps("method=infoprompt_head")  # gamma = 0.1: the same comparison must fail
    assert not torch.allclose(grads[0]["prompt.weight"], expected_grads[0]["prompt.weight"], rtol=1e-5, atol=1e-8)
    assert not torch.allclose(after["prompt.weight"], expected["prompt.weight"], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("extra", [[f"method={m}"] for m in METHODS] + [["method=infoprompt", "prompt.kind=instance"]])
def test_encoder_runs_once_per_training_step(tiny_config, tokenizer, monkeypatch, extra):
    module, _, batch = make(tiny_config, tokenizer, *extra)
    calls = []
    encode = module.backbone.encode
    monkeypatch.setattr(module.backbone, "encode", lambda *a: calls.append(1) or encode(*a))
    module.training_step(batch, 0)
    assert len(calls) == 1


def test_cache_equals_a_fresh_prompt_free_pass(tiny_config, tokenizer):
    module, _, batch = make(tiny_config, tokenizer, "method=infoprompt")
    with torch.no_grad():
        hidden = module.backbone.encode(module.backbone.embed(batch["input_ids"]), batch["attention_mask"])
        rows = torch.arange(len(batch["labels"]))
        fresh = module.backbone.head_input(hidden[rows, batch["mask_pos"]])
    torch.testing.assert_close(module.free_mask[batch["index"]], fresh, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(module.free_cls[batch["index"]], hidden[:, 0], rtol=1e-5, atol=1e-5)


def test_cache_rebuilds_when_its_inputs_change(tiny_config, tokenizer, monkeypatch):
    module, datamodule, _ = make(tiny_config, tokenizer, "method=infoprompt")
    calls = []
    encode = module.backbone.encode
    monkeypatch.setattr(module.backbone, "encode", lambda *a: calls.append(1) or encode(*a))
    module.ensure_cache(datamodule)
    assert not calls  # same backbone, template, max_length and ids: reused
    datamodule.config.task.template = "{hypothesis} ? <mask> , {premise}"
    module.ensure_cache(datamodule)
    assert calls  # a changed template means stale states: recomputed


def test_instance_prompts_differ_across_a_batch(tiny_config, tokenizer):
    module, _, batch = make(tiny_config, tokenizer, "prompt.kind=instance")
    assert isinstance(module.prompt, InstancePrompt)
    prompts = module.encode(batch)["prompt"]  # (B, n, d)
    assert prompts.shape[0] == len(batch["labels"]) >= 2
    assert all(not torch.allclose(prompts[0], prompts[i]) for i in range(1, prompts.shape[0]))


def test_template_placement_puts_a_quarter_of_the_slots_at_each_place(tiny_config, tokenizer):
    module, _, batch = make(tiny_config, tokenizer, "prompt.placement=template", "prompt.length=8")
    tokens = module.backbone.embed(batch["input_ids"])
    prompt = module.prompt(len(batch["labels"]))
    points = insertion_points("template", batch["attention_mask"], batch["mask_pos"])
    embeds, mask, shift = insert_slots(tokens, batch["attention_mask"], prompt, points)
    for b in range(len(batch["labels"])):
        m, last = int(batch["mask_pos"][b]), int(batch["attention_mask"][b].sum()) - 1
        # <s> P0 P1 x.. P2 P3 <mask> P4 P5 x.. P6 P7 </s> pad..
        expected = [0, "P0", "P1", *range(1, m), "P2", "P3", m, "P4", "P5", *range(m + 1, last), "P6", "P7", last]
        for position, what in enumerate(expected):
            want = prompt[b, int(what[1])] if isinstance(what, str) else tokens[b, what]
            assert torch.equal(embeds[b, position], want), (b, position, what)
        assert int(mask[b].sum()) == last + 1 + 8 and m + int(shift[b, m]) == m + 4
    assert not torch.allclose(module(batch), make(tiny_config, tokenizer, "prompt.length=8")[0](batch))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_end_to_end(tiny_config, tokenizer, method):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    summary = run(tiny_config(f"method={method}"), backbone, tokenizer)
    header = (open(summary["run_dir"] + "/metrics.csv").readline().strip().split(","))
    expected = {"prompt_tuning": [], "infoprompt": ["train/mi/head", "train/mi/rep", "train/kl"],
                "prompt_tuning_bottleneck": ["train/kl"], "infoprompt_head": ["train/mi/head"],
                "infoprompt_rep": ["train/mi/rep", "train/kl"],
                "infoprompt_plus": ["train/mi/head", "train/mi/rep", "train/kl"]}[method]
    assert {"train/loss", "train/loss/ce", *expected} <= set(header)
    assert not {"train/mi/head", "train/mi/rep", "train/kl"} - set(expected) & set(header)
    assert summary["method"] == method and summary["steps"] == 6
    assert json.load(open(summary["run_dir"] + "/summary.json"))["test_acc"] == summary["test_acc"]


def test_a_bfloat16_backbone_trains_with_float32_trainables(tiny_config, tokenizer):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False, dtype=torch.bfloat16)
    module, datamodule, _ = build(tiny_config("method=infoprompt", "model.dtype=bfloat16"), backbone, tokenizer)
    module.ensure_cache(datamodule)
    module.train()
    assert next(module.backbone.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in module.parameters() if p.requires_grad)
    loss = module.total_loss(module.losses(next(iter(datamodule.train_dataloader()))))
    loss.backward()
    assert torch.isfinite(loss) and module.prompt.weight.grad.abs().sum() > 0
