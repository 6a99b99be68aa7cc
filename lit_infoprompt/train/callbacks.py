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
import warnings
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
    reseeds on every start): torch's (CPU, and the process's own CUDA device), numpy's and Python's ``random``, one
    set per process (gathered into rank 0's checkpoint when it is saved, at an evaluation). A resumed fit puts
    each process's own set back right before its first training step, the point the checkpoint was taken at (after
    a dev evaluation, before the next step), so the bottleneck's noise and the prompt-free negatives continue the
    interrupted run's stream and a resumed run equals an uninterrupted one.

    Under DDP every process starts from the same seed (``build``: the prompt and heads must be equal), so a fresh
    fit reseeds torch with ``seed + rank`` on rank > 0: each process draws its own bottleneck noise (the data
    order is a function of the step, not of these generators). One process keeps its stream unchanged."""

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self.restored: Optional[dict] = None
        self.trainer = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.trainer = trainer

    def on_fit_start(self, trainer, pl_module):
        if self.restored is None and self.seed is not None and trainer.global_rank > 0:
            torch.manual_seed(self.seed + trainer.global_rank)

    def _own_state(self) -> dict:
        device = self._cuda_device()
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device is not None else None,
                "numpy": self._numpy_state(), "python": random.getstate()}

    def _cuda_device(self):
        module = getattr(self.trainer, "lightning_module", None) if self.trainer is not None else None
        device = getattr(module, "device", None)
        return device if device is not None and device.type == "cuda" else None

    def state_dict(self) -> dict:
        own = self._own_state()
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1 or not torch.distributed.is_initialized():
            return {"ranks": [own]}
        states = [None] * trainer.world_size  # every process saves (Lightning writes rank 0's file)
        torch.distributed.all_gather_object(states, own)
        return {"ranks": states}

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
        saved, self.restored = self.restored, None
        ranks = saved.get("ranks") or [saved]  # runs saved before per-process states: one set, rank 0's
        if trainer.global_rank >= len(ranks):
            warnings.warn(f"the checkpoint holds the random state of {len(ranks)} processes, not of process "
                           f"{trainer.global_rank}: it continues from a fresh seed")
            torch.manual_seed((self.seed or 0) + trainer.global_rank)
            return
        state = ranks[trainer.global_rank]
        torch.set_rng_state(state["torch"])
        device = self._cuda_device()
        cuda = state.get("cuda")
        if isinstance(cuda, list):  # saved before: every visible GPU's state, rank 0's process
            cuda = cuda[device.index] if device is not None and device.index < len(cuda) else None
        if cuda is not None and device is not None:
            torch.cuda.set_rng_state(cuda, device)
        name, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(state["python"])
