"""Checkpoint files that are whole or absent: written beside the target, then renamed over it.

A run killed while Lightning writes ``last.ckpt`` would otherwise leave a truncated file, and RESUME
would fail on the one checkpoint it needs. ``os.replace`` is atomic on one filesystem.
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
