"""`make report` on the committed run files rewrites docs/ exactly: every text file byte for byte, every plot pixel
for pixel (a PNG's bytes embed the plotting library's version, its pixels do not)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def files(root: Path) -> dict:
    return {p.relative_to(root): p for p in sorted(root.rglob("*")) if p.is_file()}


def same_png(a: Path, b: Path) -> bool:
    from matplotlib import image

    x, y = image.imread(a), image.imread(b)
    return x.shape == y.shape and np.array_equal(x, y)


@pytest.mark.slow
def test_the_report_reproduces_docs_from_the_committed_runs(tmp_path):
    from lit_infoprompt.sweep.reporting import report

    if not (ROOT / "docs" / "results" / "compare").is_dir():
        pytest.skip("no committed comparisons")
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    before = {name: path.read_bytes() for name, path in files(docs).items()}
    for png in docs.rglob("*.png"):  # written again from scratch: a stale plot must not pass for a fresh one
        if "results" in png.parts:
            png.unlink()
    report(str(tmp_path / "runs"), str(docs / "RESULTS.md"))  # a fresh clone: no runs/, only the archive
    after = files(docs)
    assert set(after) == set(before), sorted(set(after) ^ set(before))
    changed = [str(name) for name, path in after.items() if path.read_bytes() != before[name]
               and not (name.suffix == ".png" and same_png(ROOT / "docs" / name, path))]
    assert not changed, f"make report changed {len(changed)} files, e.g. {changed[:5]}"
