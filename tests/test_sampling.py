"""Few-shot split: K per class, deterministic per seed, no train/dev overlap, shortfall handled."""

import json

import pytest

from conftest import FIXTURES
from lit_infoprompt.errors import InputError
from lit_infoprompt.tasks.sampling import sample_budget, sample_per_class, split_record, stratified_counts

LABELS = [0] * 20 + [1] * 30 + [2] * 6
NAMES = ["a", "b", "c"]


def counts(positions):
    return [sum(LABELS[p] == c for p in positions) for c in range(3)]


def test_k_per_class_and_no_overlap():
    split = sample_per_class(LABELS, NAMES, shots=4, seed=13)
    assert counts(split.train) == [4, 4, 4]
    assert counts(split.dev) == [4, 4, 2]  # class c has 6: dev gets what is left
    assert not set(split.train) & set(split.dev)
    assert len(split.warnings) == 1 and "'c' has 6 examples: dev gets 2 of 4" in split.warnings[0]


def test_same_seed_same_split_other_seed_other_split():
    a, b = sample_per_class(LABELS, NAMES, 4, 13), sample_per_class(LABELS, NAMES, 4, 13)
    c = sample_per_class(LABELS, NAMES, 4, 21)
    assert (a.train, a.dev) == (b.train, b.dev)
    assert a.train != c.train


def test_class_smaller_than_k_fails_naming_it():
    with pytest.raises(InputError, match="class 'c' has 6 training examples, fewer than shots=7"):
        sample_per_class(LABELS, NAMES, 7, 13)


def test_checksum_depends_on_ids_and_file_bytes(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text((FIXTURES / "superglue/CB/train.jsonl").read_text())
    files = {"train": train, "test": FIXTURES / "superglue/CB/val.jsonl"}
    first = split_record("cb", "per_class", 4, 13, files, [1, 2], [3])
    assert first["checksum"] == split_record("cb", "per_class", 4, 13, files, [1, 2], [3])["checksum"]
    assert first["checksum"] != split_record("cb", "per_class", 4, 13, files, [1, 5], [3])["checksum"]
    assert first["checksum"] != split_record("cb", "budget", 4, 13, files, [1, 2], [3])["checksum"]
    moved = {"train": tmp_path / "elsewhere.jsonl", "test": files["test"]}
    moved["train"].write_text(train.read_text())
    assert first["checksum"] == split_record("cb", "per_class", 4, 13, moved, [1, 2], [3])["checksum"]
    train.write_text(train.read_text() + json.dumps({"premise": "x", "hypothesis": "y", "label": "neutral"}) + "\n")
    assert first["checksum"] != split_record("cb", "per_class", 4, 13, files, [1, 2], [3])["checksum"]


def test_stratified_counts_add_up_and_follow_the_class_sizes():
    assert stratified_counts([20, 30, 6], 8) == [3, 4, 1]  # exact 2.86, 4.29, 0.86: remainders to 0 and 2
    assert sum(stratified_counts([1, 844, 3000, 15], 64)) == 64
    assert stratified_counts([10, 10], 5) == [3, 2]  # ties go to the lower class index


def test_budget_split_is_stratified_disjoint_and_deterministic():
    split = sample_budget(LABELS, NAMES, 8, seed=13)
    assert counts(split.train) == [3, 4, 1] and counts(split.dev) == [3, 4, 1]
    assert not set(split.train) & set(split.dev)
    assert split.train == sample_budget(LABELS, NAMES, 8, seed=13).train
    with pytest.raises(InputError, match="data.budget=100 is larger than the 56 training examples"):
        sample_budget(LABELS, NAMES, 100, 13)


def test_data_seed_changes_the_split_and_nothing_else(roberta_dir, tmp_path):
    """data.seed draws the few-shot split; seed still drives the prompt's initialisation and the batch order.
    Unset, it is the run's seed (every archived run keeps its split)."""
    import torch

    from conftest import tiny_overrides
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train.runner import build

    def made(*extra):
        module, datamodule, split = build(load_config(tiny_overrides(roberta_dir, tmp_path / "runs", *extra)))
        batches = [b["index"].tolist() for b in datamodule.train_dataloader()]
        return split, module.prompt.weight.detach().clone(), batches

    base, same, other, other_train = made("seed=13"), made("seed=13", "data.seed=13"), made("seed=13", "data.seed=21"), \
        made("seed=21")
    assert same[0]["checksum"] == base[0]["checksum"] and torch.equal(same[1], base[1]) and same[2] == base[2]
    assert other[0]["checksum"] == other_train[0]["checksum"] != base[0]["checksum"]  # data.seed=21: seed 21's split
    assert other[0]["seed"] == 21 and base[0]["seed"] == 13
    assert torch.equal(other[1], base[1])  # the prompt starts where seed 13's does
    assert other[2] == base[2]  # and the batches come in seed 13's order of the (other) train rows
    assert not torch.equal(other_train[1], base[1])
