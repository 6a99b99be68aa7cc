"""Which code and which machine made a run.

A run records its code as ``code.identity`` (``identity.code_identity``: a hash of what the training code
computes, unchanged by comments, docstrings and moves), the git commit and whether the tree differed from it, and
``environment`` in summary.json (library versions, device, precision, threads). Runs made before identities
existed recorded ``code.code_hash``, a hash of the source text; ``identities.json`` maps each such hash to the
identity of the code at the commit it names, and lists identity changes declared equivalent (old -> new, why),
each allowed only where the behaviour fingerprint (tests/fingerprint.py) and ``make report`` were unchanged.
``version_of`` turns any recorded code into the canonical identity a comparison checks.

This module reads no torch at import: the analysis side (``compare``, ``report``) imports it.
"""

from __future__ import annotations

import functools
import io
import json
import platform
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Optional

from lit_infoprompt.config import CONF_DIR, CodeVersion, uses_cuda
from lit_infoprompt.identity import code_identity

PACKAGE_DIR = Path(__file__).resolve().parent
ENTRY = "lit_infoprompt.train.runner"  # the module whose import closure is the training code
TABLE = PACKAGE_DIR / "identities.json"
LIBRARIES = ("torch", "transformers", "lightning", "torchmetrics")


@functools.lru_cache(maxsize=None)
def current_identity() -> str:
    return code_identity(PACKAGE_DIR.parent, ENTRY)


def git(*args: str, text: bool = True):
    """A git command's output in the project's repository; None where git, the history or the command fails."""
    try:
        done = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), *args], capture_output=True, text=text,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() if text else done.stdout


def code_version() -> CodeVersion:
    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = None
    if commit is not None:
        status = git("status", "--porcelain", "--", PACKAGE_DIR.name, CONF_DIR.name)
        dirty = bool(status) if status is not None else None
    return CodeVersion(commit=commit, dirty=dirty, identity=current_identity())


def identity_at(commit: str, entry: str = ENTRY) -> Optional[str]:
    """The identity of the training code at a git commit (None where the checkout lacks that commit)."""
    archive = git("archive", "--format=tar", commit, PACKAGE_DIR.name, text=False)
    if archive is None:
        return None
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp, filter="data")
        return code_identity(Path(tmp), entry)


@functools.lru_cache(maxsize=None)
def table() -> dict:
    """{"legacy": {code_hash: {"identity", "commit", "entry"}}, "equivalent": {identity: {"same_as", "why"}}}."""
    return json.loads(TABLE.read_text())


def canonical(identity: str) -> str:
    """An identity, or the one an equivalence entry declares it the same as (followed to the oldest)."""
    seen = set()
    while identity in table()["equivalent"] and identity not in seen:
        seen.add(identity)
        identity = table()["equivalent"][identity]["same_as"]
    return identity


def version_of(code: dict) -> str:
    """The canonical identity of a saved ``code`` section; a legacy hash missing from the table stays a version
    of its own ("hash:<code_hash>"), a run with no record at all is "unknown"."""
    if code.get("identity"):
        return canonical(code["identity"])
    legacy = code.get("code_hash")
    if not legacy:
        return "unknown"
    row = table()["legacy"].get(legacy)
    return canonical(row["identity"]) if row else f"hash:{legacy}"


def recorded(code: dict) -> str:
    """What the run itself recorded (its identity, or the legacy hash): the key a comparison lists it under."""
    return code.get("identity") or code.get("code_hash") or "unknown"


def describe(version: dict) -> str:
    """'<commit> (clean), code <identity>' from a saved ``code`` section (missing for runs made before it existed)."""
    key = recorded(version or {})
    if key == "unknown":
        return "unknown code version (run made before versions were recorded)"
    state = {True: "dirty", False: "clean", None: "no git"}[version.get("dirty")]
    return f"{version.get('commit') or 'no commit'} ({state}), code {key}"


def device_name(accelerator: str) -> str:
    """The GPU's name where the run uses CUDA, else the CPU's model."""
    if uses_cuda(accelerator):
        import torch

        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(precision: str, accelerator: str) -> dict:
    """What a run's numbers may depend on beyond the code and the config: library versions and the machine."""
    import torch

    def version(name: str) -> Optional[str]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES},
            "device": device_name(accelerator), "precision": precision, "threads": torch.get_num_threads(),
            "platform": sys.platform}
