"""Using a trained prompt: ``evaluate`` on the run's own test file equals the test metrics of its summary.json
exactly (with and without the bottleneck), ``predict`` writes one line per example, and a PEFT export loaded back
predicts what the run predicts."""

import json
from pathlib import Path

import pytest

from conftest import FIXTURES, tiny_overrides
from lit_infoprompt.__main__ import main
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError
from lit_infoprompt.tools.export import export_peft
from lit_infoprompt.tools.predict import Classifier
from lit_infoprompt.train.runner import run

CB_TEST = FIXTURES / "superglue/CB/val.jsonl"


@pytest.fixture(scope="module")
def runs(roberta_dir, tmp_path_factory):
    """Two finished tiny runs: prompt tuning, and InfoPrompt (with the bottleneck)."""
    out = tmp_path_factory.mktemp("predict-runs")
    return {m: run(load_config(tiny_overrides(roberta_dir, out, f"method={m}"))) for m in ("prompt_tuning",
                                                                                            "infoprompt")}


@pytest.mark.parametrize("method", ["prompt_tuning", "infoprompt"])
def test_evaluate_on_the_runs_test_file_equals_its_summary(runs, method, capsys):
    summary = runs[method]
    clf = Classifier.load(summary["run_dir"], "cpu")
    scores = clf.evaluate(clf.read(CB_TEST))
    assert scores == {k: v for k, v in summary.items() if k.startswith("test_")}  # exactly, not approximately
    assert main(["evaluate", summary["run_dir"], "--input", str(CB_TEST)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == scores


def test_predict_writes_one_line_per_example_with_id_label_and_probabilities(runs, tmp_path):
    summary = runs["infoprompt"]
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", summary["run_dir"], "--input", str(CB_TEST), "--output", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    gold = [json.loads(line) for line in CB_TEST.read_text().splitlines()]
    assert [r["id"] for r in records] == [g["idx"] for g in gold]
    labels = load_config(["task=cb"]).task.labels
    for r in records:
        assert r["label"] in labels and set(r["probs"]) == set(labels)
        assert abs(sum(r["probs"].values()) - 1) < 1e-4 and r["probs"][r["label"]] == max(r["probs"].values())
    # the counts of each predicted label are the test confusion matrix's column sums
    confusion = summary["confusion_matrix_test"]
    assert [sum(r["label"] == label for r in records) for label in labels] == [sum(col) for col in zip(*confusion)]


def test_json_lines_without_labels_and_strings(runs, tmp_path):
    clf = Classifier.load(runs["prompt_tuning"]["run_dir"], "cpu")
    unlabelled = tmp_path / "new.jsonl"
    unlabelled.write_text(json.dumps({"id": "a", "premise": "It rained.", "hypothesis": "The street is wet."}) + "\n")
    examples = clf.read(unlabelled)
    assert [r["id"] for r in clf.predict(examples)] == ["a"]
    with pytest.raises(InputError, match="evaluate needs a label"):
        clf.evaluate(examples)
    with pytest.raises(InputError, match="give dicts, not strings"):  # CB's template has two fields
        clf.predict(["just one text"])
    unlabelled.write_text(json.dumps({"premise": "only one field"}) + "\n")
    with pytest.raises(InputError, match="missing the template field"):
        clf.read(unlabelled)


def test_a_peft_export_loaded_back_predicts_what_the_run_predicts(runs, tmp_path):
    for method, summary in runs.items():
        out = export_peft(summary["run_dir"], tmp_path / method)
        meta = json.loads((out / "head_config.json").read_text())
        assert set(meta["tensors"]) >= {"head.vectors", "head.bias"}
        assert ("bottleneck.mu.weight" in meta["tensors"]) == (method == "infoprompt")
        from_run, from_export = Classifier.load(summary["run_dir"], "cpu"), Classifier.load(out, "cpu")
        examples = from_run.read(CB_TEST)
        assert from_export.predict(examples) == from_run.predict(examples)
        assert from_export.evaluate(examples) == {k: v for k, v in summary.items() if k.startswith("test_")}


def test_the_export_usage_names_the_familys_own_first_token(runs, tmp_path):
    from lit_infoprompt.tools.export import usage
    assert usage("[CLS]").startswith("feed input ids without the leading [CLS];")  # BERT, all-MiniLM-L6-v2
    meta = json.loads((export_peft(runs["prompt_tuning"]["run_dir"], tmp_path / "x") / "head_config.json").read_text())
    assert meta["usage"] == usage("<s>")  # the tiny test model's tokenizer is RoBERTa's


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--input", str(CB_TEST)]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    assert main(["predict", str(tmp_path)]) == 2
    assert "usage: python -m lit_infoprompt predict" in capsys.readouterr().err
    assert Path(CB_TEST).is_file()
