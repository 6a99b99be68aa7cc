"""Whether runs may be aggregated: the same experiment but for the method and seed, the same data per seed, and
the same code (the canonical identity, ``provenance.version_of``); and what the runs recorded of their code and
environment, for the summary.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from lit_infoprompt.analysis.arms import arm_of
from lit_infoprompt.analysis.runs import experiment_key
from lit_infoprompt.errors import InputError
from lit_infoprompt.provenance import describe, recorded, version_of


def recorded_version(run: dict) -> str:
    """The code a run recorded (its identity, or a legacy hash; a run resumed under other code is a version of its
    own): how a comparison lists it."""
    code = run["config"].get("code") or {}
    resumed = run["summary"].get("code_resumed_with")
    return recorded(code) + (f"+{recorded(resumed)}" if resumed else "")


def run_version(run: dict) -> str:
    """The canonical identity of a run's code (``provenance.version_of``): what decides whether runs may be
    aggregated."""
    version = version_of(run["config"].get("code") or {})
    resumed = run["summary"].get("code_resumed_with")
    return version + (f"+{version_of(resumed)}" if resumed and version_of(resumed) != version else "")


def code_versions(runs: List[dict]) -> Dict[str, dict]:
    """{recorded version: {"describe": ..., "runs": count}} of the runs, in first-seen order."""
    versions: Dict[str, dict] = {}
    for r in runs:
        code = r["config"].get("code") or {}
        entry = versions.setdefault(recorded_version(r), {"describe": describe(code), "runs": 0})
        entry["runs"] += 1
    return versions


def mixed_versions(runs: List[dict]) -> bool:
    return len({run_version(r) for r in runs}) > 1


def environments(runs: List[dict]) -> Optional[str]:
    """One line where the runs recorded different environments (library versions, device, precision, threads):
    'torch 2.13.0 (8 runs), 2.14.1 (2 runs); ...'; None where they agree or none was recorded."""
    recorded_envs = [r["summary"]["environment"] for r in runs if r["summary"].get("environment")]
    parts = []
    for key in sorted({k for env in recorded_envs for k in env}):
        counts: Dict[str, int] = {}
        for env in recorded_envs:
            counts[str(env.get(key))] = counts.get(str(env.get(key)), 0) + 1
        if len(counts) > 1:
            parts.append(f"{key} " + ", ".join(f"{v} ({n} runs)" for v, n in counts.items()))
    unrecorded = len(runs) - len(recorded_envs)
    if not parts:
        return None
    return "; ".join(parts) + (f"; {unrecorded} runs recorded none" if unrecorded else "")


def versions_text(versions: Dict[str, dict]) -> str:
    """'<commit> (clean), code <hash> (10 runs); ...' for summary.md and error messages."""
    return "; ".join(f"{v['describe']} ({v['runs']} runs)" for v in versions.values())


def code_lines(versions: Dict[str, dict], mixed: bool, differing: Optional[str]) -> List[str]:
    """The end of a summary.md: the code versions (marked when aggregated across identities) and, where the runs
    recorded different environments, one line saying how."""
    lines = ["", "Code: " + versions_text(versions)
             + (" — **mixed code versions, aggregated with allow_mixed_versions=true**" if mixed else "")]
    return lines + (["", f"Environments differ between the runs: {differing}."] if differing else [])


def check_comparable(runs: List[dict], may_differ: Sequence[str] = (), allow_mixed_versions: bool = False,
                     arm_keys: Sequence[str] = ()) -> None:
    """Runs may differ in method and seed only (and ``may_differ``; runs of different arms also in ``arm_keys``,
    the keys the arms override); within an arm (``arms.assign``, else a method) in nothing but the seed and
    ``may_differ``; each seed's runs used the same data; all were made by the same code unless
    ``allow_mixed_versions``."""
    versions = code_versions(runs)
    if mixed_versions(runs) and not allow_mixed_versions:
        raise InputError(f"the runs were made by {len(versions)} code versions ({versions_text(versions)}): rerun them with one "
                         f"version, or pass allow_mixed_versions=true to aggregate them anyway")
    same_experiment(runs, ("method", "seed", "code", *may_differ, *arm_keys))
    by_arm: Dict[str, List[dict]] = {}
    for r in runs:
        by_arm.setdefault(arm_of(r), []).append(r)
    for arm_runs in by_arm.values():
        same_experiment(arm_runs, ("seed", "code", *may_differ))
    by_seed: Dict[int, set] = {}
    for r in runs:
        by_seed.setdefault(r["summary"]["seed"], set()).add(r["summary"]["split_checksum"])
    mixed = [seed for seed, sums in by_seed.items() if len(sums) > 1]
    if mixed:
        raise InputError(f"runs of seed(s) {mixed} used different data (split checksums differ)")


def same_experiment(runs: List[dict], drop: Sequence[str]) -> None:
    """Every run's experiment key (less ``drop``) equals the first run's, else one line naming what differs."""
    reference = experiment_key(runs[0]["config"], drop=drop)
    for r in runs[1:]:
        key = experiment_key(r["config"], drop=drop)
        if key != reference:
            diff = sorted(k for k in set(key) | set(reference) if key.get(k) != reference.get(k))
            raise InputError(f"cannot compare {r['dir']} with {runs[0]['dir']}: they differ in {', '.join(diff)}")
