"""Training-step time of each method on one backbone, in one process: medians and ratios.

A step is forward + backward + AdamW step on a real few-shot batch. The methods are measured
interleaved (A B A B ...) so that machine drift hits all of them alike; warm-up steps are dropped.
One-off costs (split + tokenisation, the prompt-free cache) are timed separately.

    python benchmarks/step_time.py --model <dir or hub id> --data-dir ../shared/data [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from lit_infoprompt.backbone import load_backbone
from lit_infoprompt.config import load_config
from lit_infoprompt.train import build


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--task", default="cb")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per method")
    parser.add_argument("--methods", nargs="+", default=["prompt_tuning", "infoprompt"])
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser.parse_args()


def prepare(method, args, backbone, tokenizer):
    overrides = [f"task={args.task}", f"method={method}", f"model.name={args.model}",
                 f"data.batch_size={args.batch_size}", "trainer.progress_bar=false"]
    if args.data_dir:
        overrides.append(f"data.dir={args.data_dir}")
    started = time.perf_counter()
    module, datamodule, _ = build(load_config(overrides), backbone, tokenizer)
    split_seconds = time.perf_counter() - started
    started = time.perf_counter()
    module.ensure_cache(datamodule)
    cache_seconds = time.perf_counter() - started
    module.train()
    optimizer = module.configure_optimizers()["optimizer"]
    batches = list(datamodule.train_dataloader())
    return {"module": module, "optimizer": optimizer, "batches": batches, "times": [],
            "one_off": {"split_and_tokenise_s": split_seconds, "prompt_free_cache_s": cache_seconds}}


def step(state, index):
    batch = state["batches"][index % len(state["batches"])]
    started = time.perf_counter()
    state["optimizer"].zero_grad(set_to_none=True)
    module = state["module"]
    module.total_loss(module.losses(batch)).backward()
    state["optimizer"].step()
    return time.perf_counter() - started


def main():
    args = parse_args()
    backbone, tokenizer = load_backbone(load_config([f"model.name={args.model}"]).model)
    states = {m: prepare(m, args, backbone, tokenizer) for m in args.methods}
    for index in range(args.warmup + args.steps):
        for method, state in states.items():
            seconds = step(state, index)
            if index >= args.warmup:
                state["times"].append(seconds)
    base = statistics.median(states[args.methods[0]]["times"])
    results = {"machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__} "
                          f"threads {torch.get_num_threads()}".strip(),
               "model": args.model, "task": args.task, "batch_size": args.batch_size, "steps": args.steps,
               "methods": {}}
    print(f"{'method':<26}{'median ms':>10}{'p10 ms':>9}{'p90 ms':>9}{'ratio':>8}")
    for method, state in states.items():
        times = sorted(state["times"])
        median = statistics.median(times)
        row = {"median_ms": 1e3 * median, "p10_ms": 1e3 * times[len(times) // 10],
               "p90_ms": 1e3 * times[(9 * len(times)) // 10], f"ratio_vs_{args.methods[0]}": median / base,
               **state["one_off"]}
        results["methods"][method] = row
        print(f"{method:<26}{row['median_ms']:>10.1f}{row['p10_ms']:>9.1f}{row['p90_ms']:>9.1f}"
              f"{median / base:>8.3f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
