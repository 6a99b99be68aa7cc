"""Weights & Biases, optional and never fatal.

Runs of one comparison share a W&B ``group`` (task-split-backbone); ``job_type`` is the method and the tags
are the method and seed, so the W&B UI overlays the grouped runs' curves, keyed by optimiser step
(``trainer/global_step``). Without an API key ``mode=online`` becomes ``offline`` (``wandb sync`` the run
directory's ``wandb/`` folder later); so does a key without network: the W&B server is asked first, the way the
client connects (one HTTP(S) request to ``WANDB_BASE_URL`` through the environment's proxies, ``PROBE_TIMEOUT_S``),
so a machine that cannot reach it, or reaches only something that never answers (a broken proxy, a captive portal),
decides in seconds, logs offline and leaves no half-made online run. If W&B cannot start at all, training goes on
with the CSV logger. wandb's own console messages (termlog / termwarn) go to the log instead of stderr.
"""

from __future__ import annotations

import dataclasses
import logging
import netrc
import os
import re
import shutil
import threading
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


PROBE_TIMEOUT_S = 3.0  # the W&B server's HTTP answer: a machine without network, or behind a mute proxy, decides
INIT_TIMEOUT_S = 15  # wandb.init's own wait where the server answered (W&B's default is 90 s)
DEFAULT_BASE_URL = "https://api.wandb.ai"


def base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


@dataclasses.dataclass(frozen=True)
class Answer:
    """The probe's result: true when the server gave an HTTP answer; otherwise ``why`` says what happened."""
    why: str = ""

    def __bool__(self) -> bool:
        return not self.why


def _no_auth(request):  # the probe sends no credentials (requests would otherwise add ~/.netrc's for the host)
    return request


def _ask(url: str, proxies: dict, timeout: float, outcome: dict) -> None:
    import requests

    try:
        with requests.Session() as session:  # trust_env: HTTP(S)_PROXY, NO_PROXY, the CA bundle variables
            response = session.get(url, proxies=proxies, timeout=(timeout, timeout), stream=True,
                                   allow_redirects=False, auth=_no_auth)
            response.close()
        outcome["status"] = response.status_code
    except Exception as err:  # any failure is an answer of "no"
        outcome["error"] = err


def _reason(err: Exception, timeout: float) -> str:
    import requests

    if isinstance(err, requests.Timeout):
        return f"did not answer within {timeout:g} s"
    if isinstance(err, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
    return found.group(1).strip().lower() if found else type(err).__name__


def wandb_reachable(timeout: float = PROBE_TIMEOUT_S) -> Answer:
    """Whether the W&B server (``WANDB_BASE_URL``, default api.wandb.ai) gives an HTTP answer, any status, within
    ``timeout`` seconds, asked as its client connects: through ``HTTPS_PROXY`` / ``HTTP_PROXY`` unless ``NO_PROXY``
    names the host (or ``WANDB_HTTPS_PROXY`` / ``WANDB_HTTP_PROXY``, W&B's own proxy settings). A TCP connection
    alone is not an answer: a broken proxy or a captive portal accepts it and then never replies, and wandb.init
    would wait out its timeout. The whole request, name lookup included, is bounded by ``timeout``."""
    import requests

    url = base_url()
    proxies = {scheme: os.environ[f"WANDB_{scheme.upper()}_PROXY"] for scheme in ("http", "https")
               if os.environ.get(f"WANDB_{scheme.upper()}_PROXY")}
    try:
        with requests.Session() as session:
            used = requests.utils.select_proxy(url, session.merge_environment_settings(
                url, dict(proxies), None, None, None)["proxies"])
    except Exception:
        used = None
    via = f" through the proxy {_where(used)}" if used else ""
    outcome: dict = {}
    asking = threading.Thread(target=_ask, args=(url, proxies, timeout, outcome), name="wandb-probe", daemon=True)
    asking.start()
    asking.join(timeout)
    if "status" in outcome:
        return Answer()
    if "error" in outcome:
        return Answer(_reason(outcome["error"], timeout) + via)
    return Answer(f"did not answer within {timeout:g} s{via}")


def _where(url: str) -> str:
    """host[:port] of a URL, without any user name or password in it."""
    try:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)
    except ValueError:
        return "(unparsable)"


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
    elif mode == "online":
        answer = wandb_reachable()
        if not answer:
            log.warning("W&B: %s cannot be reached: logging offline (%s); %s", _where(base_url()),
                        getattr(answer, "why", "") or "no answer", sync)
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

        messages_to_log()

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


class _WandbMessages:
    """Where wandb's terminal messages go instead of stderr (wandb's fallback for silent mode): the ``wandb`` logger,
    which writes the run's ``wandb/run-*/logs/debug.log`` while a run is active, and this module's logger at DEBUG
    (on the console only where logging is configured to show DEBUG records)."""

    def _emit(self, level: int, message: str) -> None:
        run_log = logging.getLogger("wandb")
        if not run_log.propagate:  # as wandb sets it up on import: records reach its run files, never the console
            run_log.log(level, message)
        log.debug("%s", message)

    def info(self, message: str) -> None:
        self._emit(logging.INFO, message)

    def warning(self, message: str) -> None:
        self._emit(logging.WARNING, message)

    def error(self, message: str) -> None:
        self._emit(logging.ERROR, message)


def messages_to_log() -> None:
    """Send wandb's own console messages (its termlog / termwarn / termerror: e.g. "The anonymous setting has no
    effect", which Lightning's WandbLogger triggers, or "Loaded credentials") to the log, not to stderr. wandb applies
    its terminal settings once, when its process-wide setup is made: that setup is made here first, silent, and its
    silent mode then gets a logger to write to. The project's own W&B lines are unaffected."""
    try:
        import wandb

        quiet = wandb.Settings(silent=True)
        wandb.setup(settings=quiet)
        wandb.termsetup(quiet, _WandbMessages())
    except Exception as err:  # never fatal: at worst wandb prints its messages
        log.debug("W&B: could not route wandb's messages to the log (%s)", err)


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
