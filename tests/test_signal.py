"""The options that let InfoPrompt's information terms carry signal (issue 24), against hand computations: the
cosine critics, each term's ceiling and fraction of it, the residual bottleneck's step-0 equality with prompt
tuning, and the representation critic's own projection. Every option is off by default (the reference's form)."""

import csv
import math

import pytest
import torch

from conftest import tiny_roberta
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.model.estimators import Critic, scaled_dot
from lit_infoprompt.model.losses import head_nce
from lit_infoprompt.model.module import estimate_diagnostics
from lit_infoprompt.train.runner import run
from test_infoprompt import grads, make


def nce(pos, negs):
    return -math.log(math.exp(pos) / (math.exp(pos) + sum(math.exp(n) for n in negs)))


def test_cosine_critics_by_hand():
    a, c = torch.tensor([[3.0, 4.0], [0.0, -2.0]]), torch.tensor([1.0, 0.0])  # cosines 0.6 and 0
    assert torch.allclose(Critic("cosine", 0.5)(a, c), torch.tensor([1.2, 0.0]))
    learned = Critic("cosine_learned", 0.07)  # CLIP's start: 1/tau = 1/0.07
    assert torch.allclose(learned(a, c), torch.tensor([0.6 / 0.07, 0.0]))
    with torch.no_grad():
        learned.log_scale.fill_(10.0)  # e^10 > 100: used capped at CLIP's 100 (tau >= 0.01)
    assert torch.allclose(learned(a, c), torch.tensor([60.0, 0.0]))
    assert torch.equal(Critic("dot")(a, c), scaled_dot(a, c))  # the reference's critic, unchanged
    with pytest.raises(ValueError):
        Critic("bilinear")


def test_learned_temperature_is_trained_below_its_cap():
    learned = Critic("cosine_learned", 0.07)
    learned(torch.tensor([[3.0, 4.0]]), torch.tensor([1.0, 0.0])).sum().backward()
    assert learned.log_scale.grad is not None and learned.log_scale.grad.item() == pytest.approx(0.6 / 0.07)


def test_head_loss_with_a_cosine_critic_by_hand():
    prompt = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]])  # P_bar = (0.5, 0.5, 0, 0)
    vectors = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0]])  # c = (1, 1, 0, 0)
    tokens = torch.tensor([[[1.0, 0, 0, 0], [0, 0, 3.0, 0], [9.0, 9.0, 0, 0]]])  # the last one is padding
    mask = torch.tensor([[1, 1, 0]])
    # cosines with c: P_bar 1, (1,0,0,0) 1/sqrt 2, (0,0,3,0) 0; over tau = 0.1
    losses, count = head_nce(prompt, vectors, tokens, mask, Critic("cosine", 0.1))
    assert losses.item() == pytest.approx(nce(10.0, [10 / math.sqrt(2), 0.0]), rel=1e-5)
    assert count.tolist() == [2]


def test_each_term_has_its_ceiling_and_fraction_by_hand():
    losses, count = torch.tensor([1.0, 2.0]), torch.tensor([3, 7])  # ceilings log 4 and log 8
    d = estimate_diagnostics("head", losses, count)
    estimate = ((math.log(4) - 1) + (math.log(8) - 2)) / 2
    top = (math.log(4) + math.log(8)) / 2
    assert d["mi_head_nats"].item() == pytest.approx(estimate)
    assert d["mi_head_ceiling_nats"].item() == pytest.approx(top)
    assert d["mi_head_frac_of_ceiling"].item() == pytest.approx(estimate / top)


