"""Markdown tables from a ``gpu_check.py`` JSON, for docs/benchmarks.md and the README.

    python acceptance/gpu_report.py runs/gpu-check/gpu_check.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header, rows, digits=None) -> list:
    """A markdown table; ``digits``: decimals per column (default 1)."""
    digits = digits or [1] * len(header)
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(c if isinstance(c, str) else fmt(c, d) for c, d in zip(row, digits)) + " |" for row in rows]


def failed(name: str, section: dict) -> list:
    if section.get("status") == "ok":
        return []
    text = section.get("error") or section.get("skipped") or section.get("status")
    return [f"**{name}**: {section.get('status')}: {text}", ""]


def report(data: dict) -> str:
    s = data["sections"]
    env = s.get("env", {})
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']:.0f} GiB)" for g in env.get("gpus", [])) or data["device"]
    packages = env.get("packages", {})
    code = (env.get("code") or {}).get("identity")
    lines = [f"`gpu_check.py` on {gpus}, {data.get('started', '')}: torch {packages.get('torch')}, transformers "
             f"{packages.get('transformers')}, lightning {packages.get('lightning')}, peft {packages.get('peft')}; "
             f"code {code}; {data.get('elapsed_s', '?')} s in all; checks: "
             + ", ".join(f"{k} {v}" for k, v in (data.get("checks") or {}).items()), ""]
    hand = s.get("bench_hand", {})
    lines += failed("bench_hand", hand)
    if hand.get("status") == "ok":
        lines += [f"Hand loop (`make bench-gpu`: random {hand.get('shape')} shape, bf16 weights, fixed-length "
                  f"batches), median step in ms:", ""]
        rows = []
        for key, value in hand.items():
            if isinstance(value, dict) and "methods" in value:
                m, r = value["methods"], value["ratios"]
                rows.append([key, *(m.get(n, {}).get("step_median_ms") for n in ("prompt_tuning", "infoprompt", "peft")),
                             r.get("infoprompt/prompt_tuning"), r.get("prompt_tuning/peft"),
                             m.get("prompt_tuning", {}).get("gpu_peak_mb")])
        lines += table(["batch x tokens", "prompt tuning", "InfoPrompt", "PEFT", "InfoPrompt / PT", "PT / PEFT",
                        "GPU peak MB (PT)"], rows, [0, 1, 1, 1, 3, 3, 0]) + [""]
    light = s.get("bench_lightning", {})
    lines += failed("bench_lightning", light)
    if light.get("status") == "ok":
        lines += [f"`trainer.fit` on padded CB batches ({light.get('backbone')}), median step in ms:", ""]
        rows = [[mode, v["ours"]["step_median_ms"], v["peft"]["step_median_ms"], v["ours/peft"],
                 v["ours"]["gap_median_ms"], v["ours"]["padded_width_mean"]]
                for mode, v in light.items() if isinstance(v, dict) and "ours" in v]
        lines += table(["mode", "ours", "PEFT", "ours / PEFT", "ours, batch start to start", "mean padded width"],
                       rows, [0, 1, 1, 3, 1, 1]) + [""]
    mem = s.get("memory", {})
    lines += failed("memory", mem)
    if mem.get("status") == "ok":
        lines += [f"Peak memory of a training step ({mem.get('shape')} shape; context {fmt(mem.get('context_gib'), 2)} "
                  f"GiB per process):", ""]
        rows = [[r["mode"], f"{r['batch']} x {r['tokens']}", r.get("peak_mib") and r["peak_mib"] / 1024,
                 r.get("worker_gib"), r.get("workers_per_gpu"), r["estimate_peak_mib"] / 1024,
                 r.get("peak/estimate"), r.get("saved_mib")] for r in mem.get("rows", []) if "estimate_peak_mib" in r]
        lines += table(["mode", "batch x tokens", "peak GiB", "worker GiB", "workers per GPU", "estimate GiB",
                        "measured / estimate", "saved for backward MiB"], rows, [0, 0, 2, 2, 0, 2, 2, 1]) + [""]
    prec = s.get("precision", {})
    lines += failed("precision", prec)
    if prec.get("status") == "ok":
        runs = prec["runs"]
        keys = [k for k in runs["32-true"] if k == "best_dev" or k.startswith("test_")] + ["seconds"]
        lines += [f"fp32 against bf16-mixed, {prec.get('steps')} steps (agree within {prec['tolerance']}: "
                  f"{prec['agree']}; largest difference {max(prec['diffs'].values()):.4f}):", ""]
        lines += table(["precision", *keys], [[p, *(runs[p].get(k) for k in keys)] for p in runs],
                       [0] + [4] * (len(keys) - 1) + [1]) + [""]
    workers = s.get("workers", {})
    lines += failed("workers", workers) + ([workers["summary"], ""] if workers.get("status") == "ok" else [])
    ddp = s.get("ddp", {})
    lines += failed("ddp", ddp) + ([ddp["summary"], ""] if ddp.get("status") == "ok" else [])
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    print(report(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
