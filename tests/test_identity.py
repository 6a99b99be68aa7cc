"""The code identity: unchanged by comments, docstrings, import order and moves; changed by any statement; every
archived run maps to an identity; the modules left out of it cannot change a run's numbers."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from lit_infoprompt import identity
from lit_infoprompt import provenance
from lit_infoprompt.identity import Closure, code_identity

ROOT = Path(provenance.PACKAGE_DIR).parent
ARCHIVE = ROOT / "docs" / "results" / "runs"


@pytest.fixture
def tree(tmp_path):
    """A copy of the package to edit."""
    shutil.copytree(provenance.PACKAGE_DIR, tmp_path / "lit_infoprompt",
                    ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.jsonl", "*.md"))
    return tmp_path


def closure_files(root: Path) -> dict:
    closure = Closure(root, provenance.ENTRY)
    return {name: closure.files[name] for name in closure.names}


def module_of(root: Path, last: str) -> Path:
    return next(path for name, path in closure_files(root).items() if name.split(".")[-1] == last)


def test_the_identity_is_the_running_codes():
    assert provenance.current_identity() == code_identity(ROOT, provenance.ENTRY)
    assert provenance.code_version().identity == provenance.current_identity()
    assert re.fullmatch(r"[0-9a-f]{16}", provenance.current_identity())


@pytest.mark.slow
def test_comments_and_docstrings_in_any_module_keep_the_identity(tree):
    before = code_identity(tree, provenance.ENTRY)
    files = closure_files(tree)
    assert len(files) >= 15  # the closure is the training code, not a handful of modules
    for path in files.values():
        text = path.read_text()
        edited = text.replace("\n    return ", "\n    # why\n    return ")
        edited = '"""A new module docstring."""\n# a comment\n' + edited
        edited = re.sub(r'^(def \w+\(.*\).*:\n)', r'\1    """A new docstring."""\n', edited, count=1, flags=re.M)
        edited = edited.replace(" = ", " =  ", 1)  # formatting
        path.write_text(edited)
        assert code_identity(tree, provenance.ENTRY) == before, f"an edit of {path.name} changed the identity"


def test_moving_a_module_into_a_subpackage_and_renaming_it_keeps_the_identity(tree):
    before = code_identity(tree, provenance.ENTRY)
    package = tree / "lit_infoprompt"
    old = module_of(tree, "losses")
    old_name = ".".join(old.relative_to(tree).with_suffix("").parts)
    (package / "objectives").mkdir()
    (package / "objectives" / "__init__.py").write_text('"""A new subpackage."""\n')
    old.rename(package / "objectives" / "info_losses.py")
    for path in package.rglob("*.py"):
        text = path.read_text()
        moved = text.replace(f"{old_name} import", "lit_infoprompt.objectives.info_losses import")
        if path.name == "module.py":  # a relative import, and a re-export through the subpackage's __init__
            moved = moved.replace("from lit_infoprompt.objectives.info_losses import", "from ..objectives import")
        path.write_text(moved)
    module = module_of(tree, "module").read_text()
    names = re.search(r"from \.\.objectives import \(?([^)\n]+)", module).group(1)
    (package / "objectives" / "__init__.py").write_text(f"from .info_losses import {names}\n")
    assert code_identity(tree, provenance.ENTRY) == before


def test_the_order_of_the_packages_own_imports_keeps_the_identity(tree):
    before = code_identity(tree, provenance.ENTRY)
    path = module_of(tree, "module")
    lines = path.read_text().splitlines(keepends=True)
    own = [i for i, line in enumerate(lines) if line.startswith("from lit_infoprompt.") and line.rstrip().endswith(
        tuple("abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))]
    assert len(own) >= 3
    for i, j in zip(own, reversed(own)):
        if i < j:
            lines[i], lines[j] = lines[j], lines[i]
    path.write_text("".join(lines))
    assert code_identity(tree, provenance.ENTRY) == before


@pytest.mark.parametrize("edit", [
    ("losses", "\n    return ", "\n    x = 1\n    return "),  # one new statement
    ("losses", "(", "( ", None),  # formatting only: the control case
    ("estimators", "0.5 *", "0.25 *"),  # a constant
    ("module", "(step + 1)", "(step - 1)"),  # an operator
])
def test_a_changed_statement_changes_the_identity(tree, edit):
    last, old, new, *same = edit
    before = code_identity(tree, provenance.ENTRY)
    path = module_of(tree, last)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    changed = code_identity(tree, provenance.ENTRY) != before
    assert changed is (not same)


def test_a_module_outside_the_closure_or_excluded_changes_nothing(tree):
    before = code_identity(tree, provenance.ENTRY)
    package = tree / "lit_infoprompt"
    for name in ("report.py", "console.py", "tracking.py"):
        path = next(package.rglob(name))
        path.write_text(path.read_text() + "\nVALUE = 1\n")
    assert code_identity(tree, provenance.ENTRY) == before


def test_a_missing_module_is_a_clear_error(tree):
    path = module_of(tree, "losses")
    path.unlink()
    with pytest.raises(identity.IdentityError, match="losses"):
        code_identity(tree, provenance.ENTRY)


def test_the_writer_is_our_own_and_stable():
    """The text is independent of ast.dump's format: node and field names only, fields sorted, empties dropped."""
    import ast

    closure = Closure(ROOT, provenance.ENTRY)
    mod = identity.Module("m", ast.parse("x = f(1, b=2.5)  # c\n"), False)
    text = identity.Writer(closure, mod, resolve=True).module_text()
    assert text == ("(Assign targets=[(Name ctx=(Store) id=str:'x')] value=(Call args=[(Constant value=int:1)] "
                    "func=(Name ctx=(Load) id=str:'f') keywords=[(keyword arg=str:'b' value=(Constant "
                    "value=float:2.5))]))")


