"""Run directories describe themselves: ``runs/<task>/<split>/<method>/seed<seed>/version_<N>/``,
<split> being ``<K>shot``, ``budget<N>`` or ``fixed``.

Files: ``config.yaml`` (resolved config), ``split.json`` (example ids + checksum), ``metrics.csv``
(CSV logger), ``curve.csv`` (dev curve), ``checkpoints/best.ckpt`` (trainable tensors only) and, once
the run has finished, ``summary.json``. A directory without ``summary.json`` is an unfinished run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from lit_infoprompt.config import Config, to_yaml
from lit_infoprompt.splits import split_folder


def split_name(split: dict) -> str:
    """16shot (per_class), budget64 (budget) or fixed, from the split record actually used."""
    return split_folder(split["protocol"], split["size"])


def new_run_dir(config: Config, split: dict) -> Path:
    parent = (Path(config.out_dir) / config.task.name / split_name(split) / config.method.name
              / f"seed{config.seed}")
    parent.mkdir(parents=True, exist_ok=True)
    version = 0
    while True:  # mkdir without exist_ok claims the version atomically
        path = parent / f"version_{version}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            version += 1


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def write_start(run_dir: Path, config: Config, split: dict) -> None:
    (run_dir / "config.yaml").write_text(to_yaml(config))
    write_json(run_dir / "split.json", split)


def keep_metrics_csv(run_dir: Path, last: Path) -> None:
    """The CSV logger deletes an existing metrics.csv: move it aside as metrics.until_step<N>.csv."""
    metrics_csv = run_dir / "metrics.csv"
    if metrics_csv.is_file():
        step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
        metrics_csv.rename(run_dir / f"metrics.until_step{step}.csv")


def forget_unstarted(run_dir: Path) -> None:
    """A new run that died before its first checkpoint leaves nothing behind (nothing could resume it): its
    folder would otherwise hold config.yaml and split.json only, for a later run or the report to trip over."""
    if not (run_dir / "checkpoints" / "last.ckpt").is_file() and not (run_dir / "summary.json").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
