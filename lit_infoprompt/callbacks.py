"""DevCurve: one row per dev evaluation into ``curve.csv`` and the loggers.

A row holds the optimiser step, examples seen (all processes), wall-clock seconds of training, the dev
metrics and the mean of each training loss term since the previous evaluation. Its state travels in the
checkpoint, so a resumed run continues the same curve and clock.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Dict, List, Optional

import lightning as L
import torch


class DevCurve(L.Callback):
    def __init__(self, path: Path, batch_size: int):
        self.path = Path(path)
        self.batch_size = batch_size  # per process
        self.rows: List[Dict[str, float]] = []
        self.elapsed = 0.0  # training seconds before the current session (resume)
        self.started: Optional[float] = None
        self.sums: Dict[str, torch.Tensor] = {}
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
        self.count += 1

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        row = {"step": step, "examples": step * self.batch_size * trainer.world_size, "seconds": self.seconds()}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")})
        row.update({f"train/{k}": float(v) / self.count for k, v in self.sums.items()})
        self.sums, self.count = {}, 0
        self.rows.append(row)
        for logger in trainer.loggers:
            logger.log_metrics({"curve/examples": row["examples"], "curve/seconds": row["seconds"]}, step=step)
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
