"""Run directories describe themselves: ``runs/<task>/<split>/<method>/seed<seed>/version_<N>/``,
<split> being ``<K>shot``, ``budget<N>`` or ``fixed``.

Files: ``config.yaml`` (resolved config), ``split.json`` (example ids + checksum), ``metrics.csv``
(CSV logger), ``curve.csv`` (dev curve), ``checkpoints/best.ckpt`` (trainable tensors only) and, once
the run has finished, ``summary.json``. A directory without ``summary.json`` is an unfinished run.
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_infoprompt.config import Config, to_yaml


def split_name(split: dict) -> str:
    """16shot (per_class), budget64 (budget) or fixed, from the split record actually used."""
    protocol, size = split["protocol"], split["size"]
    return {"per_class": f"{size}shot", "budget": f"budget{size}"}.get(protocol, protocol)


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
