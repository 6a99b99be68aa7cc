"""Weights & Biases, optional and never fatal.

Runs of one comparison share a W&B ``group`` (task-split-backbone); ``job_type`` is the method and the tags
are the method and seed, so the W&B UI overlays the grouped runs' curves, keyed by optimiser step
(``trainer/global_step``). Without an API key ``mode=online`` becomes ``offline`` (``wandb sync`` the run
directory's ``wandb/`` folder later); if W&B cannot start at all, training goes on with the CSV logger.
"""

from __future__ import annotations

import dataclasses
import logging
import netrc
import os
from pathlib import Path
from typing import Optional

from lit_infoprompt.config import Config
from lit_infoprompt.train.rundir import split_name

log = logging.getLogger(__name__)


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def group_name(config: Config, split: dict) -> str:
    return f"{config.task.name}-{split_name(split)}-{Path(config.model.name).name}"


def wandb_logger(config: Config, run_dir: Path, split: dict):
    """A started WandbLogger, or None (with a warning) when W&B is disabled or cannot start."""
    mode = config.wandb.mode
    if mode == "disabled":
        return None
    if mode == "online" and not has_api_key():
        log.warning("W&B: no API key (WANDB_API_KEY or ~/.netrc): logging offline; `wandb sync` it later")
        mode = "offline"
    for attempt in (mode, "offline") if mode == "online" else (mode,):
        logger = _start(config, run_dir, split, attempt)
        if logger is not None:
            return logger
    return None


def _start(config: Config, run_dir: Path, split: dict, mode: str):
    try:
        from lightning.pytorch.loggers import WandbLogger

        save_dir = Path(config.wandb.dir or run_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        logger = WandbLogger(
            project=config.wandb.project, entity=config.wandb.entity, group=group_name(config, split),
            job_type=config.method.name, tags=[config.method.name, f"seed{config.seed}"],
            name=f"{config.method.name}-seed{config.seed}-{run_dir.name}", save_dir=str(save_dir), mode=mode,
            config=dataclasses.asdict(config), settings=_settings(),
        )
        logger.experiment  # start now, so a failure is caught here and not mid-training
        return logger
    except Exception as err:  # W&B must never stop a training run
        log.warning("W&B could not start in %s mode (%s: %s); continuing without it",
                    mode, type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        return None


def _settings() -> Optional[object]:
    try:
        import wandb
        return wandb.Settings(init_timeout=60, silent=True)
    except Exception:
        return None


def finish_wandb(loggers, summary: dict) -> None:
    """Copy the summary into the W&B run summary and close the run."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            try:
                logger.experiment.summary.update({k: v for k, v in summary.items() if not isinstance(v, dict)})
                logger.experiment.finish()
            except Exception as err:
                log.warning("W&B: could not finish the run (%s)", err)
