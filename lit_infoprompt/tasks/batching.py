"""Which rows go into which batch: training batches as a function of the optimiser step, evaluation
shards without padding.

Training reads an endless stream of seeded permutations of the train rows; the global batch of step t
is the stream's slice [t*G, (t+1)*G) and rank r of W takes the r-th of its W equal parts. So the data a
step sees depends only on (seed, t, G): a run resumed at step t, or run on W processes, sees exactly
the global batches of an uninterrupted single-process run.
"""

from __future__ import annotations

from typing import Iterator, List

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[List[int]]):
    def __init__(self, num_rows: int, batch_size: int, max_steps: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.num_rows = num_rows
        self.batch_size = batch_size  # per process
        self.global_batch = batch_size * world_size
        self.max_steps = max_steps
        self.seed = seed
        self.start_step = start_step
        self.rank = rank
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.num_rows, generator=generator)
        return self._perm

    def global_batch_at(self, step: int) -> List[int]:
        positions = range(step * self.global_batch, (step + 1) * self.global_batch)
        return [int(self._permutation(p // self.num_rows)[p % self.num_rows]) for p in positions]

    def __iter__(self) -> Iterator[List[int]]:
        for step in range(self.start_step, self.max_steps):
            rows = self.global_batch_at(step)
            yield rows[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __len__(self) -> int:
        # The whole run is one epoch of max_steps batches, also when resuming: Lightning restores its position in
        # the epoch (start_step batches done) and counts on from there, so a shorter length would end the epoch
        # early and restart the iterator at start_step for the last start_step steps.
        return self.max_steps


def eval_shard(num_rows: int, rank: int, world_size: int) -> List[int]:
    """Every world_size-th row from ``rank``: shards are disjoint, cover every row once, never padded."""
    return list(range(rank, num_rows, world_size))
