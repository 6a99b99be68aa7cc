"""The MI estimators and InfoPrompt losses against values computed by hand."""

import math

import torch

from lit_infoprompt.estimators import gaussian_kl, info_nce, scaled_dot
from lit_infoprompt.losses import head_loss, mi_weight, representation_loss


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
    assert math.isclose(representation_loss(u_pos, u_neg, q).item(), nce(1, [0, -1, 3]), rel_tol=1e-6)


def test_gaussian_kl_by_hand():
    assert gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)).item() == 0
    # mu = (1, 0), sigma = (1, e): 0.5 * [(1 + 1 - 1 - 0) + (e^2 + 0 - 1 - 2)]
    kl = gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert math.isclose(kl.item(), 0.5 * (1 + math.e ** 2 - 3), rel_tol=1e-6)


def test_scaled_dot_and_weight_schedule():
    assert scaled_dot(torch.ones(4), torch.full((4,), 2.0)).item() == 4.0
    assert mi_weight(0, 100, 0.5) == 1.0 and mi_weight(100, 100, 0.5) == 0.5 and mi_weight(50, 100, 0.0) == 1.0
