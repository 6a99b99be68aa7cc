"""The analysis names no method: which methods the paper's claims are about comes from conf/claims.yaml, and the
arms of a comparison from its experiment file, so a new arm reaches the report with no code change."""

import ast
import re
from pathlib import Path

import pytest

from lit_infoprompt.analysis.claim_roles import claim_roles
from lit_infoprompt.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf/method").glob("*.yaml"))


def method_literals(path: Path) -> list:
    """Every string in the module's code (docstrings left out) that is a method preset's name, or an f-string
    piece that names one (``f"power_vs_prompt_tuning"``)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words = {w for w in re.split(r"[^A-Za-z0-9_]+", node.value) if w}
            found += [f"{path.name}:{node.lineno}: {node.value!r}" for w in sorted(words) if w in PRESETS]
    return found


def test_no_module_of_the_analysis_names_a_method():
    found = [hit for path in sorted((ROOT / "lit_infoprompt/analysis").glob("*.py")) for hit in method_literals(path)]
    assert found == []


def test_the_finder_finds_a_method_name(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""About prompt_tuning: a docstring may name it."""\nBASE = "prompt_tuning"\n'
                      'KEY = f"power_vs_{BASE} infoprompt_plus"\n')
    assert [hit.split(": ", 1)[1] for hit in method_literals(module)] == ["'prompt_tuning'", "' infoprompt_plus'"]


def test_the_roles_are_the_files(tmp_path):
    roles = claim_roles()
    assert roles.baseline in PRESETS and set(roles.claimed) <= set(PRESETS) and roles.headline == roles.claimed[0]
    mine = tmp_path / "claims.yaml"
    mine.write_text("baseline: a\nclaimed: [b, c]\ncontrols: {label_words: c, bottleneck: [b, d]}\n")
    assert claim_roles(mine) == type(roles)("a", ("b", "c"), "c", ("b", "d"))
    bad = tmp_path / "bad-claims.yaml"
    bad.write_text("baseline: a\nclaimed: [b]\n")
    with pytest.raises(InputError, match="bad-claims.yaml: expected baseline"):
        claim_roles(bad)


@pytest.mark.slow
def test_a_new_arm_in_an_experiment_file_reaches_the_report_with_no_code_change(tmp_path, monkeypatch):
    from test_claims_report import NOISE, PT, SEEDS, comparison, shifted

    from lit_infoprompt.sweep.reporting import report

    runs, experiments, docs = tmp_path / "runs", tmp_path / "experiments", tmp_path / "docs"
    experiments.mkdir()
    (experiments / "cb-16shot-1000steps-newarm.yaml").write_text(
        "task: cb\nshots: 16\nsteps: 1000\nmodel: fallback\nbaseline: prompt_tuning\nseeds: [13, 21, 42, 87, 100]\n"
        "arms:\n  prompt_tuning: prompt_tuning\n  infoprompt: infoprompt\n"
        "  head_heavy: infoprompt+method.head_weight=2\nclaims: [accuracy]\n")
    dev = {s: 0.6 for s in SEEDS}
    heavy = {"method": "infoprompt", "overrides": ["method.head_weight=2"], "match": {"method.head_weight": 2.0}}
    plain = {"method": "infoprompt", "overrides": [], "match": {"method.head_weight": 0.1}}
    folder = comparison(tmp_path, "cb-16shot-1000steps-newarm", {  # runs under tmp_path/runs, as a run leaves them
        "prompt_tuning": ("prompt_tuning", (), shifted(0), dev),
        "infoprompt": ("infoprompt", (), shifted(0.01, NOISE), dev),
        "head_heavy": ("infoprompt", ("method.head_weight=2",), shifted(0.05, NOISE), dev)},
        described={"prompt_tuning": PT, "infoprompt": plain, "head_heavy": heavy})
    (runs / "compare").mkdir(parents=True)
    folder.rename(runs / "compare" / folder.name)
    monkeypatch.chdir(tmp_path)
    out = report("runs", str(docs / "RESULTS.md"), experiments=str(experiments))
    text = out.read_text()
    assert "`head_heavy`" in text and "cb-16shot-1000steps-newarm" in text
    assert "head_weight=2" in text  # what the arm is, said once
