"""GLUE SST-2, MRPC and CoLA: the official tsv layouts (header, BOM, no header), strict readers, the hub writer,
the paper's budget protocol and the GLUE metrics (F1 for MRPC, Matthews correlation for CoLA), on hand-made
fixture files."""

import json
import sys
import types

import pytest

from conftest import FIXTURES, tiny_overrides
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError
from lit_infoprompt.tasks.sources import read_examples, resolve_files

TASKS = {"sst2": (["sentence"], 12, 4), "mrpc": (["sentence1", "sentence2"], 12, 4), "cola": (["sentence"], 12, 4)}


def config_for(task, *extra):
    return load_config([f"task={task}", f"data.dir={FIXTURES}", *extra])


@pytest.mark.parametrize("task", TASKS)
def test_each_layout_reads_its_fixture(task):
    fields, train_rows, test_rows = TASKS[task]
    config = config_for(task)
    files = resolve_files(config.task, config.data)
    train, test = (read_examples(p, config.task, fields) for p in (files.train, files.test))
    assert len(train) == train_rows and len(test) == test_rows  # headers (MRPC's behind a BOM) are not rows
    assert sorted({e.label for e in train}) == [0, 1] and all(e.fields[fields[0]] for e in train)
    assert not any(e.fields[fields[0]].startswith(("\ufeff", "Quality", "sentence")) for e in train)


@pytest.mark.parametrize("task,bad_line,message", [
    ("sst2", "a sentence without its label\n", r"expected 2 tab-separated columns \(sentence, label\), found 1"),
    ("cola", "gj04\t1\tA sentence missing the mark column.\n", r"expected 4 tab-separated columns .* found 3"),
    ("mrpc", "2\t1\t2\tOne.\tTwo.\n", r"label '2' is not one of the task's labels \['0', '1'\]"),
])
def test_a_malformed_row_is_one_error_naming_file_and_line(task, bad_line, message, tmp_path):
    config = config_for(task)
    source = resolve_files(config.task, config.data).train
    folder = tmp_path / config.task.folder
    folder.mkdir(parents=True)
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / config.task.train_file).write_text("".join(lines[:3] + [bad_line] + lines[3:]), encoding="utf-8")
    config = config_for(task, f"data.dir={tmp_path}")
    with pytest.raises(InputError, match=rf"train.tsv:4: {message}"):
        read_examples(folder / config.task.train_file, config.task, TASKS[task][0])


class FakeSplit(list):
    def __init__(self, rows, names):
        super().__init__(rows)
        self.features = {"label": types.SimpleNamespace(names=names)}


@pytest.mark.parametrize("task", TASKS)
def test_a_hub_download_is_written_in_the_official_layout(task, tmp_path, monkeypatch):
    from lit_infoprompt import hub

    monkeypatch.setattr(hub, "_reachable", {"hub": True})
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    texts = {"sst2": {"sentence": "a fine film ."}, "mrpc": {"sentence1": "He left.", "sentence2": "He went away."},
             "cola": {"sentence": "The cat sat."}}[task]
    rows = [{**texts, "label": 1, "idx": 0}, {**texts, "label": 0, "idx": 1}]
    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda *args: {"train": FakeSplit(rows, ["a", "b"]), "validation": FakeSplit(rows, ["a", "b"])}
    monkeypatch.setitem(sys.modules, "datasets", fake)
    config = load_config([f"task={task}", f"data.cache_dir={tmp_path}"])
    files = resolve_files(config.task, config.data)
    assert files.train == tmp_path / config.task.folder / "train.tsv"
    examples = read_examples(files.train, config.task, TASKS[task][0])
    assert [e.label for e in examples] == [1, 0] and examples[0].fields == texts
    if task == "mrpc":
        assert files.train.read_bytes().startswith("\ufeffQuality\t#1 ID".encode())


@pytest.mark.parametrize("task,metrics", [("sst2", {"test_acc", "test_f1_macro"}), ("mrpc", {"test_f1", "test_acc"}),
                                          ("cola", {"test_mcc", "test_acc"})])
def test_each_task_trains_with_the_paper_budget_protocol(task, metrics, roberta_dir, tmp_path):
    from lit_infoprompt.train.runner import run

    config = load_config(tiny_overrides(roberta_dir, tmp_path / "runs", f"task={task}", "data.protocol=budget",
                                        "data.budget=4", "trainer.max_steps=2", "trainer.val_every=2"))
    summary = run(config)
    assert metrics <= set(summary) and summary["dev_metric"] == config.task.metric
    assert summary["sizes"] == {"train": 4, "dev": 4, "test": TASKS[task][2]}
    assert -1 <= summary[f"test_{config.task.metric}"] <= 1
    split = json.loads((tmp_path / "runs" / task / "budget4" / "prompt_tuning" / "seed13" / "version_0" /
                        "split.json").read_text())
    assert not set(split["train_ids"]) & set(split["dev_ids"])  # dev drawn from the remaining train rows


def test_f1_needs_two_classes():
    with pytest.raises(InputError, match="f1 is the binary F1 of the second class"):
        load_config(["task=cb", "task.metrics=[f1,acc]", "task.metric=f1"])
