"""The arms of a comparison: a method preset plus config overrides, under a name of its own (``compare
methods=[prompt_tuning,pt_lw=prompt_tuning+prompt.init=label_words]``).

A comparison's arms come as ``{name: {"method": preset, "overrides": ["key=value", ...], "match": {key: value}}}``
(``spec.json``'s ``"arms"``). ``match`` holds the arm's config value of every key that some arm of the same
preset overrides: an override arm's own values, and for a plain preset arm the preset's own values, so a plain arm
does not take the runs of its override arms. A run belongs to the arm whose preset is its saved config's
``method.name`` and whose ``match`` its saved config equals; never by its position. Without ``"arms"`` (older
specs), each name is a preset of its own and a run belongs to the arm named after its method.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from lit_infoprompt.analysis.runs import experiment_key
from lit_infoprompt.errors import InputError


def arm_of(run: dict) -> str:
    """The arm a run was assigned to (``assign``), or its method where it was not."""
    return run.get("arm") or run["summary"]["method"]


def complete(methods: Sequence[str], arms: Optional[Dict[str, dict]]) -> Dict[str, dict]:
    """Every arm of ``methods``; an arm missing from ``arms`` is the preset of its name, without overrides."""
    arms = arms or {}
    return {m: {"method": m, "overrides": [], "match": {}, **arms.get(m, {})} for m in methods}


def arm_keys(arms: Dict[str, dict]) -> List[str]:
    """The config keys some arm is told apart by: they may differ between arms (``comparable``)."""
    return sorted({k for arm in arms.values() for k in arm.get("match", {})})


def assign(runs: List[dict], methods: Sequence[str], arms: Optional[Dict[str, dict]] = None) -> None:
    """Sets each run's ``"arm"`` from its saved config; a run that matches no arm, or more than one, is an error."""
    arms = complete(methods, arms)
    for run in runs:
        preset = run["config"]["method"]["name"]
        flat = experiment_key(run["config"])
        found = [name for name, arm in arms.items()
                 if arm["method"] == preset and all(flat.get(k) == v for k, v in arm.get("match", {}).items())]
        if len(found) != 1:
            keys = sorted({k for a in arms.values() if a["method"] == preset for k in a.get("match", {})})
            has = "".join(f", {k}={flat.get(k)!r}" for k in keys)
            which = f"arms {' and '.join(found)}" if found else f"no arm of {', '.join(methods)}"
            raise InputError(f"the run {run['dir']} (method {preset}{has}) matches {which}")
        run["arm"] = found[0]


def described(arms: Optional[Dict[str, dict]]) -> bool:
    """Whether the arms say more than their names: some arm has overrides or is named other than its preset."""
    return any(arm["overrides"] or arm["method"] != name for name, arm in (arms or {}).items())


def value_text(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def describe_arms(methods: Sequence[str], arms: Optional[Dict[str, dict]]) -> List[str]:
    """summary.md's paragraph on what each arm is, once (empty where every arm is a preset under its own name)."""
    if not described(arms):
        return []
    arms = complete(methods, arms)
    parts = []
    for name in methods:
        arm = arms[name]
        if arm["overrides"]:
            what = f"`{arm['method']}` with {', '.join(arm['overrides'])}"
        else:  # the preset's own values of what its other arms override
            own = ", ".join(f"{k}={value_text(v)}" for k, v in arm["match"].items())
            what = ("the preset itself" if arm["method"] == name else f"`{arm['method']}`") + (f" ({own})" if own else "")
        parts.append(f"`{name}` = {what}")
    return ["Arms (a method preset and the config overrides it runs with; each run belongs to the arm its saved "
            "config matches): " + "; ".join(parts) + "."]
