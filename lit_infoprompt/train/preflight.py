"""A command's inputs, checked before torch is imported: a bad value answers at once, not after the seconds that
importing torch, Lightning and transformers takes.

``load_config`` (the keys, values, task and method preset) imports no torch; this module adds what a run would
otherwise find only once it loads: a ``model.name`` written as a path that is no folder, the task's files under a
given ``data.dir``, and the run folder ``resume=`` names. Each raises the one-line ``InputError`` the run itself
would raise, from the same function (``hub.check_model_name``, ``tasks.sources.resolve_files``), so the message is
the same whichever finds it first. Nothing here imports torch: ``tests/test_cli_answers.py`` runs each kind of bad
input in a fresh process and checks that torch was not imported when the error line came.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from lit_infoprompt.config import Config, load_saved
from lit_infoprompt.errors import InputError

QUIET_FLAGS = ("-q", "--quiet")


def take_quiet_flag(args: list) -> Tuple[List[str], bool]:
    """(the arguments without ``-q``/``--quiet``, whether it was given)."""
    quiet = any(a in QUIET_FLAGS for a in args)
    return [a for a in args if a not in QUIET_FLAGS], quiet


def check_model(config: Config) -> None:
    """A ``model.name`` written as a path must be a folder here (a hub id is looked up when the run loads it)."""
    from lit_infoprompt.hub import check_model_name

    check_model_name(str(config.model.name))


def check_data(config: Config) -> None:
    """With ``data.dir`` given, the task's files must be there (nothing is downloaded then). Without it a run reads
    the download cache and may download: that is decided when the run starts."""
    if config.data.dir is None:
        return
    from lit_infoprompt.tasks.sources import resolve_files

    resolve_files(config.task, config.data)


def saved_run_config(run_dir: Path) -> Config:
    """A run directory's saved config (``config.yaml``) on today's schema, with ``resume`` set to the folder."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise InputError(f"cannot resume {run_dir}: no config.yaml (not a run directory)")
    config = load_saved(path)
    config.resume = str(run_dir)
    return config


def resumable_config(run_dir: Path) -> Config:
    """The saved config of an unfinished run that has a checkpoint to continue from; one error line otherwise.
    (Whether its data changed since is checked once the data is read: ``train.runner.check_resumable``.)"""
    if not run_dir.is_dir():
        raise InputError(f"cannot resume {run_dir}: no such folder")
    config = saved_run_config(run_dir)
    if (run_dir / "summary.json").is_file():
        raise InputError(f"cannot resume {run_dir}: it has finished (summary.json exists)")
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise InputError(f"cannot resume {run_dir}: no checkpoints/last.ckpt yet (it stopped before its first "
                         f"dev evaluation); start it again instead")
    return config


def check_run(config: Config) -> Config:
    """``train``'s inputs, before torch: the run folder to resume (its saved config is then the one checked), the
    model folder and the data files. Returns the config the run will use."""
    if config.resume:
        config = resumable_config(Path(config.resume))
    check_model(config)
    check_data(config)
    return config
