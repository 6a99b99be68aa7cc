"""Weights & Biases, optional and never fatal.

Runs of one comparison share a W&B ``group`` (task-split-backbone); ``job_type`` is the method and the tags
are the method and seed, so the W&B UI overlays the grouped runs' curves, keyed by optimiser step
(``trainer/global_step``). Without an API key ``mode=online`` becomes ``offline`` (``wandb sync`` the run
directory's ``wandb/`` folder later); so does a key without network: the W&B host is probed first (one TCP
connection, ``PROBE_TIMEOUT_S``), so a machine that cannot reach it decides in seconds, logs offline and leaves no
half-made online run. If W&B cannot start at all, training goes on with the CSV logger.
"""

from __future__ import annotations

import dataclasses
import logging
import netrc
import os
import shutil
import socket
from pathlib import Path
from typing import Optional, Tuple
from urllib.parse import urlparse

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


PROBE_TIMEOUT_S = 3.0  # the W&B host's TCP connection: a machine without network decides within this
INIT_TIMEOUT_S = 15  # wandb.init's own wait where the host answered (W&B's default is 90 s)


def wandb_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the W&B host (``WANDB_BASE_URL``, default api.wandb.ai) takes a TCP connection within ``timeout``."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except (OSError, TypeError):
        return False


def wandb_logger(config: Config, run_dir: Path, split: dict):
    """A started WandbLogger, or None (with one line) when W&B is disabled or cannot start. Online without a key,
    or without a connection to the W&B host, logs offline and says so in one line."""
    mode = config.wandb.mode
    if mode == "disabled":
        return None
    save_dir = Path(config.wandb.dir or run_dir)
    sync = f"`wandb sync {save_dir / 'wandb'}` later"
    if mode == "online" and not has_api_key():
        log.warning("W&B: no API key (WANDB_API_KEY or ~/.netrc): logging offline; %s", sync)
        mode = "offline"
    elif mode == "online" and not wandb_reachable():
        log.warning("W&B: %s cannot be reached: logging offline; %s",
                    urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname, sync)
        mode = "offline"
    logger, error = _start(config, run_dir, split, mode, save_dir)
    if logger is None and mode == "online":
        offline, _ = _start(config, run_dir, split, "offline", save_dir)
        if offline is not None:
            log.warning("W&B: the online start failed (%s): logging offline; %s", error, sync)
            return offline
    if logger is None:
        log.warning("W&B could not start in %s mode (%s); the run goes on with the CSV logger only", mode, error)
    return logger


def _start(config: Config, run_dir: Path, split: dict, mode: str, save_dir: Path) -> Tuple[Optional[object], str]:
    """(a started WandbLogger, "") or (None, why); a failed start leaves no run folder of its own behind."""
    before = set((save_dir / "wandb").glob("*run-*")) if (save_dir / "wandb").is_dir() else set()
    try:
        from lightning.pytorch.loggers import WandbLogger

        save_dir.mkdir(parents=True, exist_ok=True)
        logger = WandbLogger(
            project=config.wandb.project, entity=config.wandb.entity, group=group_name(config, split),
            job_type=config.method.name, tags=[config.method.name, f"seed{config.seed}"],
            name=f"{config.method.name}-seed{config.seed}-{run_dir.name}", save_dir=str(save_dir), mode=mode,
            config=dataclasses.asdict(config), settings=_settings(),
        )
        logger.experiment  # start now, so a failure is caught here and not mid-training
        return logger, ""
    except Exception as err:  # W&B must never stop a training run
        for folder in set((save_dir / "wandb").glob("*run-*")) - before if (save_dir / "wandb").is_dir() else ():
            shutil.rmtree(folder, ignore_errors=True)
        first = str(err).splitlines()[0] if str(err) else ""
        return None, f"{type(err).__name__}: {first}" if first else type(err).__name__


def _settings() -> Optional[object]:
    try:
        import wandb
        return wandb.Settings(init_timeout=INIT_TIMEOUT_S, silent=True)
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
