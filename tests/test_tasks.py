"""Every task: its YAML composes, its reader maps the official label format to the hub's class order,
its template has the fields it needs, and a few training steps run end to end on the fixtures."""

import json

import pytest
import torch

from conftest import FIXTURES, tiny_roberta
from lit_infoprompt.model.backbone import from_pretrained_model
from lit_infoprompt.config import load_config
from lit_infoprompt.semeval import relation_type
from lit_infoprompt.train.metrics import SemEvalF1
from lit_infoprompt.tasks.sources import read_examples, resolve_files
from lit_infoprompt.tasks.templates import TemplateEncoder
from lit_infoprompt.train.runner import build, run

TASKS = {  # task -> (first label as the files spell it, its class index)
    "cb": ("contradiction", 1), "rte": ("entailment", 0), "boolq": (False, 0), "wic": (False, 0),
    "copa": (0, 0), "semeval": ("Cause-Effect(e1,e2)", 0),
}
def task_overrides(task):
    # a class of SemEval has one training example: K per class cannot work, use a total budget
    return ["data.protocol=budget", "data.budget=8"] if task == "semeval" else []


def first_raw_label(task):
    config = load_config([f"task={task}", f"data.dir={FIXTURES}"])
    files = resolve_files(config.task, config.data)
    if config.task.format == "semeval":
        return files.train.read_text().splitlines()[1].strip()
    return json.loads(files.train.read_text().splitlines()[0])["label"]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_labels_map_to_the_hub_order_and_templates_fit(task, tokenizer):
    config = load_config([f"task={task}", f"data.dir={FIXTURES}"])
    encoder = TemplateEncoder(config.task.template, tokenizer, 128, reserved=16)
    examples = read_examples(resolve_files(config.task, config.data).train, config.task, encoder.fields)
    raw = first_raw_label(task)
    assert examples[0].label == config.task.labels.index(raw)
    assert {e.label for e in examples} <= set(range(len(config.task.labels)))
    encoded = encoder.encode(examples[0].fields)
    assert encoded.input_ids.count(tokenizer.mask_token_id) == 1


def test_each_label_format_maps_to_fixed_indices():
    hub_order = {"cb": ["entailment", "contradiction", "neutral"], "rte": ["entailment", "not_entailment"],
                 "boolq": [False, True], "wic": [False, True], "copa": [0, 1]}
    for task, labels in hub_order.items():
        assert load_config([f"task={task}"]).task.labels == labels
    labels = load_config(["task=semeval"]).task.labels
    assert len(labels) == 19 and labels[-1] == "Other" and len({relation_type(x) for x in labels} - {None}) == 9


def test_semeval_reader_strips_markers_and_keeps_the_entities():
    config = load_config(["task=semeval", f"data.dir={FIXTURES}"])
    examples = read_examples(resolve_files(config.task, config.data).train, config.task, ["sentence", "e1", "e2"])
    assert len(examples) == 24 and examples[0].id == 1
    assert examples[1].fields == {"sentence": "The flood was caused by the storm.", "e1": "flood", "e2": "storm"}
    assert examples[1].label == 1  # Cause-Effect(e2,e1)


def test_boolq_without_train_file_uses_the_fewglue_split(tokenizer, caplog):
    config = load_config(["task=boolq", f"data.dir={FIXTURES}"])
    files = resolve_files(config.task, config.data)
    assert files.train == FIXTURES / "fewglue/BoolQ/train.jsonl" and files.dev == FIXTURES / "fewglue/BoolQ/dev32.jsonl"
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    _, datamodule, split = build(load_config(["task=boolq", f"data.dir={FIXTURES}", "model.max_length=48",
                                              "prompt.length=4"]), backbone, tokenizer)
    assert split["protocol"] == "fixed" and len(split["train_ids"]) == 12 and len(split["dev_ids"]) == 6
    assert "fixed split files" in caplog.text
    assert split["truncated"]["train"] > 0  # long passages were cut, the question and <mask> kept
    assert all(r["input_ids"][r["mask_pos"]] == tokenizer.mask_token_id for r in datamodule.train_rows)


def test_semeval_official_f1_by_hand():
    labels = ["A(e1,e2)", "A(e2,e1)", "B(e1,e2)", "B(e2,e1)", "Other"]
    metric = SemEvalF1(labels)
    # gold A(e1,e2) x2: one exact, one predicted in the wrong direction; gold B(e1,e2): predicted Other;
    # gold Other: predicted B(e2,e1).
    metric.update(torch.tensor([0, 1, 4, 3]), torch.tensor([0, 0, 2, 4]))
    # A: hits 1, predicted 2 (0 and 1), gold 2 -> P = R = 1/2, F1 = 1/2. B: hits 0 -> F1 0. Macro = 1/4.
    assert metric.compute().item() == pytest.approx(0.25)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_trains_end_to_end(task, tiny_config, tokenizer):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    extra = ["data.shots=2", *task_overrides(task)]
    summary = run(tiny_config(f"task={task}", *extra), backbone, tokenizer)
    config = load_config([f"task={task}"])
    assert {f"test_{m}" for m in config.task.metrics} <= set(summary)
    assert all(0 <= summary[f"test_{m}"] <= 1 for m in config.task.metrics)
    assert summary["task"] == task and summary["steps"] == 6


def test_a_task_of_your_own_in_the_relation_format(tiny_config, tokenizer):
    backbone = from_pretrained_model(tiny_roberta(tokenizer), mlm_head=True, dropout=False)
    summary = run(tiny_config(f"task={FIXTURES / 'relation_task.yaml'}", "data.shots=3"), backbone, tokenizer)
    assert summary["task"] == "relation_task" and summary["split_size"] == 3