def archived_codes():
    for path in sorted(ARCHIVE.rglob("summary.json")):
        summary = json.loads(path.read_text())
        yield path, summary["code"]


def test_no_archived_run_is_stranded():
    codes = list(archived_codes())
    assert len(codes) >= 279
    known = {row["identity"] for row in provenance.table()["legacy"].values()}
    for path, code in codes:
        version = provenance.version_of(code)
        assert version in known, f"{path}: its code {code} maps to no identity"


@pytest.mark.parametrize("legacy", sorted(provenance.table()["legacy"]))
def test_each_legacy_hash_maps_to_the_identity_at_its_commit(legacy):
    row = provenance.table()["legacy"][legacy]
    computed = provenance.identity_at(row["commit"], row["entry"])
    if computed is None:
        pytest.skip(f"this checkout lacks commit {row['commit']} (a shallow clone)")
    assert computed == row["identity"]


def test_equivalences_name_known_identities_and_say_why():
    table = provenance.table()
    for new, entry in table["equivalent"].items():
        assert re.fullmatch(r"[0-9a-f]{16}", new) and entry["why"].strip()
        assert entry["same_as"] != new
    assert provenance.canonical("0" * 16) == "0" * 16


def test_runs_of_one_identity_compare_whichever_way_they_recorded_it():
    legacy, row = next(iter(provenance.table()["legacy"].items()))
    assert provenance.version_of({"code_hash": legacy}) == provenance.version_of({"identity": row["identity"]})
    assert provenance.version_of({"code_hash": "f" * 16}) == "hash:" + "f" * 16  # unknown legacy: its own version
    assert provenance.version_of({}) == "unknown"


NUMBERS = re.compile(r"^-?[0-9.e+-]+$")


def numbers(run_dir: Path) -> dict:
    """Every number a run computed: the curve (not its clock) and the test scores."""
    rows = list(csv.DictReader(open(run_dir / "curve.csv")))
    values = {f"{i}/{k}": v for i, row in enumerate(rows) for k, v in row.items()
              if "second" not in k and "time" not in k and NUMBERS.match(v or "")}
    summary = json.loads((run_dir / "summary.json").read_text())
    values.update({k: v for k, v in summary.items() if k.startswith("test_") or k in ("best_dev", "best_step")})
    return values


@pytest.mark.train
def test_the_excluded_modules_cannot_change_a_runs_numbers(tiny_config, monkeypatch):
    """The modules left out of the identity: a run with each of them doing something else (no console filters, a
    progress bar, other recorded code and environment, a W&B logger) computes the same numbers."""
    from lit_infoprompt.train import runner as train

    assert set(identity.EXCLUDED) == {"console", "provenance", "identity", "tracking"}
    names = {name.split(".")[-1] for name in identity.modules_of(ROOT)}
    assert set(identity.EXCLUDED) <= names  # each names a module that exists
    plain = train.run(tiny_config("method=infoprompt"))
    monkeypatch.setattr(train, "quiet_dependencies", lambda: None)
    monkeypatch.setattr(train, "code_version", lambda: provenance.CodeVersion(identity="0" * 16))
    monkeypatch.setattr(train, "environment", lambda *a: {"device": "elsewhere"})
    other = train.run(tiny_config("method=infoprompt", "trainer.progress_bar=true", "logger=wandb",
                                  "wandb.mode=offline"))
    assert numbers(Path(other["run_dir"])) == numbers(Path(plain["run_dir"]))
    assert len(numbers(Path(plain["run_dir"]))) > 20
