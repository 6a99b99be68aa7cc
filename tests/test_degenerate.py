"""Degenerate runs are caught: a run whose logits tie on every test example (forced here on the tiny model) or
that answers one class for every example is flagged in its summary.json and in the comparison's table, and still
counts; a run at chance with real, confident predictions is not flagged."""

import torch

from conftest import tiny_overrides
from lit_infoprompt.analysis.aggregates import run_degenerate
from lit_infoprompt.config import load_config
from lit_infoprompt.predictions import degenerate


def test_the_rules():
    assert degenerate([[214, 214], [222, 222]], tied=0) is None  # at chance, but two classes and no ties
    assert degenerate([[428, 0], [444, 0]], tied=0) == "one class for every test example"
    assert degenerate([[428, 0], [444, 0]], tied=872) == "tied logits on every test example"
    assert degenerate([[0, 0], [0, 0]]) is None
    # an archived run without a tie count: the confusion matrix alone
    assert run_degenerate({"confusion_matrix_test": [[5, 0, 0], [3, 0, 0], [2, 0, 0]]}) == \
        "one class for every test example"
    assert run_degenerate({"confusion_matrix_test": [[5, 1], [3, 2]]}) is None


def test_a_head_forced_into_tied_logits_is_flagged(roberta_dir, tmp_path, monkeypatch):
    from lit_infoprompt.model.module import PromptClassifier
    from lit_infoprompt.train.runner import run

    trained = PromptClassifier.forward

    def tied_when_evaluating(self, batch):
        logits = trained(self, batch)
        return logits if self.training else torch.zeros_like(logits)  # every class scores the same

    monkeypatch.setattr(PromptClassifier, "forward", tied_when_evaluating)
    summary = run(load_config(tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2",
                                             "trainer.val_every=2")))
    n = summary["sizes"]["test"]
    assert summary["tied_test_examples"] == n > 0
    assert summary["degenerate"] == "tied logits on every test example"
    assert [sum(column) for column in zip(*summary["confusion_matrix_test"])][0] == n  # argmax took the first class
    assert run_degenerate(summary) == "tied logits on every test example"


def test_an_ordinary_run_has_no_ties_and_is_flagged_only_for_one_class(roberta_dir, tmp_path):
    from lit_infoprompt.train.runner import run

    summary = run(load_config(tiny_overrides(roberta_dir, tmp_path / "runs", "trainer.max_steps=2",
                                             "trainer.val_every=2")))
    assert summary["tied_test_examples"] == 0
    classes = sum(1 for column in zip(*summary["confusion_matrix_test"]) if sum(column))
    assert ("degenerate" in summary) == (classes == 1)  # 2 steps on 12 tiny examples may well answer one class


def test_the_comparison_table_names_a_degenerate_run(tmp_path):
    import json

    from test_claims_report import stand_in
    from lit_infoprompt.analysis.comparison_files import write_comparison

    dirs = [stand_in(tmp_path, m, seed, 0.5 + 0.01 * seed % 3, 0.6) for m in ("prompt_tuning", "infoprompt")
            for seed in (13, 21, 42)]
    flagged = dirs[4] / "summary.json"  # infoprompt seed 21
    summary = json.loads(flagged.read_text())
    flagged.write_text(json.dumps({**summary, "confusion_matrix_test": [[6, 0], [6, 0]]}))
    out = tmp_path / "compare"
    write_comparison(dirs, ["prompt_tuning", "infoprompt"], out, None)
    text = (out / "summary.md").read_text()
    assert "| infoprompt | " in text and " | 3 (1 degenerate) | " in text
    assert "**Degenerate runs** (counted in every number here: they are what the method did): `infoprompt` seed 21: " \
           "one class for every test example." in text
    table = json.loads((out / "summary.json").read_text())["methods"]
    assert table["infoprompt"]["degenerate"] == {"21": "one class for every test example"}
    assert table["prompt_tuning"]["degenerate"] == {} and table["infoprompt"]["test_acc"]["n"] == 3  # still counted
