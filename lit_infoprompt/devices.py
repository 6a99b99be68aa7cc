"""Where a run's processes go: the GPUs here, whether a ``trainer.accelerator`` puts a run on CUDA, and how many
processes its trainer settings start. The one place the project asks for GPUs: through torch where a run is
about to start (``gpu_count``, ``uses_cuda``), through nvidia-smi where torch must not be imported (a plan:
``gpu_names``, ``planned_on_gpu``). Importable without torch; torch is asked only when the answer needs it."""

from __future__ import annotations

from typing import List

from omegaconf import OmegaConf


GPU_ACCELERATORS = ("auto", "gpu", "cuda")  # the trainer.accelerator values that run on CUDA where a GPU is visible


def gpu_count() -> int:
    """The CUDA devices torch sees here (0 without one)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpu_names() -> List[str]:
    """The GPUs nvidia-smi lists here (none without nvidia-smi), without importing torch."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def planned_on_gpu(accelerator: str) -> bool:
    """Whether a run with this ``trainer.accelerator`` would train on a GPU, without importing torch: asked for one,
    or ``auto`` where nvidia-smi lists one."""
    accelerator = str(accelerator).lower()
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and bool(gpu_names()))


def uses_cuda(accelerator: str) -> bool:
    """Whether Lightning puts a run with this ``trainer.accelerator`` on a CUDA device here."""
    if str(accelerator).lower() not in GPU_ACCELERATORS:
        return False
    import torch

    return torch.cuda.is_available()


def processes(config) -> int:
    """How many training processes the trainer settings start: devices per node x nodes (``auto`` or -1: every
    visible GPU, or 1 on CPU)."""
    devices = config.trainer.devices
    if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices):
        count = len(devices)
    elif str(devices).strip() in ("auto", "-1"):
        count = gpu_count() if uses_cuda(config.trainer.accelerator) else 1
    elif "," in str(devices):
        count = len([d for d in str(devices).split(",") if d.strip()])
    else:
        count = int(devices)
    return max(1, count) * max(1, config.trainer.num_nodes)
