"""Where a run's processes go: whether its ``trainer.accelerator`` puts it on CUDA here, and how many processes its
trainer settings start. (Importable without torch; torch is asked only when the answer needs it.)"""

from __future__ import annotations

from omegaconf import OmegaConf


GPU_ACCELERATORS = ("auto", "gpu", "cuda")  # the trainer.accelerator values that run on CUDA where a GPU is visible


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
        import torch

        count = torch.cuda.device_count() if uses_cuda(config.trainer.accelerator) else 1
    elif "," in str(devices):
        count = len([d for d in str(devices).split(",") if d.strip()])
    else:
        count = int(devices)
    return max(1, count) * max(1, config.trainer.num_nodes)
