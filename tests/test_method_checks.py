"""Checks that fail when the method is computed wrongly, not only when it crashes: the total loss against a
hand computation, the learning-rate schedule and parameter groups, the bottleneck's evaluation mode, the
wiring of the representation loss (positive, negatives, critic) and an end-to-end learning test in which
every method preset must solve a small separable task."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_roberta
from test_infoprompt import METHODS, make
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.model.bottleneck import VariationalBottleneck
from lit_infoprompt.config import load_config
from lit_infoprompt.model.module import PromptClassifier, warmup_then_linear_decay
from lit_infoprompt.train.runner import build, run


def at_step(monkeypatch, step: int) -> None:
    """Make every PromptClassifier report ``global_step == step`` (Lightning reads it from the trainer)."""
    monkeypatch.setattr(PromptClassifier, "global_step", property(lambda self: step))


def content_aware_backbone(tokenizer):
    """conftest's tiny RoBERTa with its encoder's weight matrices scaled x10. At init scale (std 0.02) the
    random attention is uniform and each layer adds ~1% to the residual stream, so the <mask> state barely
    depends on the text (the class-mean gap is ~1e-3 of its norm) and no method learns in a few dozen steps;
    scaled, the frozen random encoder mixes the cue word into the <mask> state like a pretrained one would."""
    model = tiny_roberta(tokenizer)
    with torch.no_grad():
        for p in model.roberta.encoder.parameters():
            if p.dim() == 2:
                p.mul_(10.0)
    return from_pretrained_model(model, mlm_head=True, dropout=False)


# -- 1. the total loss -----------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [0, 8, 20])
def test_total_loss_is_ce_plus_decayed_weighted_mi_terms(tiny_config, tokenizer, monkeypatch, step):
    gamma, beta, lam, decay, total = 0.3, 0.7, 0.05, 0.5, 20
    module = make(tiny_config, tokenizer, "method=infoprompt", f"method.head_weight={gamma}",
                  f"method.rep_weight={beta}", f"method.kl_weight={lam}", f"method.decay={decay}",
                  f"trainer.max_steps={total}")[0]
    at_step(monkeypatch, step)
    assert module.global_step == step
    ce, head, rep, kl = 1.3, 2.1, 0.4, 5.0  # distinct values: a swapped weight changes the sum
    terms = {"loss/ce": torch.tensor(ce), "mi/head": torch.tensor(head), "mi/rep": torch.tensor(rep),
             "kl": torch.tensor(kl)}
    w = 1 - decay * step / total  # 1.0, 0.8, 0.5
    expected = ce + w * (gamma * head + beta * rep + lam * kl)
    assert float(module.total_loss(terms)) == pytest.approx(expected, rel=1e-6)
    # The CE term alone is never weighted or decayed.
    assert float(module.total_loss({"loss/ce": torch.tensor(ce)})) == pytest.approx(ce, rel=1e-6)


def test_total_loss_of_the_module_terms(tiny_config, tokenizer, monkeypatch):
    """The same composition on the terms ``losses`` actually returns (and nothing else enters the total)."""
    module, _, batch = make(tiny_config, tokenizer, "method=infoprompt", "method.head_weight=0.3",
                            "method.rep_weight=0.7", "method.kl_weight=0.05", "method.decay=0.5",
                            "trainer.max_steps=20")
    at_step(monkeypatch, 12)
    terms = module.losses(batch)
    assert {"loss/ce", "mi/head", "mi/rep", "kl"} <= set(terms)
    expected = terms["loss/ce"] + 0.7 * (0.3 * terms["mi/head"] + 0.7 * terms["mi/rep"] + 0.05 * terms["kl"])
    torch.testing.assert_close(module.total_loss(terms), expected)


# -- 2. learning-rate schedule and optimiser -------------------------------------------------------------
@pytest.mark.parametrize("step, factor", [
    (0, 1 / 6),  # warm-up starts above 0: (t + 1) / (warmup + 1)
    (2, 3 / 6),  # during warm-up
    (4, 5 / 6),  # last warm-up step
    (5, 1.0),  # end of warm-up: the peak
    (35, 15 / 45),  # linear decay (T - t) / (T - warmup)
    (49, 1 / 45),  # the last optimiser step of max_steps = 50
    (50, 0.0),
])
def test_warmup_then_linear_decay_values(step, factor):
    assert warmup_then_linear_decay(5, 50)(step) == pytest.approx(factor, abs=1e-12)


def test_no_warmup_starts_at_the_full_rate():
    schedule = warmup_then_linear_decay(0, 10)
    assert [schedule(t) for t in (0, 5, 9)] == pytest.approx([1.0, 0.5, 0.1])


def test_optimiser_groups_and_scheduled_learning_rates(tiny_config, tokenizer):
    prompt_lr, head_lr = 0.02, 0.003
    module = make(tiny_config, tokenizer, "method=infoprompt", f"optim.prompt_lr={prompt_lr}",
                  f"optim.head_lr={head_lr}", "optim.weight_decay=0.01", "optim.warmup_ratio=0.1",
                  "trainer.max_steps=50")[0]
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert config["lr_scheduler"]["interval"] == "step"  # stepped per optimiser step, not per epoch
    names = {id(p): n for n, p in module.named_parameters()}
    prompt_group, other_group = ({names[id(p)] for p in g["params"]} for g in optimizer.param_groups)
    assert prompt_group == {"prompt.weight"}
    assert other_group == module.trainable_names() - {"prompt.weight"}
    assert {"head.vectors", "head.bias", "bottleneck.mu.weight", "context.proj.weight"} <= other_group
    assert not any(n.startswith("backbone.") for n in prompt_group | other_group)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.01]
    seen = {}
    for step in range(50):  # warm-up over int(0.1 * 50) = 5 steps, then decay to 0 at step 50
        seen[step] = [g["lr"] for g in optimizer.param_groups]
        optimizer.step()  # no gradients: nothing moves, the schedule still advances
        scheduler.step()
    for step, factor in [(0, 1 / 6), (2, 3 / 6), (5, 1.0), (35, 15 / 45), (49, 1 / 45)]:
        assert seen[step] == pytest.approx([prompt_lr * factor, head_lr * factor], rel=1e-9), step


# -- 3. the bottleneck and the representation loss -------------------------------------------------------
def test_bottleneck_is_the_mean_in_evaluation_and_a_sample_in_training(tiny_config, tokenizer):
    module, _, batch = make(tiny_config, tokenizer, "method=infoprompt")
    with torch.no_grad():
        r = module.encode(batch)["r"]
        module.eval()
        out = module.classify(r)
        torch.testing.assert_close(out["z"], module.bottleneck.mu(r), rtol=0, atol=0)
        torch.testing.assert_close(out["logits"], module.head(module.bottleneck.out(module.bottleneck.mu(r))))
        assert torch.equal(module(batch), module(batch))
        module.train()
        out = module.classify(r)
        assert not torch.allclose(out["z"], out["mu"])  # sigma >= e^-2: a sample is never the mean
        assert not torch.allclose(module(batch), module(batch))
    bottleneck = VariationalBottleneck(8, 4).eval()
    x = torch.randn(3, 8)
    assert torch.equal(bottleneck(x)[0], bottleneck(x)[0])
    assert not torch.allclose(bottleneck.train()(x)[0], bottleneck(x)[0])


class RecordedNoise:
    """Stands in for torch.randn / torch.randn_like: fresh reproducible noise per call, every draw kept."""

    def __init__(self, monkeypatch):
        self.draws = []
        self.generator = torch.Generator().manual_seed(1234)
        real = torch.randn

        def randn(*size, dtype=None, device=None, **_):
            size = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
            noise = real(*size, generator=self.generator, dtype=dtype or torch.float32).to(device or "cpu")
            self.draws.append(noise)
            return noise

        monkeypatch.setattr(torch, "randn", randn)
        monkeypatch.setattr(torch, "randn_like", lambda x, **_: randn(*x.shape, dtype=x.dtype, device=x.device))

    def one_of_shape(self, *shape):
        found = [d for d in self.draws if tuple(d.shape) == shape]
        assert len(found) == 1, f"expected one noise draw of shape {shape}, got {[tuple(d.shape) for d in self.draws]}"
        return found[0]


def info_nce_by_hand(positive, negatives):
    return -torch.log_softmax(torch.cat([positive[:, None], negatives], 1), 1)[:, 0].mean()


def test_rep_loss_contrasts_the_head_sample_with_the_same_examples_prompt_free_samples(tiny_config, tokenizer,
                                                                                      monkeypatch):
    """L_rep by hand through the module's own networks, with the noise recorded: positive = the prompted sample
    that fed the head, negatives = m samples of the prompt-free posterior of the same examples (cache rows at
    batch['index']), score <W_o z + b_o, q>/sqrt(d) with q = mean_j (W_q P_j + b_q)."""
    m = 5
    # The content-aware backbone: with conftest's plain one the prompt barely moves the <mask> state, so
    # prompted and prompt-free posteriors (and different examples) are too alike to tell wiring errors apart.
    module, datamodule, _ = build(tiny_config("method=infoprompt", f"method.num_negatives={m}"),
                                  content_aware_backbone(tokenizer), tokenizer)
    module.ensure_cache(datamodule)
    module.train()
    with torch.no_grad():  # larger scores than at init, so that the loss depends clearly on each sample
        module.bottleneck.mu.weight.mul_(30)
        module.bottleneck.log_sigma.bias.sub_(1.5)
        module.context.proj.weight.mul_(10)
    rows = datamodule.train_rows
    batch = datamodule.collate([rows[i] for i in (5, 0, 9, 2)])  # row index != position in the batch
    index = batch["index"]
    B, k, d = len(index), module.method.bottleneck_dim, module.backbone.hidden_size
    head_inputs = []
    module.head.register_forward_hook(lambda mod, args, out: head_inputs.append(args[0].detach()))
    noise = RecordedNoise(monkeypatch)
    with torch.no_grad():
        terms = module.losses(batch)
        eps_pos, eps_neg = noise.one_of_shape(B, k), noise.one_of_shape(B, m, k)
        bottleneck, W_q, b_q = module.bottleneck, module.context.proj.weight, module.context.proj.bias
        # The positive: the sample of the prompted posterior that the head classified.
        mu, log_sigma = bottleneck.posterior(module.encode(batch)["r"])
        u_pos = bottleneck.out(mu + log_sigma.exp() * eps_pos)
        torch.testing.assert_close(head_inputs[-1], u_pos)
        logits = module.head(u_pos)
        torch.testing.assert_close(terms["loss/ce"], F.cross_entropy(logits, batch["labels"]))
        # The negatives: m samples of the SAME examples' prompt-free posterior (cache rows at batch['index']).
        def negatives_from(r0):
            mu0, log_sigma0 = bottleneck.posterior(r0)
            return bottleneck.out(mu0[:, None] + log_sigma0.exp()[:, None] * eps_neg)  # (B, m, d)
        q = module.prompt.weight.mean(0) @ W_q.T + b_q  # q = mean_j (W_q P_j + b_q)
        score = lambda u: (u * q).sum(-1) / math.sqrt(d)  # noqa: E731
        expected = info_nce_by_hand(score(u_pos), score(negatives_from(module.free_mask[index])))
        torch.testing.assert_close(terms["mi/rep"], expected)
        # The check has power: negatives from the prompted posterior, from other examples' prompt-free states,
        # or a critic without the sqrt(d) scale give other values on this batch.
        wrong = {
            "prompted negatives": info_nce_by_hand(score(u_pos), score(
                bottleneck.out(mu[:, None] + log_sigma.exp()[:, None] * eps_neg))),
            "other examples": info_nce_by_hand(score(u_pos), score(negatives_from(module.free_mask[index.roll(1)]))),
            "rows 0..B-1": info_nce_by_hand(score(u_pos), score(negatives_from(module.free_mask[:B]))),
            "unscaled": info_nce_by_hand(score(u_pos) * math.sqrt(d), score(negatives_from(
                module.free_mask[index])) * math.sqrt(d)),
        }
        for name, value in wrong.items():  # each at least 100x the tolerance of assert_close away
            assert abs(float(value - expected)) > 1e-3, name


# -- 4. end to end: every method learns a separable task -------------------------------------------------
NAMES = ["Anna", "Carla", "David", "Emma", "Frank"]
NOUNS = ["shop", "train", "river", "bridge", "market", "garden", "concert", "cake", "letter", "bank"]
CUE = {"sure": "knew", "unsure": "doubted"}  # the one word that decides the label


@pytest.fixture(scope="module")
def cue_task(tmp_path_factory):
    """A 2-class superglue-format task whose label is decided by one word: '<name> knew|doubted the <noun> .'
    64 train-pool rows (16 train + 16 dev per class), 40 balanced test rows."""
    root = tmp_path_factory.mktemp("cue")
    rng = random.Random(0)
    (root / "cue").mkdir()
    for name, size in (("train.jsonl", 64), ("val.jsonl", 40)):
        labels = ["sure", "unsure"] * (size // 2)
        rows = [{"text": f"{rng.choice(NAMES)} {CUE[y]} the {rng.choice(NOUNS)} .", "label": y, "idx": i}
                for i, y in enumerate(labels)]
        (root / "cue" / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    task = root / "cue.yaml"
    task.write_text("format: superglue\nfolder: cue\ntrain_file: train.jsonl\ntest_file: val.jsonl\n"
                    "labels: [sure, unsure]\nlabel_words: [\"yes\", \"no\"]\ntemplate: \"{text} ? <mask> .\"\n"
                    "metrics: [acc]\nmetric: acc\n")
    return root, task


@pytest.fixture
def one_thread():
    """A tiny model gains nothing from intra-op threads, and on a busy 2-core machine their spin-waits made a
    1 s run take 40 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_learns_a_one_word_task(cue_task, tokenizer, tmp_path, one_thread, method):
    root, task = cue_task
    config = load_config([f"task={task}", f"method={method}", f"data.dir={root}", f"out_dir={tmp_path}",
                          "data.shots=16", "data.batch_size=8", "model.max_length=32", "prompt.length=4",
                          "optim.prompt_lr=0.05", "optim.head_lr=0.05", "trainer.max_steps=50",
                          "trainer.val_every=25", "trainer.progress_bar=false", "trainer.accelerator=cpu"])
    summary = run(config, content_aware_backbone(tokenizer), tokenizer)
    assert summary["steps"] == 50
    # Balanced 2-class test set: a constant classifier (or a collapsed bottleneck) scores 0.5.
    assert summary["test_acc"] >= 0.8, summary
