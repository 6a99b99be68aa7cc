"""Published evidence is append-only: a trial comparison never writes under a declared experiment's name, the
report archives declared experiments only, and a declared one that differs from what is published is refused (one
line naming both) unless replaced on purpose. The sequence a new user ran (a 2-seed trial of a published
comparison, then ``make report``) leaves the published files byte for byte as they were."""

import json
from pathlib import Path

import pytest

from conftest import tiny_overrides
from lit_infoprompt.__main__ import main
from lit_infoprompt.analysis.report import write_report
from lit_infoprompt.errors import InputError
from lit_infoprompt import experiment as declared_module
from lit_infoprompt.sweep.declared import adhoc_name

DECLARED = """task: cb
protocol: per_class
shots: 4
steps: 4
arms:
  prompt_tuning: prompt_tuning
  infoprompt_head: infoprompt_head
seeds: [13, 21]
"""


def snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_one_off_never_takes_a_declared_experiments_name():
    assert adhoc_name("compare", None, "sst2-budget64") == "sst2-budget64-adhoc"  # conf/experiment/sst2-budget64.yaml
    assert adhoc_name("compare", None, "sst2-budget32") == "sst2-budget32"  # no such experiment: the usual name
    assert adhoc_name("robustness", None, "cb-16shot") == "cb-16shot-adhoc"
    with pytest.raises(InputError, match="make experiment E=sst2-budget64"):
        adhoc_name("compare", "sst2-budget64", "x")
    assert adhoc_name("compare", "sst2-budget64", "x", declared_run=True) == "sst2-budget64"


@pytest.mark.train
def test_a_trial_leaves_published_evidence_untouched(roberta_dir, tmp_path, monkeypatch, capsys, caplog):
    experiments, docs = tmp_path / "experiments", tmp_path / "docs"
    experiments.mkdir()
    (experiments / "cb-4shot.yaml").write_text(DECLARED)
    docs.mkdir()
    monkeypatch.setattr(declared_module, "EXPERIMENTS_DIR", experiments)
    runs, archive = tmp_path / "runs", docs / "results"
    machine = [o for o in tiny_overrides(roberta_dir, runs, f"archive={archive}")
               if not o.startswith(("data.shots", "trainer.max_steps"))]
    publish = ["experiment", "cb-4shot", *machine]
    assert main(publish) == 0
    write_report(str(runs), str(docs / "RESULTS.md"), experiments=str(experiments))
    published = snapshot(docs)
    assert json.loads((archive / "compare/cb-4shot/spec.json").read_text())["methods"] == ["prompt_tuning",
                                                                                          "infoprompt_head"]

    # the trial: the published comparison's task and split with fewer seeds and steps, no name
    trial = ["compare", *tiny_overrides(roberta_dir, runs, "trainer.max_steps=2", "trainer.val_every=2",
                                        f"archive={archive}"), "methods=[prompt_tuning,infoprompt_head]", "seeds=[13]"]
    assert main(trial) == 0
    assert (runs / "compare/cb-4shot-adhoc/spec.json").is_file()
    assert "a one-off under its own name" in caplog.text
    write_report(str(runs), str(docs / "RESULTS.md"), experiments=str(experiments))
    assert "not archived: " in capsys.readouterr().out
    assert snapshot(docs) == published  # nothing under docs/ changed, byte for byte

    # naming the trial after the published comparison is refused before anything trains
    assert main([*trial, "name=cb-4shot"]) == 2
    assert "make experiment E=cb-4shot" in capsys.readouterr().err

    # the declared experiment changed and run again: the report refuses to publish it over the old one ...
    (experiments / "cb-4shot.yaml").write_text(DECLARED.replace("seeds: [13, 21]", "seeds: [13]"))
    assert main(publish) == 0
    with pytest.raises(InputError) as err:
        write_report(str(runs), str(docs / "RESULTS.md"), experiments=str(experiments))
    message = str(err.value)
    assert "\n" not in message and str(runs / "compare/cb-4shot") in message and str(archive / "compare/cb-4shot") \
        in message and "REPLACE=cb-4shot" in message and "seeds [13] vs [13, 21]" in message
    assert snapshot(docs) == published
    assert main(["report", str(runs), str(docs / "RESULTS.md"), f"experiments={experiments}"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    # ... unless asked to replace it
    write_report(str(runs), str(docs / "RESULTS.md"), experiments=str(experiments), replace=["cb-4shot"])
    assert len(json.loads((archive / "compare/cb-4shot/spec.json").read_text())["runs"]) == 2
