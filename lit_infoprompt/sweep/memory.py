"""How much GPU memory one training worker needs: an estimate from the backbone's shape, for sizing WORKERS per GPU.

Pure Python (no torch), so a sweep can call it before it starts any worker. A worker holds

* the frozen weights: 4 bytes per parameter (``model.dtype=float32``), 2 (``bfloat16``);
* under ``trainer.precision=bf16-mixed`` with float32 weights, autocast's bf16 copy of every encoder weight matrix,
  kept for the backward pass (autocast caches casts only of tensors that require grad; frozen weights are cast
  again per op, and each copy stays alive in the graph until backward): 2 more bytes per encoder parameter;
* the activations saved for backward: the prompt needs the gradient through every layer, so every layer keeps
  its inputs although no weight is trained. Per token and layer about ``3 h + 2 i`` elements (h: hidden width,
  i: feed-forward width), 4 bytes each in float32, 2 with bf16 weights, about 2.5 under bf16-mixed (bf16 matmul
  inputs, float32 LayerNorm inputs). Counted with saved-tensor hooks over a training step of one roberta-large
  layer on CPU: 45.3 KB (fp32), 28.7 KB (bf16-mixed) and 22.7 KB (bf16 weights) per token, linear in the tokens;
* the backward pass's transient buffers and the allocator's rounding (``MARGIN``), and, outside torch's
  allocator, the CUDA context and library workspaces (``CONTEXT_GIB``).

Tokens per example: the padded width, at worst ``model.max_length`` plus the prompt (a batch is padded to its
longest example). ``acceptance/gpu_check.py`` measures the real peaks (``memory`` section) next to this estimate,
so the constants can be checked on each GPU; docs/benchmarks.md has the table.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

GIB = 2**30
MODES = {  # name -> (trainer.precision, model.dtype)
    "fp32": ("32-true", "float32"),
    "bf16-mixed": ("bf16-mixed", "float32"),
    "bf16-weights": ("32-true", "bfloat16"),
}
SAVED_ELEMENTS = (3.0, 2.0)  # saved for backward per token and layer: 3 h + 2 i elements
ACTIVATION_BYTES = {"fp32": 4.0, "bf16-mixed": 2.5, "bf16-weights": 2.0}
WEIGHT_BYTES = {"fp32": 4, "bf16-mixed": 4, "bf16-weights": 2}
CAST_BYTES = {"fp32": 0, "bf16-mixed": 2, "bf16-weights": 0}  # autocast's saved bf16 copies of encoder weights
MARGIN = 1.15  # backward's transient buffers, allocator rounding
CONTEXT_GIB = 0.6  # CUDA context, cuBLAS/cuDNN workspaces: per process, outside torch's allocator
RESERVE_GIB = 1.0  # left free on the GPU when counting how many workers fit

SHAPES = {  # name -> HF config keys that matter here
    "roberta-large": {"num_hidden_layers": 24, "hidden_size": 1024, "intermediate_size": 4096, "vocab_size": 50265,
                      "max_position_embeddings": 514},
    "roberta-base": {"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072, "vocab_size": 50265,
                     "max_position_embeddings": 514},
    "all-MiniLM-L6-v2": {"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536, "vocab_size": 30522,
                         "max_position_embeddings": 512},
}


def mode_of(precision: str, dtype: str) -> str:
    """The memory mode of a run's ``trainer.precision`` and ``model.dtype`` (bf16 weights win: with them autocast
    has nothing to cast)."""
    if str(dtype) == "bfloat16":
        return "bf16-weights"
    return "bf16-mixed" if str(precision).startswith("bf16") else "fp32"


def encoder_params(shape: Mapping) -> int:
    """Parameters of the transformer layers (the matrices autocast casts)."""
    h, i = shape["hidden_size"], shape["intermediate_size"]
    per_layer = 4 * h * h + 4 * h + 2 * h * i + h + i + 4 * h  # q, k, v, o; feed-forward; two LayerNorms
    return shape["num_hidden_layers"] * per_layer


def total_params(shape: Mapping) -> int:
    """Embeddings (words, positions, types), layers and an MLM transform (dense + LayerNorm + decoder bias)."""
    h = shape["hidden_size"]
    embeddings = (shape["vocab_size"] + shape.get("max_position_embeddings", 512) + 2) * h + 2 * h
    head = h * h + 3 * h + shape["vocab_size"]
    return embeddings + encoder_params(shape) + head


def estimate(shape: Mapping, batch: int, tokens: int, mode: str, params: Optional[int] = None) -> dict:
    """GiB of one worker training ``batch`` examples of ``tokens`` tokens (prompt included) in ``mode``:
    weights, autocast copies, saved activations, the allocator's peak and the whole process (context too)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    params = total_params(shape) if params is None else params
    weights = params * WEIGHT_BYTES[mode]
    casts = encoder_params(shape) * CAST_BYTES[mode]
    per_token = (SAVED_ELEMENTS[0] * shape["hidden_size"] + SAVED_ELEMENTS[1] * shape["intermediate_size"])
    activations = shape["num_hidden_layers"] * batch * tokens * per_token * ACTIVATION_BYTES[mode]
    peak = (weights + casts + activations) * MARGIN
    return {"weights_gib": weights / GIB, "casts_gib": casts / GIB, "activations_gib": activations / GIB,
            "peak_gib": peak / GIB, "worker_gib": peak / GIB + CONTEXT_GIB}


def workers_that_fit(worker_gib: float, gpu_gib: float, reserve_gib: float = RESERVE_GIB) -> int:
    return max(0, math.floor((gpu_gib - reserve_gib) / worker_gib))


def workers_warning(shape: Mapping, batch: int, tokens: int, precision: str, dtype: str, workers_per_gpu: int,
                    gpu_gib: float, name: str = "the backbone") -> Optional[str]:
    """One line when ``workers_per_gpu`` workers of this shape would not fit in ``gpu_gib``; None when they do."""
    mode = mode_of(precision, dtype)
    need = estimate(shape, batch, tokens, mode)["worker_gib"]
    fit = workers_that_fit(need, gpu_gib)
    if workers_per_gpu <= fit:
        return None
    return (f"{workers_per_gpu} workers per GPU may not fit: {name} at batch {batch} x {tokens} tokens ({mode}) needs "
            f"about {need:.1f} GiB per worker, the GPU has {gpu_gib:.0f} GiB: {fit} fit (estimate, "
            f"lit_infoprompt/sweep/memory.py); use fewer WORKERS, a smaller data.batch_size or model.max_length, or "
            f"model.dtype=bfloat16")


def memory_table(shape_name: str = "roberta-large", batches=(8, 16, 32), lengths=(128, 256), prompt: int = 16) -> list:
    """The estimate for each batch x (length + prompt) and mode: the rows docs/benchmarks.md shows."""
    rows = []
    for mode in MODES:
        for batch in batches:
            for length in lengths:
                row = estimate(SHAPES[shape_name], batch, length + prompt, mode)
                rows.append({"mode": mode, "batch": batch, "tokens": length + prompt, **row})
    return rows


if __name__ == "__main__":
    print(f"{'mode':<14}{'batch x tokens':>16}{'weights':>9}{'casts':>7}{'acts':>7}{'peak':>7}{'worker GiB':>12}")
    for r in memory_table():
        print(f"{r['mode']:<14}{r['batch']:>10} x {r['tokens']:<4}{r['weights_gib']:>8.2f}{r['casts_gib']:>7.2f}"
              f"{r['activations_gib']:>7.2f}{r['peak_gib']:>7.2f}{r['worker_gib']:>12.2f}")
