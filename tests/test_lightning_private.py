"""Lightning's private API: the installed Lightning still has what train/lightning_private.py uses, with the
signature it uses, and no other module of the package touches a private Lightning name. A Lightning upgrade that
renames one fails here, not silently in a run (issue 41)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import lightning as L
import pytest
import torch
from packaging.version import Version

from lit_infoprompt.train import lightning_private
from lit_infoprompt.train.lightning_private import (SIGTERM_CHECK, SIGTERM_CHECK_SINCE, replace_sigterm_check,
                                                    sigterm_check)
from lit_infoprompt.train.ranks import throttle_sigterm_check

PACKAGE = Path(lightning_private.__file__).resolve().parents[1]
PRIVATE_MODULE = Path(lightning_private.__file__).resolve()


@pytest.fixture
def trainer(tmp_path):
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))


def test_the_training_loop_still_has_the_sigterm_check_and_calls_it_through_the_instance(trainer):
    loop = trainer.fit_loop.epoch_loop
    advance = inspect.getsource(type(loop).advance)
    if Version(L.__version__) < Version(SIGTERM_CHECK_SINCE):  # no per-step check before 2.5: nothing to throttle
        assert "sigterm" not in advance.lower()
        return
    method = getattr(type(loop), SIGTERM_CHECK, None)
    assert callable(method), f"lightning {L.__version__}: _TrainingEpochLoop has no {SIGTERM_CHECK}: see " \
                             f"lit_infoprompt/train/lightning_private.py and find what replaced it"
    assert list(inspect.signature(method).parameters) == ["self"]  # called with no arguments
    # the loop looks the check up on itself each step, so the instance attribute set here replaces it
    assert f"self.{SIGTERM_CHECK}()" in advance
    assert sigterm_check(trainer) == getattr(loop, SIGTERM_CHECK)


def test_the_throttled_check_replaces_lightning_s_on_one_trainer_only(trainer, tmp_path, monkeypatch):
    other = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    calls, step = [], [0]
    replace_sigterm_check(trainer, lambda: calls.append(step[0]))  # stands for Lightning's broadcast
    throttle_sigterm_check(trainer, every=4)
    monkeypatch.setattr(L.Trainer, "global_step", property(lambda self: step[0]))
    for step[0] in range(10):
        getattr(trainer.fit_loop.epoch_loop, SIGTERM_CHECK)()  # as the loop calls it
    assert calls == [0, 4, 8]
    assert SIGTERM_CHECK not in vars(other.fit_loop.epoch_loop)  # another trainer keeps Lightning's own


def test_a_missing_sigterm_check_is_said_not_silent(trainer, monkeypatch, caplog):
    monkeypatch.setattr(L, "__version__", "99.0.0")
    monkeypatch.setattr(type(trainer.fit_loop.epoch_loop), SIGTERM_CHECK, None, raising=False)
    with caplog.at_level("WARNING", logger=lightning_private.__name__):
        assert sigterm_check(trainer) is None
    assert SIGTERM_CHECK in caplog.text


def test_model_checkpoint_s_record_round_trips_through_its_state_api(tmp_path):
    # runner.final_evaluation records a best checkpoint saved outside fit this way (public, as a restore does)
    from lightning.pytorch.callbacks import ModelCheckpoint

    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/acc", mode="max", save_top_k=1)
    before = checkpoint.state_dict()
    path = str(tmp_path / "best.ckpt")
    checkpoint.load_state_dict({**before, "best_model_path": path, "best_model_score": 0.75})
    assert (checkpoint.best_model_path, checkpoint.best_model_score) == (path, 0.75)
    after = checkpoint.state_dict()
    assert (after["best_model_path"], after["best_model_score"]) == (path, 0.75)
    assert {k: v for k, v in after.items() if not k.startswith("best_model")} == \
           {k: v for k, v in before.items() if not k.startswith("best_model")}


def lightning_private_names(tmp_path) -> set:
    """Private names (one leading underscore) of the Lightning objects the package works with: trainer, loops,
    strategy, module, datamodule, callbacks, checkpoint IO, loggers, cluster environments; less torch's own."""
    from lightning.fabric.plugins import TorchCheckpointIO
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment
    from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.strategies import DDPStrategy

    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    objects = [trainer, trainer.fit_loop, trainer.fit_loop.epoch_loop, trainer.strategy, trainer.precision_plugin,
               L.LightningModule(), L.LightningDataModule(), L.Callback(), ModelCheckpoint(dirpath=tmp_path),
               ProgressBar(), TorchCheckpointIO(), CSVLogger(str(tmp_path)), DDPStrategy, LightningEnvironment(),
               SLURMEnvironment, TorchElasticEnvironment]
    names = set()
    for obj in objects:
        names |= {n for n in [*dir(obj), *getattr(obj, "__dict__", {})] if n.startswith("_") and not n.startswith("__")}
    return names - set(dir(torch.nn.Module())) - set(vars(torch.nn.Module()))


def test_no_module_but_lightning_private_uses_a_private_lightning_name(tmp_path):
    names = lightning_private_names(tmp_path)
    assert SIGTERM_CHECK in names  # the scan sees the one the package does use
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.resolve() == PRIVATE_MODULE:
            continue
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                    "lightning", "pytorch_lightning", "lightning_fabric"):
                if any(part.startswith("_") for part in node.module.split(".")) or \
                        any(alias.name.startswith("_") for alias in node.names):
                    found.append(f"{where}:{node.lineno} from {node.module} import ...")
            elif isinstance(node, ast.Import):
                found += [f"{where}:{node.lineno} import {alias.name}" for alias in node.names
                          if alias.name.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric")
                          and any(part.startswith("_") for part in alias.name.split("."))]
            elif isinstance(node, ast.Attribute) and node.attr in names:
                found.append(f"{where}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{where}:{node.lineno} {node.value!r}")  # getattr(obj, "_name")
            elif isinstance(node, ast.ClassDef):  # a method overriding a private one of a Lightning base class
                found += [f"{where}:{item.lineno} def {item.name}" for item in node.body
                          if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in names]
    assert not found, ("private Lightning names outside lit_infoprompt/train/lightning_private.py (use public API, or "
                       "move the use there, say why in its docstring and check it in this file): " + ", ".join(found))
