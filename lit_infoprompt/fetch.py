"""Getting a run's inputs from the hub, once, in view: the backbone and the tasks' data.

``ensure_model`` is what every run calls for a hub model id: a model that the local Hugging Face cache holds
complete is loaded from it with no request at all; otherwise, where the hub answers, the files a run needs (config,
tokenizer, one weights format: ``model.safetensors`` if the repository has it) are downloaded after one line that
says what, how large and where, with huggingface_hub's progress bars; where the hub does not answer, a model missing
from the cache, or only partly there (an interrupted download), is one ``error:`` line naming the command that
completes it. Downloads of one model or one task take a lock file, so that processes started together (a grid's
workers, a SLURM array) fetch each thing once and the others wait and then read it.

What an experiment or the paper's grid needs, and ``make fetch``, are in ``sweep/fetching.py``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from lit_infoprompt import hub
from lit_infoprompt.errors import InputError

log = logging.getLogger(__name__)
WAIT_NOTICE_S = 2.0  # a lock held longer than this by another process is said once


def locks_dir() -> Path:
    return hub.models_dir().parent / "locks"


@contextmanager
def held(lock_path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``lock_path`` (created if needed); while another process holds it, say once who waits."""
    from filelock import FileLock, Timeout

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=WAIT_NOTICE_S)
    except Timeout:
        log.warning("waiting for another process that is downloading %s (lock %s)", what, lock_path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "--", name)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def wanted_files(sizes: Dict[str, Optional[int]]) -> List[str]:
    """The files of a model repository a run reads: config, tokenizer files, one weights format (safetensors
    before PyTorch pickles, every shard of a sharded checkpoint); never TF, Flax, ONNX or Rust weights."""
    names = set(sizes)
    wanted = [hub.CONFIG_FILE] if hub.CONFIG_FILE in names else []
    wanted += [f for f in hub.TOKENIZER_FILES if f in names]
    for single, index in zip(hub.WEIGHT_FILES, hub.WEIGHT_INDEXES):
        if single in names:
            return wanted + [single]
        if index in names:
            stem = index.split(".index.json")[0].rsplit(".", 1)[0]  # model | pytorch_model
            ext = single.rsplit(".", 1)[1]
            shards = sorted(n for n in names if re.fullmatch(rf"{re.escape(stem)}-\d+-of-\d+\.{ext}", n))
            return wanted + [index, *shards]
    return wanted


def cache_root() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def download_model(name: str) -> None:
    """Download what a run needs of hub model ``name`` that the cache lacks, saying what, how large and where;
    nothing when the cache has it all. One error line when the hub refuses (no such model, gated, ...)."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    with held(locks_dir() / f"model-{_safe(name)}.lock", name):
        try:
            info = HfApi().model_info(name, files_metadata=True)
        except Exception as err:  # noqa: BLE001 - not found, gated, auth, network: one line
            raise InputError(f"cannot download model '{name}' from {hub.endpoint()}: {type(err).__name__}: "
                             f"{hub._first_line(err)}") from None
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        files = wanted_files(sizes)
        if hub.CONFIG_FILE not in files:
            raise InputError(f"'{name}' on {hub.endpoint()} has no config.json: not a transformers model")
        todo = [f for f in files if hub.cached_file(name, f) is None]
        if not todo:
            return
        total = sum(sizes.get(f) or 0 for f in todo)
        biggest = sorted(todo, key=lambda f: -(sizes.get(f) or 0))[:3]
        log.warning("downloading %s, %s (%s%s) from %s to %s", name, human(total),
                    ", ".join(f"{f} {human(sizes.get(f) or 0)}" for f in biggest),
                    f" and {len(todo) - len(biggest)} small files" if len(todo) > len(biggest) else "",
                    hub.endpoint(), cache_root())
        if are_progress_bars_disabled() and not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
            enable_progress_bars()  # someone turned them off in this process; the user did not
        started = time.monotonic()
        for filename in todo:
            try:
                hf_hub_download(name, filename)
            except KeyboardInterrupt:
                log.warning("download of %s interrupted at %s: the files before it are kept in the cache, the next "
                            "run (or `make fetch MODEL=%s`) downloads the rest", name, filename, name)
                raise
            except Exception as err:  # noqa: BLE001 - a cut connection, a full disk: one line, the cache stays valid
                raise InputError(f"downloading {name}/{filename} failed ({type(err).__name__}: "
                                 f"{hub._first_line(err)}); run the same command again to fetch what is missing "
                                 f"(the files already downloaded are kept)") from None
        log.warning("downloaded %s (%s in %.0f s)", name, human(total), time.monotonic() - started)


def ensure_model(name: str) -> str:
    """The hub model ``name`` ready in the local cache (downloaded where needed and possible); returns the name to
    load it by with ``local_files_only`` (an alias the cache holds, e.g. FacebookAI/roberta-large)."""
    alias = hub.cached_alias(name)
    if hub.cache_state(alias)[0] == "complete":
        return alias
    if hub.hub_reachable():
        download_model(name)
        return name
    state, missing = hub.cache_state(name)
    if state == "partial":
        raise InputError(f"model '{name}' is only partly in the local Hugging Face cache ({cache_root()}: no "
                         f"{' and no '.join(missing)}; an interrupted download?) and {hub.unreachable_reason()}: "
                         f"complete it with `make fetch MODEL={name}` where the hub is reachable")
    raise InputError(f"model '{name}' is not in the local Hugging Face cache ({cache_root()}) and "
                     f"{hub.unreachable_reason()}: get it with `make fetch MODEL={name}` where the hub is reachable, "
                     f"or pass MODEL=<local folder>")
