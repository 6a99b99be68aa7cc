"""What a run shows on the console: one progress bar over optimiser steps, and one table at the end.

Dependencies print things a researcher cannot act on (a promotion for another logging product, a deprecation
inside Lightning, which accelerators exist, a model summary). ``quiet_dependencies`` drops exactly those
messages when a run starts: each filter names the message it drops, on the logger that emits it, so every other
warning (the project's own, and any new one from a dependency) still shows. The full record of a run stays in
its ``summary.json``; this module only decides what is printed.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ProgressBar

from lit_infoprompt.train.preflight import take_quiet_flag  # noqa: F401 - read here before: kept importable

# (logger, message pattern): informational lines of Lightning's that a run prints at every start.
DROPPED_LOG_LINES = (
    ("lightning.pytorch.utilities.rank_zero", r"💡 Tip: "),  # litlogger / litmodels promotions
    ("lightning.pytorch.utilities.rank_zero", r"(GPU|TPU|HPU) available: "),  # which accelerators exist
    ("lightning.pytorch.utilities.rank_zero", r"`Trainer.fit` stopped: `max_steps="),  # the bar shows it
    ("lightning.pytorch.utilities.rank_zero", r"(Restoring states from|Loaded model weights from) the checkpoint"),
    # Ctrl-C: the run says itself what it kept (train.runner.run), in one line
    ("lightning.pytorch.utilities.rank_zero", r"\s*Detected KeyboardInterrupt, attempting graceful shutdown"),
    ("lightning.fabric.utilities.rank_zero", r"💡 Tip: "),
    ("lightning.fabric.utilities.rank_zero", r"(GPU|TPU|HPU) available: "),
    ("lightning.pytorch.accelerators.cuda", r"LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES"),
    # Trainer.save_checkpoint's default (a full checkpoint, which is what the last step's best.ckpt must be)
    ("lightning.pytorch.trainer.connectors.checkpoint_connector", r"`weights_only` was not set, defaulting to `False`"),
)
# Deprecations raised inside a dependency by its own code, not by anything a user of this project wrote.
DROPPED_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # torch's pytree, from lightning.pytorch.utilities._pytree
)


class _DropLines(logging.Filter):
    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(str(record.getMessage()))


def quiet_dependencies() -> None:
    """Install the filters above (idempotent: a sweep calls it once per run)."""
    for name, pattern in DROPPED_LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(_DropLines(pattern))
    for pattern in DROPPED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


class StepBar(ProgressBar):
    """One bar over the optimiser steps of the whole run (``max_steps``), with the dev metric of the last
    evaluation and its step; evaluation and test loops draw nothing. On rank 0 only."""

    def __init__(self, metric: str, stream=None):
        super().__init__()
        self.metric = metric  # e.g. "val/acc"
        self.stream = stream
        self.enabled = True
        self.bar = None
        self.postfix = ""

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    @property
    def is_enabled(self) -> bool:
        return self.enabled

    def _show(self, trainer) -> bool:
        return self.enabled and trainer.is_global_zero

    def on_train_start(self, trainer, pl_module):
        if not self._show(trainer):
            return
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.max_steps, initial=trainer.global_step, desc="train", unit="step",
                        dynamic_ncols=True, file=self.stream or sys.stderr, leave=True,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| step {n_fmt}/{total_fmt} "
                                   "[{elapsed}<{remaining}, {rate_fmt}]{postfix}")
        if self.postfix:
            self.bar.set_postfix_str(self.postfix, refresh=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.bar is not None and trainer.global_step > self.bar.n:
            self.bar.update(trainer.global_step - self.bar.n)

    def on_validation_end(self, trainer, pl_module):
        if not self._show(trainer) or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            return
        self.postfix = f"dev {self.metric.removeprefix('val/')} {float(value):.4f} @ step {trainer.global_step}"
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix)

    # The bar stays open after fit: the run's last evaluation (when max_steps is not a multiple of val_every, e.g.
    # val_every > max_steps) comes after it, and the bar must not end on an older step's score. It closes when
    # the test starts, or when the trainer is torn down.
    def on_test_start(self, trainer, pl_module):
        self._close()

    def teardown(self, trainer, pl_module, stage):
        if stage != "fit":
            self._close()

    def on_exception(self, trainer, pl_module, exception):
        self._close()  # Ctrl-C or a failure: the line that says what was kept starts on a line of its own

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _split(summary: dict) -> str:
    if summary.get("protocol") == "per_class":
        text = f"{summary['shots']} per class"
    elif summary.get("protocol") == "budget":
        text = f"budget {summary['split_size']}"
    else:
        text = str(summary.get("protocol"))
    sizes = summary.get("sizes") or {}
    if sizes:
        text += f" (train {sizes['train']}, dev {sizes['dev']}, test {sizes['test']})"
    return text


def _tests(summary: dict, prefix: str) -> str:
    """The test metrics of a summary, ``<prefix><name> <score>`` each."""
    return "  ".join(f"{prefix}{key.removeprefix('test_')} {value:.4f}" for key, value in summary.items()
                     if key.startswith("test_") and isinstance(value, (int, float)))


def result_line(summary: dict) -> str:
    """The one line a script reads (``-q``): the test metrics, the best dev score and the run directory."""
    tests = _tests(summary, "test_")
    fallback = (f"  backbone {Path(str(summary['backbone'])).name} (a fallback: summary.json's backbone_notice)"
                if summary.get("backbone_notice") else "")
    return (f"{tests}  best dev {summary['dev_metric']} {summary['best_dev']:.4f} at step {summary['best_step']}"
            f"{fallback}  -> {summary['run_dir']}")


def end_table(summary: dict) -> str:
    """The compact end-of-run table (the whole record is the run's summary.json)."""
    tests = _tests(summary, "")
    rows = [
        ("task", f"{summary['task']}, {_split(summary)}"),
        ("method", f"{summary['method']}, seed {summary['seed']}"),
        ("backbone", Path(str(summary["backbone"])).name),
        ("best dev", f"{summary['dev_metric']} {summary['best_dev']:.4f} at step {summary['best_step']} of "
                     f"{summary['steps']}"),
        ("test", f"{tests}  (best-dev checkpoint)"),
        ("seconds", f"{summary['seconds']:.1f}"),
        ("run dir", f"{summary['run_dir']}  (summary.json, curve.csv)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
