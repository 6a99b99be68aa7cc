"""The first steps of a run, cheaply: what chose ``method=infoprompt_plus`` (docs/methods.md).

Trains a config's module for ``--steps`` optimiser steps of its own schedule (trainer.max_steps, default 1000: the
warm-up and decay of a full run, stopped early) in a plain loop, and evaluates on the few-shot **dev** split at
step 0 and every ``--every`` steps: the dev metric, the mean train cross-entropy since the last evaluation and each
InfoNCE term's estimate as a fraction of its ceiling (interval means, as curve.csv has them). Never reads the
test set. One JSON line per (seed, evaluation) is appended to ``--out``; a table of the means over seeds is
printed.

    python scripts/signal_probe.py --name plus --seeds 13 21 42 87 100 --out runs/probe.jsonl -- \\
        task=cb method=infoprompt_plus model.name=<dir> data.dir=../shared/data
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

from lit_infoprompt.config import load_config
from lit_infoprompt.model.backbone import load_backbone
from lit_infoprompt.train.runner import build

FRACTIONS = ("mi_head_frac_of_ceiling", "mi_rep_frac_of_ceiling")


def evaluate(module, loader, metric: str) -> float:
    metrics = module.val_metrics
    metrics.reset()
    module.eval()
    with torch.no_grad():
        for batch in loader:
            metrics.update(module(batch).argmax(-1), batch["labels"])
    module.train()
    return float(metrics.compute()[f"val/{metric}"])


def probe(overrides, seed, steps, every, backbone, tokenizer):
    config = load_config([*overrides, f"seed={seed}"])
    module, datamodule, _ = build(config, backbone, tokenizer)
    module.ensure_cache(datamodule)
    module.train()
    setup = module.configure_optimizers()
    optimizer, schedule = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    batches = itertools.chain.from_iterable(datamodule.train_dataloader() for _ in itertools.count())
    rows = [{"seed": seed, "step": 0, "dev": evaluate(module, datamodule.val_dataloader(), config.task.metric)}]
    sums, count = defaultdict(float), 0
    for step in range(1, steps + 1):
        terms = module.losses(next(batches))
        loss = module.total_loss(terms)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        sums["ce"] += terms["loss/ce"].item()
        for name in FRACTIONS:
            if name in module.last_diagnostics:
                sums[name] += float(module.last_diagnostics[name])
        count += 1
        if step % every == 0:
            row = {"seed": seed, "step": step, "dev": evaluate(module, datamodule.val_dataloader(), config.task.metric),
                   **{k: v / count for k, v in sums.items()}}
            rows.append(row)
            sums, count = defaultdict(float), 0
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a label for this config in the output")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42, 87, 100])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("overrides", nargs="*", help="config overrides, after --")
    args = parser.parse_args(argv)
    config = load_config(args.overrides)
    backbone, tokenizer = load_backbone(config.model)
    torch.set_num_threads(1)
    table = defaultdict(list)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for row in probe(args.overrides, seed, args.steps, args.every, backbone, tokenizer):
            row = {"name": args.name, "overrides": args.overrides, **row}
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            table[row["step"]].append(row)
    print(f"{args.name}: mean over seeds {args.seeds}")
    for step, rows in sorted(table.items()):
        cells = [f"step {step:4d}", f"dev {sum(r['dev'] for r in rows) / len(rows):.4f}"]
        for key in ("ce", *FRACTIONS):
            if key in rows[0]:
                cells.append(f"{key} {sum(r[key] for r in rows) / len(rows):.3f}")
        print("  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
