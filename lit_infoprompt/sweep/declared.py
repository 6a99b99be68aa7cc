"""The name a one-off sweep gets, so that it never writes under, or is archived as, published evidence (a declared
experiment: a file of ``conf/experiment/``, ``lit_infoprompt.experiment.is_declared``)."""

from __future__ import annotations

from typing import Optional

from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import declared_path, is_declared

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


