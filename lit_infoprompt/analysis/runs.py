"""Finished runs on disk, and which one answers a config.

A run is identified by its experiment key: the saved config without the output settings and provenance
(``IGNORED``). ``find_run`` is what the grid asks before it trains (reuse a finished run, resume an unfinished
one); the comparison checks the same key before it aggregates runs (``aggregation_check.check_comparable``).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from omegaconf import OmegaConf

from lit_infoprompt.config import Config, load_saved
from lit_infoprompt.splits import split_words


# output settings and provenance, not the experiment; and where the data files lie (data.dir, data.cache_dir: the
# same examples read from ../shared/data or /work/shared/data are one experiment; split.json checksums them)
IGNORED = {"resume", "out_dir", "archive", "logger", "wandb", "trainer.progress_bar", "code", "backbone_notice",
           "data.dir", "data.cache_dir"}


# The offline fallback backbone's folder (hub.models_dir()/all-MiniLM-L6-v2, its weights checked by sha256 when
# unpacked) is one backbone whatever the home directory it was unpacked under: keyed by this name, so archived runs
# made under /root match a researcher's own ~/.cache.
FALLBACK_FOLDER = re.compile(r"(^|/)lit_infoprompt/models/all-MiniLM-L6-v2/?$")
FALLBACK_KEY = "lit_infoprompt/models/all-MiniLM-L6-v2"


def experiment_key(config: dict, drop: Sequence[str] = ()) -> dict:
    """The config as a nested dict without the output settings (and without ``drop``)."""
    flat = {}
    for section, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat[section] = value
    skip = IGNORED | set(drop)
    if isinstance(flat.get("model.name"), str) and FALLBACK_FOLDER.search(flat["model.name"]):
        flat["model.name"] = FALLBACK_KEY
    return {k: v for k, v in flat.items() if k not in skip and k.split(".")[0] not in skip}


def as_dict(config: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config))


def saved_dict(path: Path) -> dict:
    return as_dict(load_saved(path))


def find_run(config: Config, prefer: Sequence[str] = (), roots: Optional[Sequence[Path]] = None,
             key: Optional[Callable[[Path], dict]] = None, finished_only: bool = False) -> tuple[Optional[Path], bool]:
    """(run directory with the same experiment, finished?) or (None, False). First among ``prefer`` (the runs an
    archived experiment lists: a declared experiment reuses exactly its own), then in ``roots`` (default: the
    config's ``out_dir``, then the finished runs of its archive, ``<archive>/runs``: committed run files without
    checkpoints, so a sweep continues across machines). An unfinished run counts where it can resume (a last
    checkpoint), unless ``finished_only`` (the plan). ``key``: a saved config.yaml's experiment key (the plan
    caches them)."""
    key = key or (lambda path: experiment_key(saved_dict(path)))
    want = experiment_key(as_dict(config))
    for run_dir in preferred(prefer, config.method.name, config.seed):
        if (run_dir / "summary.json").is_file() and key(run_dir / "config.yaml") == want:
            return run_dir, True
    if roots is None:
        roots = [Path(config.out_dir)] + ([Path(config.archive) / "runs"] if config.archive else [])
    for root in roots:
        for config_file in versions(root, config.task.name, config.method.name, config.seed):
            run_dir = config_file.parent
            finished = (run_dir / "summary.json").is_file()
            if (finished or not finished_only) and key(config_file) == want:
                if finished or (run_dir / "checkpoints/last.ckpt").is_file():
                    return run_dir, finished
    return None, False


def preferred(prefer: Sequence[str], method: str, seed: int) -> List[Path]:
    """The run directories of ``prefer`` that can hold this method and seed (by their folder names)."""
    return [Path(d) for d in prefer if Path(d).parent.name == f"seed{seed}" and Path(d).parent.parent.name == method]


def versions(root: Path, task: str, method: str, seed: int) -> List[Path]:
    """The saved configs of every version of (task, method, seed) under a runs root, any split."""
    return sorted((root / task).glob(f"*/{method}/seed{seed}/version_*/config.yaml"))


def read_run(run_dir: Path) -> dict:
    with (run_dir / "curve.csv").open() as handle:
        curve = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return {"dir": run_dir, "config": saved_dict(run_dir / "config.yaml"),
            "summary": json.loads((run_dir / "summary.json").read_text()), "curve": curve}


def run_split_words(summary: dict) -> str:
    """A run's split (its summary.json) as the report's headers write it: "16-shot", "budget 64"."""
    return split_words(summary["protocol"], summary["shots"] or summary["split_size"])


def listed(run_dirs: List[Path], relative_to: Optional[Path]) -> List[str]:
    """Run directories as runs.txt and spec.json list them: as given, or relative to an archive root."""
    return [str(Path(d).relative_to(relative_to)) if relative_to else str(d) for d in run_dirs]
