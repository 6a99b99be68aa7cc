"""DevCurve: one row per dev evaluation into ``curve.csv`` and the loggers.

A row holds the optimiser step, examples seen (all processes), wall-clock seconds of training, the dev
metrics, the mean of each training loss term since the previous evaluation and the estimator diagnostics of
that interval (``diag/*``: MI estimates in nats, KL per latent dimension, active dimensions, mean sigma). Its state travels in the
checkpoint, so a resumed run continues the same curve and clock.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Dict, List, Optional

import lightning as L
import numpy as np
import torch

from lit_infoprompt.model.bottleneck import diagnostics_row


class DevCurve(L.Callback):
    def __init__(self, path: Path, batch_size: int):
        self.path = Path(path)
        self.batch_size = batch_size  # per process
        self.rows: List[Dict[str, float]] = []
        self.elapsed = 0.0  # training seconds before the current session (resume)
        self.started: Optional[float] = None
        self.sums: Dict[str, torch.Tensor] = {}
        self.diag_sums: Dict[str, torch.Tensor] = {}
        self.count = 0
        self.restored: Optional[dict] = None

    def on_fit_start(self, trainer, pl_module):
        if self.restored is not None:  # resuming: continue the saved curve and clock
            self.rows, self.elapsed = list(self.restored["rows"]), self.restored["elapsed"]
            self.restored = None
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return self.elapsed + (time.perf_counter() - self.started if self.started else 0.0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for name, value in pl_module.last_terms.items():  # tensors: no host sync per step
            self.sums[name] = self.sums.get(name, 0) + value
        for name, value in pl_module.last_diagnostics.items():
            self.diag_sums[name] = self.diag_sums.get(name, 0) + value
        self.count += 1

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        row = {"step": step, "examples": step * self.batch_size * trainer.world_size, "seconds": self.seconds()}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")})
        means = {k: v / self.count for k, v in self.sums.items()}
        diag_means = {k: v / self.count for k, v in self.diag_sums.items()} if self.count else {}
        if trainer.world_size > 1:  # each process saw its share of every batch: the mean over processes
            means = {k: trainer.strategy.reduce(v, reduce_op="mean") for k, v in means.items()}
            diag_means = {k: trainer.strategy.reduce(v, reduce_op="mean") for k, v in diag_means.items()}
        row.update({f"train/{k}": float(v) for k, v in means.items()})
        diagnostics = diagnostics_row(diag_means) if diag_means else {}
        row.update(diagnostics)
        self.sums, self.diag_sums, self.count = {}, {}, 0
        self.rows.append(row)
        for logger in trainer.loggers:
            logger.log_metrics({"curve/examples": row["examples"], "curve/seconds": row["seconds"], **diagnostics},
                               step=step)
        if trainer.is_global_zero:
            self.write()

    def write(self):
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)

    def state_dict(self) -> dict:
        return {"rows": [dict(row) for row in self.rows], "elapsed": self.seconds()}

    def load_state_dict(self, state: dict) -> None:
        # Lightning also restores callback state when test() loads best.ckpt; that must not roll the curve
        # back to the best step, so the state is only applied when a fit (a resume) starts.
        self.restored = state


class RngState(L.Callback):
    """The random number generators travel with every checkpoint (Lightning does not save them, and ``build``
    reseeds on every start): torch (CPU and CUDA), numpy and Python's ``random``. A resumed fit puts them back
    right before its first training step, the point the checkpoint was taken at (after a dev evaluation,
    before the next step), so the bottleneck's noise and the prompt-free negatives continue the interrupted
    run's stream and a resumed run equals an uninterrupted one."""

    def __init__(self):
        self.restored: Optional[dict] = None

    def state_dict(self) -> dict:
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": self._numpy_state(), "python": random.getstate()}

    @staticmethod
    def _numpy_state() -> list:
        # as tensors and plain numbers, so Lightning's weights-only checkpoint loading accepts it
        name, keys, position, has_gauss, cached = np.random.get_state()
        return [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)]

    def load_state_dict(self, state: dict) -> None:
        self.restored = state  # also called when test() loads best.ckpt: applied only by a fit's next step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.restored is None:
            return
        state, self.restored = self.restored, None
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(state["python"])
