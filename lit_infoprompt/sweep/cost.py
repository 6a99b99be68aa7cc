"""What a grid costs on GPUs that have not run it yet: a per-step cost model, pure Python (no torch), with its
assumptions printed beside every number it gives (``ASSUMPTIONS``; docs/benchmarks.md names them).

A run's seconds = setup + training steps + dev evaluations + the test pass:

* a training step runs the frozen encoder forward and back to the prompt (activation gradients only: no weight
  gradients), about twice the forward pass: 2 x (2 P T + 4 L T^2 d) FLOPs for B examples of T tokens (P: the
  encoder's weights, L layers of width d; the attention's T^2 term counted);
* an evaluation is one forward pass over the dev examples (every ``val_every`` steps), the test pass one over the
  test set (``EVAL_EXAMPLES``);
* every batch is padded to ``model.max_length`` + the prompt (an upper bound: short tasks such as SST-2 pad less);
* the GPU sustains ``MFU`` of its dense bf16 peak (``GPUS``) on these small batches;
* setup (loading the backbone, tokenising the split) takes ``SETUP_S`` per run.

Where ``make gpu-check`` has measured a step on a GPU (its JSON's ``bench_hand`` section, a random roberta-large
at two shapes), the measured milliseconds per token replace the FLOPs model for that GPU: ``measured_ms_per_token``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional

from lit_infoprompt.sweep.memory import encoder_params

# name -> (memory GiB, dense bf16 peak TFLOP/s): the three sizes a researcher is likely to hold
GPUS: Dict[str, tuple] = {"A100 40GB": (40, 312.0), "H100 80GB": (80, 989.0), "H200 141GB": (141, 989.0)}
MFU = 0.25  # of the bf16 peak, sustained on batches of 8 x 272 tokens through a frozen encoder
SETUP_S = 60.0  # per run: loading roberta-large, tokenising, the first evaluation's warm-up
STEP_OVERHEAD_S = 0.03  # per training step: the Lightning loop, the optimiser, kernel launches at a small batch
# Examples of the official evaluation split each task tests on (the GLUE/SuperGLUE validation files, SemEval's test).
EVAL_EXAMPLES = {"sst2": 872, "mrpc": 408, "cola": 1043, "rte": 277, "cb": 56, "boolq": 3270, "wic": 638, "copa": 100,
                 "semeval": 2717}
ASSUMPTIONS = [
    "a training step = 2 forward passes of the frozen encoder (activation gradients only), FLOPs 2 P T + 4 L T^2 d "
    "per example forward",
    "every batch padded to model.max_length + the prompt length (an upper bound)",
    f"the GPU sustains {MFU:.0%} of its dense bf16 peak (A100 312, H100 and H200 989 TFLOP/s)",
    f"{SETUP_S:.0f} s of setup per run and {STEP_OVERHEAD_S * 1000:.0f} ms of overhead per step; dev evaluated every "
    "val_every steps, the test set once",
    "one run per GPU at a time: extra workers on a GPU are counted as no faster (conservative) until make gpu-check "
    "measures them",
]


@dataclass
class RunShape:
    """What a run's cost depends on."""

    layers: int
    width: int
    encoder_params: int
    batch: int
    tokens: int  # padded width: max_length + prompt
    steps: int
    val_every: int
    dev_examples: int
    test_examples: int

    def forward_flops(self, examples: int) -> float:
        return examples * (2 * self.encoder_params * self.tokens + 4 * self.layers * self.tokens ** 2 * self.width)

    def train_flops(self) -> float:
        return self.steps * 2 * self.forward_flops(self.batch)

    def eval_flops(self) -> float:
        evaluations = self.steps // max(1, self.val_every) + 1  # step 0 too
        return evaluations * self.forward_flops(self.dev_examples) + self.forward_flops(self.test_examples)


def shape_of(config, shape: Mapping) -> RunShape:
    """A run config's cost shape (``shape``: the backbone's layers and widths, ``memory.SHAPES``)."""
    classes = len(config.task.labels)
    dev = config.data.shots * classes if config.data.protocol == "per_class" else config.data.budget
    return RunShape(shape["num_hidden_layers"], shape["hidden_size"], encoder_params(shape), config.data.batch_size,
                    config.model.max_length + config.prompt.length, config.trainer.max_steps,
                    config.trainer.val_every, dev, EVAL_EXAMPLES.get(config.task.name, 1000))


def run_seconds(run: RunShape, gpu: str, measured: Optional[float] = None) -> float:
    """Seconds of one run on ``gpu``: from the FLOPs at ``MFU`` of its peak, or from ``measured`` milliseconds per
    training token (evaluation tokens cost a third of a training token: forward only, no backward)."""
    if measured is not None:
        train_tokens = run.steps * run.batch * run.tokens
        eval_tokens = run.eval_flops() / run.forward_flops(1) * run.tokens
        return SETUP_S + measured / 1000 * (train_tokens + eval_tokens / 3)  # a measured step holds its overhead
    rate = GPUS[gpu][1] * 1e12 * MFU
    return SETUP_S + run.steps * STEP_OVERHEAD_S + (run.train_flops() + run.eval_flops()) / rate


def measured_ms_per_token(gpu_check_json: Optional[str]) -> Optional[dict]:
    """{"device": name, "ms_per_token": x, "from": "16x128"} from a ``make gpu-check`` JSON's prompt-tuning step
    at its largest shape (None without a file or without that section)."""
    if not gpu_check_json or not Path(gpu_check_json).is_file():
        return None
    data = json.loads(Path(gpu_check_json).read_text())
    hand = data.get("bench_hand") or data.get("sections", {}).get("bench_hand")
    if not isinstance(hand, dict):
        return None
    best = None
    for key, value in hand.items():
        if not (isinstance(value, dict) and "x" in key and "methods" in value):
            continue
        batch, length = (int(v) for v in key.split("x"))
        step = value["methods"].get("prompt_tuning", {}).get("step_median_ms")
        if step and (best is None or batch * length > best[0]):
            best = (batch * length, step / (batch * length), key)
    if best is None:
        return None
    env = data.get("env") or data.get("sections", {}).get("env") or {}
    gpus = env.get("gpus") or [{}]
    return {"device": gpus[0].get("name") or "the GPU that ran make gpu-check", "ms_per_token": best[1],
            "from": best[2]}


def wall_hours(seconds: list, gpus: int) -> float:
    """Wall-clock hours of independent runs on ``gpus`` GPUs, one run per GPU at a time, longest first onto the
    least loaded GPU (no run is split)."""
    loads = [0.0] * max(1, gpus)
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads) / 3600


def array_time_minutes(seconds: list, safety: float = 1.5) -> int:
    """The SLURM time limit of one array task: the longest run's estimate x ``safety``, rounded up to 10 minutes."""
    return int(math.ceil(max(seconds, default=600) * safety / 600) * 10)
