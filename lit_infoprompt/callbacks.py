"""DevCurve: one row per dev evaluation (step, examples seen, seconds, dev metrics) into ``curve.csv``.

It also remembers the best row by the task's dev metric (the first of equal scores wins, as in
``ModelCheckpoint`` with mode=max), which the summary reports.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Dict, List, Optional

import lightning as L


class DevCurve(L.Callback):
    def __init__(self, path: Path, metric: str, batch_size: int):
        self.path = Path(path)
        self.metric = metric  # e.g. "val/acc"
        self.batch_size = batch_size
        self.rows: List[Dict[str, float]] = []
        self.started: Optional[float] = None

    @property
    def best(self) -> Optional[Dict[str, float]]:
        best = None
        for row in self.rows:
            if best is None or row[self.metric] > best[self.metric]:
                best = row
        return best

    def on_fit_start(self, trainer, pl_module):
        self.started = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        row = {"step": step, "examples": step * self.batch_size * trainer.world_size,
               "seconds": time.perf_counter() - self.started if self.started else 0.0}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")})
        self.rows.append(row)
        if trainer.is_global_zero:
            self._write()

    def _write(self):
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
