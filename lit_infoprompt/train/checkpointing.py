"""Checkpoint files that are whole or absent: written beside the target, then renamed over it; read onto the CPU.

A run killed while Lightning writes ``last.ckpt`` would otherwise leave a truncated file, and RESUME
would fail on the one checkpoint it needs. ``os.replace`` is atomic on one filesystem. Lightning's default load
puts every tensor back on the device it was saved from (cuda:0, rank 0's), so every process of a resumed DDP run
would load onto the first GPU; read onto the CPU, each process moves the state to its own device.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        super().save_checkpoint(checkpoint, partial, storage_options)
        os.replace(partial, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return super().load_checkpoint(path, map_location="cpu", weights_only=weights_only)
