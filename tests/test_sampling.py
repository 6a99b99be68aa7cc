"""Few-shot split: K per class, deterministic per seed, no train/dev overlap, shortfall handled."""

import json

import pytest

from conftest import FIXTURES
from lit_infoprompt.errors import InputError
from lit_infoprompt.sampling import sample_per_class, split_record

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
    test = FIXTURES / "superglue/CB/val.jsonl"
    first = split_record("cb", 4, 13, train, test, [1, 2], [3])
    assert first["checksum"] == split_record("cb", 4, 13, train, test, [1, 2], [3])["checksum"]
    assert first["checksum"] != split_record("cb", 4, 13, train, test, [1, 5], [3])["checksum"]
    train.write_text(train.read_text() + json.dumps({"premise": "x", "hypothesis": "y", "label": "neutral"}) + "\n")
    assert first["checksum"] != split_record("cb", 4, 13, train, test, [1, 2], [3])["checksum"]
