"""Which code made a run: the git commit, whether the package or conf/ differed from it, and a hash of the
source and config files as they were run.

``code_hash`` is what ``compare`` checks before it aggregates runs: two runs with equal hashes ran the same
training code and defaults whatever the commits say (a commit that only touched the docs, or only the modules
that read finished runs, keeps the hash), and a run made from an edited, uncommitted tree gets a hash of its own.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from lit_infoprompt.config import CONF_DIR, CodeVersion

PACKAGE_DIR = Path(__file__).resolve().parent
# Modules that only read finished runs or serve other commands: they cannot change what a run computes.
NOT_TRAINING = {"__main__.py", "compare.py", "grid.py", "power.py", "robustness.py", "report.py", "plots.py",
                "export.py", "theory.py", "provenance.py",
                "console.py"}


def code_hash(package_dir: Path = PACKAGE_DIR, conf_dir: Path = CONF_DIR) -> str:
    digest = hashlib.sha256()
    files = [(p.name, p) for p in sorted(package_dir.glob("*.py")) if p.name not in NOT_TRAINING]
    files += [(str(p.relative_to(conf_dir)), p) for p in sorted(conf_dir.rglob("*.yaml"))]
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), *args], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> CodeVersion:
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = None
    if commit is not None:
        status = _git("status", "--porcelain", "--", PACKAGE_DIR.name, CONF_DIR.name)
        dirty = bool(status) if status is not None else None
    return CodeVersion(commit=commit, dirty=dirty, code_hash=code_hash())


def describe(version: dict) -> str:
    """'faa9549 (clean), code 3f2a...' from a saved ``code`` section (missing for runs made before it existed)."""
    if not version or not version.get("code_hash"):
        return "unknown code version (run made before versions were recorded)"
    state = {True: "dirty", False: "clean", None: "no git"}[version.get("dirty")]
    return f"{version.get('commit') or 'no commit'} ({state}), code {version['code_hash']}"
