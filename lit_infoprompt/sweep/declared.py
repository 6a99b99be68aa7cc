"""Which names are declared experiments (files of ``conf/experiment/``), and the name a one-off sweep gets so that
it never writes under, or is archived as, published evidence. Imported by the sweep commands and by
``sweep.experiment``; it imports nothing of theirs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from lit_infoprompt.config import CONF_DIR
from lit_infoprompt.errors import InputError

EXPERIMENTS_DIR = CONF_DIR / "experiment"


def experiment_path(name: str, folder: Optional[Path] = None) -> Path:
    """``E=<name>`` (a file of the experiments folder) or a path to a yaml file."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return Path(folder or EXPERIMENTS_DIR) / f"{name}.yaml"


def declared_path(kind: str, name: str, folder: Optional[Path] = None) -> Path:
    """Where the experiment file of this kind and name would be: ``<folder>/[robustness/]<name>.yaml``."""
    return Path(folder or EXPERIMENTS_DIR) / ("robustness" if kind == "robustness" else "") / f"{name}.yaml"


def is_declared(kind: str, name: str, folder: Optional[Path] = None) -> bool:
    """Whether ``name`` is a declared experiment of this kind (a file of the experiments folder)."""
    return declared_path(kind, name, folder).is_file()


def adhoc_name(kind: str, name: Optional[str], default: str, declared_run: bool = False) -> str:
    """The folder name of a one-off ``compare``/``robustness``: its ``name=``, else ``default`` (``<task>-<split>``),
    which gets ``-adhoc`` where it is a declared experiment's name, so a trial never writes under (and is never
    archived as) published evidence. An explicit ``name=`` of a declared experiment is refused: ``make experiment``
    runs that one (``declared_run``: this is that call)."""
    if declared_run:
        return name or default
    if name is not None:
        if is_declared(kind, name):
            e = name if kind == "compare" else f"robustness/{name}"
            raise InputError(f"name={name} is the declared experiment {declared_path(kind, name)}: run it with make "
                             f"experiment E={e}, or give a one-off another name")
        return name
    return f"{default}-adhoc" if is_declared(kind, default) else default


