"""The MI estimators and InfoPrompt losses against values computed by hand."""

import math

import torch

from lit_infoprompt.model.estimators import (clamped_mean, gaussian_kl, gaussian_kl_per_dim, info_nce_per_example,
                                             mi_lower_bound, scaled_dot)
from lit_infoprompt.model.losses import head_loss, mi_weight, representation_nce


def info_nce(positive, negatives, valid=None, clamp=None):
    """The batch loss as the module computes it: per-example InfoNCE, then the (clamped) mean."""
    return clamped_mean(info_nce_per_example(positive, negatives, valid), clamp)


def nce(pos, negs):
    return -math.log(math.exp(pos) / (math.exp(pos) + sum(math.exp(n) for n in negs)))


def test_info_nce_by_hand():
    loss = info_nce(torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 2.0], [1.0, -1.0]]))
    assert math.isclose(loss.item(), (nce(1, [0, 2]) + nce(0, [1, -1])) / 2, rel_tol=1e-6)


def test_info_nce_drops_invalid_negatives():
    loss = info_nce(torch.tensor([1.0]), torch.tensor([[0.0, 50.0]]), valid=torch.tensor([[True, False]]))
    assert math.isclose(loss.item(), nce(1, [0]), rel_tol=1e-6)


def test_head_loss_by_hand():
    # d = 4, so scores are dot products / 2.
    prompt = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]])  # P_bar = (0.5, 0.5, 0, 0)
    vectors = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0]])  # c = (1, 1, 0, 0)
    tokens = torch.tensor([[[1.0, 0, 0, 0], [0, 0, 3.0, 0], [9.0, 9.0, 0, 0]]])  # last one is padding
    mask = torch.tensor([[1, 1, 0]])
    # <P_bar, c>/2 = 0.5; negatives: <(1,0,0,0), c>/2 = 0.5, <(0,0,3,0), c>/2 = 0
    expected = nce(0.5, [0.5, 0.0])
    assert math.isclose(head_loss(prompt, vectors, tokens, mask).item(), expected, rel_tol=1e-6)


def test_representation_loss_by_hand():
    q = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    u_pos = torch.tensor([[1.0, 5.0, 0.0, 0.0]])  # score 1
    u_neg = torch.tensor([[[0.0, 1.0, 0, 0], [-1.0, 0, 0, 0], [3.0, 0, 0, 0]]])  # scores 0, -1, 3
    assert math.isclose(clamped_mean(representation_nce(u_pos, u_neg, q)[0]).item(), nce(1, [0, -1, 3]), rel_tol=1e-6)


def test_gaussian_kl_is_the_mean_over_batch_and_latent_dims_by_default():
    assert gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)).item() == 0
    # mu = (1, 0), sigma = (1, e): per dim 0.5 * (1 + 1 - 1 - 0) = 0.5 and 0.5 * (e^2 + 0 - 1 - 2)
    mu, log_sigma = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    dims = [0.5, 0.5 * (math.e ** 2 - 3)]  # example 1; example 2 is the prior (0, 0)
    assert math.isclose(gaussian_kl(mu, log_sigma).item(), sum(dims) / 4, rel_tol=1e-6)  # reference scale
    assert math.isclose(gaussian_kl(mu, log_sigma, "sum").item(), sum(dims) / 2, rel_tol=1e-6)  # k x larger
    assert torch.allclose(gaussian_kl_per_dim(mu, log_sigma)[0], torch.tensor(dims))


def test_kl_reduction_reaches_the_module_loss(tiny_config, tokenizer):
    from test_infoprompt import make

    torch.manual_seed(0)
    module, _, batch = make(tiny_config, tokenizer, "method=prompt_tuning_bottleneck", "method.bottleneck_dim=8")
    torch.manual_seed(1)
    mean = module.losses(batch)["kl"]
    module.method.kl_reduction = "sum"
    torch.manual_seed(1)
    assert torch.allclose(module.losses(batch)["kl"], 8 * mean)


def test_info_nce_clamp_caps_each_example_and_stops_its_gradient():
    positive = torch.tensor([0.0, 0.0], requires_grad=True)
    negatives = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])  # example 1: loss ~ 5.7 nats, example 2: ~ 0.013
    losses = [nce(0, [5, 5]), nce(0, [-5, -5])]
    loss = info_nce(positive, negatives, clamp=2.0)
    assert math.isclose(loss.item(), (2.0 + losses[1]) / 2, rel_tol=1e-6)
    loss.backward()
    assert positive.grad[0] == 0 and positive.grad[1] != 0
    assert math.isclose(info_nce(positive, negatives).item(), sum(losses) / 2, rel_tol=1e-6)


def test_mi_lower_bound_is_log_m_plus_one_minus_the_loss():
    # a critic that cannot tell the positive from its M negatives scores L = log(M + 1): 0 nats
    per_example = info_nce_per_example(torch.zeros(2), torch.zeros(2, 4), valid=torch.tensor([[True] * 4, [True, True, False, False]]))
    assert torch.allclose(mi_lower_bound(per_example, torch.tensor([4, 2])), torch.tensor(0.0), atol=1e-6)
    per_example = info_nce_per_example(torch.tensor([10.0]), torch.zeros(1, 3))
    assert math.isclose(mi_lower_bound(per_example, torch.tensor([3])).item(), math.log(4) - nce(10, [0, 0, 0]),
                        rel_tol=1e-6)


def test_scaled_dot_and_weight_schedule():
    assert scaled_dot(torch.ones(4), torch.full((4,), 2.0)).item() == 4.0
    assert mi_weight(0, 100, 0.5) == 1.0 and mi_weight(100, 100, 0.5) == 0.5 and mi_weight(50, 100, 0.0) == 1.0
