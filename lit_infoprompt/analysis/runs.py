"""Finished runs on disk, and which one answers a config.

A run is identified by its experiment key: the saved config without the output settings and provenance
(``IGNORED``). ``find_run`` is what the grid asks before it trains (reuse a finished run, resume an unfinished
one); the comparison checks the same key before it aggregates runs (``comparable``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import List, Optional, Sequence

from omegaconf import OmegaConf

from lit_infoprompt.config import Config, load_saved


# output settings and provenance, not the experiment
IGNORED = {"resume", "out_dir", "archive", "logger", "wandb", "trainer.progress_bar", "code", "backbone_notice"}


def experiment_key(config: dict, drop: Sequence[str] = ()) -> dict:
    """The config as a nested dict without the output settings (and without ``drop``)."""
    flat = {}
    for section, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat[section] = value
    skip = IGNORED | set(drop)
    return {k: v for k, v in flat.items() if k not in skip and k.split(".")[0] not in skip}


def as_dict(config: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config))


def saved_dict(path: Path) -> dict:
    return as_dict(load_saved(path))


def find_run(config: Config) -> tuple[Optional[Path], bool]:
    """(run directory with the same experiment, finished?) or (None, False). Looks in ``out_dir`` and then among
    the finished runs of the archive (``<archive>/runs``, committed run files without checkpoints), so a sweep
    continues across machines."""
    want = experiment_key(as_dict(config))
    roots = [Path(config.out_dir)] + ([Path(config.archive) / "runs"] if config.archive else [])
    for root in roots:
        pattern = f"*/{config.method.name}/seed{config.seed}/version_*/config.yaml"
        for config_file in sorted((root / config.task.name).glob(pattern)):
            if experiment_key(saved_dict(config_file)) == want:
                run_dir = config_file.parent
                finished = (run_dir / "summary.json").is_file()
                if finished or (run_dir / "checkpoints/last.ckpt").is_file():
                    return run_dir, finished
    return None, False


def read_run(run_dir: Path) -> dict:
    with (run_dir / "curve.csv").open() as handle:
        curve = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    return {"dir": run_dir, "config": saved_dict(run_dir / "config.yaml"),
            "summary": json.loads((run_dir / "summary.json").read_text()), "curve": curve}


def split_words(summary: dict) -> str:
    """A run's split as the report's headers write it: "16-shot" or "budget 64"."""
    return f"{summary['shots']}-shot" if summary["shots"] else f"{summary['protocol']} {summary['split_size']}"


def listed(run_dirs: List[Path], relative_to: Optional[Path]) -> List[str]:
    """Run directories as runs.txt and spec.json list them: as given, or relative to an archive root."""
    return [str(Path(d).relative_to(relative_to)) if relative_to else str(d) for d in run_dirs]
