"""What a set of runs needs from the hub (a backbone, each task's data), fetched once before they start, and
``make fetch``.

``prefetch`` runs where a grid, an experiment or the paper's grid has checked its inputs and before any run or
worker starts: every backbone and every task's data its runs need, downloaded once (under the locks of
``lit_infoprompt.fetch``) or found in the caches, so that workers and array jobs only read. ``fetch`` (``make fetch``)
gets everything an experiment, or the paper's grid, needs on a machine that reaches the hub (a cluster's login node),
into the caches the runs read; runs on compute nodes without network (``HF_HUB_OFFLINE=1``) find it there.
``missing`` says, without network, what is not there yet (the plans print it with the ``make fetch`` line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from lit_infoprompt import hub
from lit_infoprompt.fetch import cache_root, ensure_model
from lit_infoprompt.tasks.sources import data_state, resolve_files


@dataclass(frozen=True)
class Need:
    """One input of a set of runs: a backbone (``kind="model"``, ``name`` a hub id, a folder or the fallback) or
    a task's data (``kind="data"``, ``name`` the task, ``protocol``, and the first ``config`` that reads it)."""

    kind: str
    name: str
    protocol: str = ""
    data_dir: Optional[str] = None
    cache_dir: str = ""
    config: Any = field(default=None, compare=False, hash=False)


def needs_of(configs: Sequence) -> List[Need]:
    """The distinct inputs of run configs (``lit_infoprompt.config.Config``), in first-seen order."""
    seen: Dict[Need, None] = {}
    for c in configs:
        seen.setdefault(Need("model", c.model.name), None)
        seen.setdefault(Need("data", c.task.name, c.data.protocol, c.data.dir, c.data.cache_dir, c), None)
    return list(seen)


def _hub_name(need: Need) -> str:
    """The model a need names, ``auto`` read as the paper's backbone (what ``make fetch`` gets)."""
    return hub.PAPER_BACKBONE if need.name == hub.DEFAULT_MODEL else need.name


def missing(configs: Sequence) -> List[str]:
    """What runs with these configs would lack on a machine without network, in words (no network is used)."""
    out = []
    for need in needs_of(configs):
        if need.kind == "model":
            name = _hub_name(need)
            if Path(name).expanduser().is_dir():
                continue
            if Path(name).name == hub.FALLBACK_NAME and Path(name).parent == hub.models_dir():
                if not hub.fallback_ready():
                    out.append(f"the fallback backbone {hub.FALLBACK_NAME} (not unpacked in {hub.models_dir()})")
                continue
            state, lacks = hub.cache_state(hub.cached_alias(name))
            if state != "complete":
                out.append(f"model {name} ({'only partly in' if state == 'partial' else 'not in'} the Hugging Face "
                           f"cache {cache_root()}{': no ' + ' and no '.join(lacks) if state == 'partial' else ''})")
        else:
            why = data_state(need.config)
            if why:
                out.append(f"data of {need.name}: {why}")
    return out


def prefetch(configs: Sequence) -> None:
    """Before any run of a grid starts: every backbone and every task's data its runs need, fetched once (or found
    in the caches), so that workers and array jobs only read. What cannot be had is one error line here, not one per
    run. ``model.name=auto`` is resolved as a run resolves it (the paper's backbone, else the fallback)."""
    for need in needs_of(configs):
        if need.kind == "model":
            name = hub.resolve_model(need.name)[0] if need.name == hub.DEFAULT_MODEL else need.name
            if Path(name).expanduser().is_dir():
                continue
            hub.check_model_name(name)
            ensure_model(name)
        else:
            resolve_files(need.config.task, need.config.data)


def fetch_configs(configs: Sequence, needs: Optional[List[Need]] = None) -> List[str]:
    """``make fetch``: every input of these run configs (or only ``needs``) into the local caches; returns what is
    ready, in words."""
    done = []
    for need in needs if needs is not None else needs_of(configs):
        if need.kind == "model":
            name = _hub_name(need)
            if Path(name).expanduser().is_dir():
                done.append(f"model {name}: a local folder")
                continue
            if Path(name).name == hub.FALLBACK_NAME:
                hub.fetch_fallback()
                done.append(f"model {hub.FALLBACK_NAME}: {hub.models_dir() / hub.FALLBACK_NAME}")
                continue
            done.append(f"model {ensure_model(name)}: in {cache_root()}")
        else:
            files = resolve_files(need.config.task, need.config.data)
            done.append(f"data of {need.name} ({need.protocol}): {files.train.parent}")
    return done


def missing_lines(configs: Sequence, fetch_line: str) -> List[str]:
    """A plan's lines on its inputs: all in the local caches, or what is not and the ``make fetch`` line that gets
    it (no network is used to say so)."""
    lacks = missing(configs)
    if not lacks:
        return ["inputs: the backbone and every task's data are in the local caches (the runs need no network)"]
    return [f"not in the local caches yet: {'; '.join(lacks)}",
            f"  a run downloads them where the hub answers; for machines without network, first, where it does: "
            f"{fetch_line}"]
