"""Prompt initialisations: random, sampled vocabulary, text, label words."""

import torch

from lit_infoprompt.config import PromptConfig
from lit_infoprompt.model.prompt import initial_prompt

EMB = torch.arange(50 * 4, dtype=torch.float).reshape(50, 4)  # row i = [4i, 4i+1, 4i+2, 4i+3]


class Tok:
    all_special_ids = [0, 1, 2, 3, 4]

    def encode(self, text, add_special_tokens=False):
        return [10, 11, 12]


def rows_of(prompt):
    return (prompt[:, 0] / 4).long().tolist()


def test_vocab_init_draws_distinct_non_special_rows_per_seed():
    config = PromptConfig(length=8, init="vocab")
    rows = rows_of(initial_prompt(config, EMB, Tok(), [], seed=1))
    assert len(set(rows)) == 8 and not set(rows) & set(Tok.all_special_ids)
    assert rows == rows_of(initial_prompt(config, EMB, Tok(), [], seed=1))
    assert rows != rows_of(initial_prompt(config, EMB, Tok(), [], seed=2))


def test_text_and_label_word_inits_cycle_to_n():
    assert rows_of(initial_prompt(PromptConfig(length=5, init="text"), EMB, Tok(), [], 0)) == [10, 11, 12, 10, 11]
    label_ids = [[20], [21, 22]]
    assert rows_of(initial_prompt(PromptConfig(length=4, init="label_words"), EMB, Tok(), label_ids, 0)) == [20, 21, 22, 20]


def test_random_init_has_the_configured_scale():
    prompt = initial_prompt(PromptConfig(length=400, init="random", init_std=0.5), torch.zeros(10, 64), Tok(), [], 0)
    assert prompt.shape == (400, 64) and abs(prompt.std().item() - 0.5) < 0.02