def test_residual_bottleneck_predicts_what_prompt_tuning_predicts_at_step_0(tiny_config, tokenizer):
    baseline, _, batch = make(tiny_config, tokenizer, "method=prompt_tuning")
    residual = make(tiny_config, tokenizer, "method=infoprompt", "method.bottleneck_form=residual",
                    "method.rep_projection=own")[0]
    replace = make(tiny_config, tokenizer, "method=infoprompt")[0]
    for module in (baseline, residual, replace):
        module.eval()
    with torch.no_grad():
        assert torch.equal(residual(batch), baseline(batch))
        assert not torch.allclose(replace(batch), baseline(batch))  # today's form starts as a random head
    sigma = residual.bottleneck.posterior(torch.randn(3, residual.backbone.head_size))[1].exp()
    assert torch.allclose(sigma, torch.full_like(sigma, math.exp(-2)))  # the floor of its clamp


def test_residual_bottleneck_has_prompt_tunings_step_0_dev_score(tiny_config, tokenizer):
    scores = []
    for extra in (["method=prompt_tuning"], ["method=prompt_tuning_bottleneck", "method.bottleneck_form=residual"]):
        backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
        summary = run(tiny_config(*extra), backbone, tokenizer)
        with open(summary["run_dir"] + "/curve.csv") as handle:
            first = next(csv.DictReader(handle))
        scores.append({k: v for k, v in first.items() if k.startswith("val/")})
    assert scores[0] and scores[0] == scores[1]


def test_the_residual_form_needs_the_critics_own_projection():
    with pytest.raises(InputError, match="rep_projection=own"):
        load_config(["method=infoprompt", "method.bottleneck_form=residual"])
    with pytest.raises(InputError, match="bottleneck=true"):
        load_config(["method=infoprompt_head", "method.bottleneck_form=residual"])
    with pytest.raises(InputError, match="rep_temperature"):
        load_config(["method=infoprompt", "method.rep_temperature=0"])
    with pytest.raises(InputError, match="head_critic"):
        load_config(["method=infoprompt", "method.head_critic=bilinear"])


def test_the_rep_critics_own_projection_takes_its_gradient_off_the_classifier(tiny_config, tokenizer):
    shared, _, batch = make(tiny_config, tokenizer, "method=infoprompt")
    g = grads(shared, shared.losses(batch)["mi/rep"])
    assert g["bottleneck.out.weight"].abs().sum() > 0  # the reference: L_rep trains the classifier's W_o
    own, _, batch = make(tiny_config, tokenizer, "method=infoprompt", "method.rep_projection=own")
    g = grads(own, own.losses(batch)["mi/rep"])
    assert g["bottleneck.out.weight"] is None or g["bottleneck.out.weight"].abs().sum() == 0
    assert g["rep_projection.weight"].abs().sum() > 0 and g["bottleneck.mu.weight"].abs().sum() > 0


def test_learned_critics_are_trained_at_the_head_rate(tiny_config, tokenizer):
    module, _, batch = make(tiny_config, tokenizer, "method=infoprompt", "method.head_critic=cosine_learned",
                            "method.rep_critic=cosine_learned")
    assert {"head_critic.log_scale", "rep_critic.log_scale"} <= module.trainable_names()
    g = grads(module, sum(module.losses(batch)[k] for k in ("mi/head", "mi/rep")))
    assert g["head_critic.log_scale"].abs() > 0 and g["rep_critic.log_scale"].abs() > 0


def test_curve_records_each_terms_ceiling(tiny_config, tokenizer):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    summary = run(tiny_config("method=infoprompt", "method.num_negatives=5"), backbone, tokenizer)
    with open(summary["run_dir"] + "/curve.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["diag/mi_rep_nats"]]
    assert rows
    for row in rows:
        assert float(row["diag/mi_rep_ceiling_nats"]) == pytest.approx(math.log(6))  # every example: 5 negatives
        assert float(row["diag/mi_rep_frac_of_ceiling"]) == pytest.approx(float(row["diag/mi_rep_nats"]) / math.log(6),
                                                                         rel=1e-5)
        assert float(row["diag/mi_head_ceiling_nats"]) > math.log(2)  # at least one real token per example
        assert float(row["diag/mi_head_frac_of_ceiling"]) <= 1
