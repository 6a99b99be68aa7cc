"""Shared fixtures: a tiny random RoBERTa (with MLM head) and a tiny BERT encoder (without), each with a
tokenizer trained in the test on the fixture text. No files are downloaded, nothing touches the network."""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

# Tiny models: one intra-op thread is faster than two fighting over a loaded 2-core machine (15-40x here).
torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
SPECIALS = {"cls_token": "<s>", "bos_token": "<s>", "pad_token": "<pad>", "sep_token": "</s>",
            "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>"}


def corpus():
    lines = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            lines += [str(v) for v in json.loads(line).values() if isinstance(v, str)]
    return lines + ["Answer: yes no maybe ? , . Classify the relation between the two sentences."] * 20


def bpe_tokenizer():
    """A byte-level BPE tokenizer (RoBERTa-like) trained on the fixture text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)


def tiny_roberta(tokenizer, seed=0):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                           architectures=["RobertaForMaskedLM"])
    return RobertaForMaskedLM(config).eval()


def tiny_bert_encoder(tokenizer, seed=0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                        architectures=["BertModel"])
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="session")
def tokenizer():
    return bpe_tokenizer()


@pytest.fixture(scope="session")
def roberta_dir(tmp_path_factory, tokenizer):
    """A saved tiny RoBERTa with MLM head, loadable by model.name=<dir>."""
    path = tmp_path_factory.mktemp("tiny-roberta")
    tiny_roberta(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, tokenizer):
    """A saved tiny bare BERT encoder (no MLM head), like all-MiniLM-L6-v2."""
    path = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert_encoder(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_overrides(model_dir, out_dir, *extra):
    """Overrides for a seconds-long CPU run on the fixture data."""
    return [f"model.name={model_dir}", f"data.dir={FIXTURES}", f"out_dir={out_dir}", "data.shots=4",
            "data.batch_size=4", "model.max_length=64", "prompt.length=4", "trainer.max_steps=6",
            "trainer.val_every=3", "trainer.progress_bar=false", "trainer.accelerator=cpu", *extra]


@pytest.fixture
def tiny_config(roberta_dir, tmp_path):
    from lit_infoprompt.config import load_config

    return lambda *extra: load_config(tiny_overrides(roberta_dir, tmp_path / "runs", *extra))


# -- two speeds: `make test` runs every test, `make test-fast` those marked none of subprocess, train, slow ---------
# The rule: a test that starts a process, or whose slowest case takes over FAST_LIMIT_S here (2 cores, under load),
# is marked, and the marker says why:
# subprocess: starts another Python process (the CLI in a fresh interpreter, gloo or torchrun processes, a worker
#             pool): marked here when the test, or a fixture or helper of the test folder it names, does so in its
#             own code (below); by hand where the process starts inside the package (a sweep with workers).
# train:      over the limit because it trains through Lightning in this process (a run, a sweep): by hand.
# slow:       over the limit for another reason (the archive, a timeout, a scan of the package): by hand.
# A test-fast run ends with the unmarked tests whose call took longer: mark them. (A module-scoped fixture's setup
# is timed on its first test: --durations shows it; marking that test only moves the cost to the next one.)
PROCESS_STARTERS = {"subprocess", "Popen", "multiprocessing", "run_pool"}  # names whose use starts a process
TESTS = Path(__file__).resolve().parent
FAST_LIMIT_S = 2.0


def _of_the_test_folder(obj) -> bool:
    try:
        return Path(inspect.getsourcefile(obj)).resolve().is_relative_to(TESTS)
    except TypeError:  # a builtin, a class from C
        return False


def starts_a_process(function) -> bool:
    """Whether ``function``, or a function or fixture of the test folder that it names or takes (transitively),
    uses subprocess, multiprocessing, sys.executable or the sweep's worker pool in its code (not its comments)."""
    todo, seen = [function], set()
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        except (OSError, TypeError, SyntaxError):
            continue
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and (node.attr in PROCESS_STARTERS or (
                    node.attr == "executable" and isinstance(node.value, ast.Name) and node.value.id == "sys")):
                return True
            if isinstance(node, ast.alias) and node.name.split(".")[0] in PROCESS_STARTERS:
                return True
            names |= {node.id} if isinstance(node, ast.Name) else {node.arg} if isinstance(node, ast.arg) else set()
        if names & PROCESS_STARTERS:
            return True
        scope = vars(sys.modules[__name__]) | vars(inspect.getmodule(fn) or sys.modules[__name__])
        todo += [obj for name in names
                 if callable(obj := scope.get(name)) and not inspect.isclass(obj) and _of_the_test_folder(obj)]
    return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, pytest.Function) and starts_a_process(item.function):
            item.add_marker(pytest.mark.subprocess)


_unmarked_and_slow = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.duration > FAST_LIMIT_S and not {"subprocess", "train", "slow"} & set(
            report.keywords):
        _unmarked_and_slow.append((report.duration, report.nodeid))


def pytest_terminal_summary(terminalreporter, config):
    if _unmarked_and_slow and "not " in (config.option.markexpr or ""):
        terminalreporter.write_sep("-", f"over {FAST_LIMIT_S:.0f} s and in the fast suite: mark them "
                                        f"(tests/conftest.py)")
        for duration, nodeid in sorted(_unmarked_and_slow, reverse=True):
            terminalreporter.write_line(f"{duration:6.1f}s {nodeid}")
