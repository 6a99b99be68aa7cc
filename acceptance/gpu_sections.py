"""The sections of ``gpu_check.py``: each takes the check's context and returns a dict of numbers (with a one-line
``summary``), or raises. They run in a child process that ``gpu_check.py`` supervises (time budget per section).

Plans: ``GPU`` (roberta-large-shaped random weights for speed and memory; the bundled MiniLM in bf16 for the
real runs) and ``TINY`` (the committed tiny RoBERTa and the test fixtures, for the CPU dry run).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TINY_MODEL = FIXTURES / "models" / "tiny-roberta"
TOLERANCE = 0.02  # |bf16-mixed - fp32| allowed for the best dev score and every test metric
PACKAGES = ("torch", "transformers", "lightning", "torchmetrics", "peft", "omegaconf", "safetensors", "tokenizers",
            "numpy", "PyYAML")

GPU = {
    "hand": {"shape": "roberta-large", "runs": [(16, 128), (32, 256)], "steps": 20, "warmup": 5},
    "lightning": {"shape": "roberta-large", "steps": 30, "warmup": 5,
                  "overrides": ["task=cb", "data.batch_size=16", "prompt.length=16"]},
    "memory": {"shape": "roberta-large", "batches": (8, 16, 32), "lengths": (128, 256), "prompt": 16},
    "run": {"overrides": ["task=cb", "seed=13", "trainer.max_steps=200", "trainer.val_every=50"],
            "ddp_overrides": ["trainer.max_steps=100"]},
}
TINY_DATA = [f"data.dir={FIXTURES}", "data.shots=4", "data.batch_size=4", "model.max_length=64", "prompt.length=4"]
TINY = {
    "hand": {"shape": "tiny", "runs": [(4, 24), (4, 40)], "steps": 2, "warmup": 1},
    "lightning": {"shape": None, "steps": 3, "warmup": 1, "overrides": ["task=cb", *TINY_DATA]},
    "memory": {"shape": "tiny", "batches": (2, 4), "lengths": (16, 32), "prompt": 4},
    "run": {"overrides": ["task=cb", "seed=13", *TINY_DATA, "trainer.max_steps=6", "trainer.val_every=3"],
            "ddp_overrides": []},
}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def require_model(ctx) -> str:
    if not Path(ctx.model).is_dir():
        raise FileNotFoundError(f"no backbone at {ctx.model}: `make gpu-bundle` prepares it (docs/benchmarks.md)")
    return str(ctx.model)


# -- env ---------------------------------------------------------------------------------------------------------
def section_env(ctx) -> dict:
    import torch
    from importlib import metadata

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    gpus = []
    if ctx.device.type == "cuda":
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append({"name": p.name, "memory_gib": p.total_memory / 2**30, "capability": f"{p.major}.{p.minor}",
                         "multiprocessors": p.multi_processor_count})
    try:
        from dataclasses import asdict

        from lit_infoprompt.provenance import code_version
        code = asdict(code_version())
    except Exception as err:  # noqa: BLE001 - provenance is a record here, not a check
        code = {"error": f"{type(err).__name__}: {err}"}
    manifest = Path(ctx.model).parent / "manifest.json" if ctx.model else None
    bundle = json.loads(manifest.read_text()) if manifest and manifest.is_file() else None
    gpu_text = ", ".join(f"{g['name']} {g['memory_gib']:.0f} GiB" for g in gpus) or "no GPU"
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "packages": packages, "cuda": torch.version.cuda, "gpus": gpus, "code": code,
            "bundle": bundle and {k: bundle.get(k) for k in ("total_mib", "wheels", "model")},
            "summary": f"{gpu_text}; torch {packages['torch']}, transformers {packages['transformers']}, "
                       f"lightning {packages['lightning']}, peft {packages['peft']}; python {platform.python_version()}"}


# -- bench_hand: bench.py's hand loop, the two `make bench-gpu` shapes -------------------------------------------
def section_bench_hand(ctx) -> dict:
    import bench

    plan = ctx.plan["hand"]
    out = {"shape": plan["shape"]}
    for batch, length in plan["runs"]:
        result = bench.main(["--shape", plan["shape"], "--device", ctx.device.type, "--dtype", "bfloat16",
                             "--batch-size", str(batch), "--seq-len", str(length), "--steps", str(plan["steps"]),
                             "--warmup", str(plan["warmup"])])
        out[f"{batch}x{length}"] = {"methods": result["methods"], "ratios": result["ratios"],
                                    "one_off": result["one_off"]}
        free_memory(ctx.device)
    out["summary"] = " | ".join(
        f"{key}: " + ", ".join(f"{m} {r['step_median_ms']:.1f} ms" for m, r in value["methods"].items())
        for key, value in out.items() if isinstance(value, dict))
    return out


# -- bench_lightning: trainer.fit on padded batches, ours vs PEFT, bf16-mixed and bf16 weights -------------------
def random_roberta(shape: str, vocab: int, pad_id: int, dtype: str, device, max_positions: int = 514):
    """A RoBERTa masked LM with random weights of a bench.SHAPES shape, built on ``device``, wrapped frozen."""
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    import bench
    from lit_infoprompt.model.backbone import from_pretrained_model

    layers, hidden, heads, _ = bench.SHAPES[shape]
    config = RobertaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                           intermediate_size=4 * hidden, max_position_embeddings=max_positions,
                           pad_token_id=pad_id, architectures=["RobertaForMaskedLM"])
    torch.manual_seed(0)
    with torch.device(device):
        model = RobertaForMaskedLM(config)
    return from_pretrained_model(model, True, False, getattr(torch, dtype)).to(device)


def section_bench_lightning(ctx) -> dict:
    from transformers import AutoTokenizer

    import lightning_bench
    from lit_infoprompt.config import ModelConfig
    from lit_infoprompt.model.backbone import load_backbone

    plan = ctx.plan["lightning"]
    model = require_model(ctx)

    def make_backbone(dtype):
        if plan["shape"] is None:  # the model itself (tiny run)
            backbone, tokenizer = load_backbone(ModelConfig(name=model, dtype=dtype))
            return backbone.to(ctx.device), tokenizer
        tokenizer = AutoTokenizer.from_pretrained(model)  # real text lengths; random weights of plan["shape"]
        return random_roberta(plan["shape"], len(tokenizer), tokenizer.pad_token_id, dtype, ctx.device), tokenizer

    overrides = [*plan["overrides"], f"model.name={model}", "archive=null"]
    out = {"backbone": f"random {plan['shape']}" if plan["shape"] else model, "tokenizer": model}
    for mode in lightning_bench.MODES:
        out[mode] = lightning_bench.run_mode(mode, make_backbone, overrides, plan["steps"], plan["warmup"],
                                             ctx.accelerator)
        free_memory(ctx.device)
    out["summary"] = " | ".join(
        f"{mode}: ours {out[mode]['ours']['step_median_ms']:.1f} ms, PEFT {out[mode]['peft']['step_median_ms']:.1f} "
        f"ms ({out[mode]['ours/peft']:.3f})" for mode in lightning_bench.MODES)
    return out


# -- memory: the peak of one training step per shape and mode ---------------------------------------------------
def saved_bytes(module, batch, autocast: bool) -> int:
    """Bytes of the tensors kept for backward by one training forward (distinct storages, parameters excluded)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    device = batch["input_ids"].device
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            loss = module.total_loss(module.losses(batch))
    loss.backward()
    module.zero_grad(set_to_none=True)
    return sum(seen.values())


def cuda_context_gib(device) -> float:
    """Device memory this process uses outside torch's allocator (context, library workspaces), after a matmul."""
    import torch

    x = torch.randn(256, 256, device=device)
    (x @ x).sum().item()
    free, total = torch.cuda.mem_get_info(device)
    return (total - free - torch.cuda.memory_reserved(device)) / 2**30


def training_step(backbone, mode: str, batch_size: int, length: int, prompt: int, device):
    """(module, batch, step): our prompt-tuning module on ``backbone``, one padded batch of ``batch_size`` rows of
    ``length`` tokens, and a step (forward, backward, AdamW) under the mode's autocast."""
    import torch

    from lit_infoprompt.config import load_config
    from lit_infoprompt.tasks.datamodule import Collator
    from lit_infoprompt.train.runner import build_module

    tokenizer = SimpleNamespace(all_special_ids=[0, 1, 2, 3], mask_token_id=3, pad_token_id=1)
    config = load_config([f"prompt.length={prompt}", f"data.batch_size={batch_size}"])
    module = build_module(config, backbone, tokenizer, [[10], [11], [12]]).to(device)
    optimizer = module.configure_optimizers()["optimizer"]
    rows = [{"input_ids": [0] + [4 + (i * 7 + j) % 50 for j in range(length - 2)] + [2], "mask_pos": length // 2,
             "label": i % 3, "index": i} for i in range(batch_size)]
    batch = {k: v.to(device) for k, v in Collator(1)(rows).items()}

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=mode == "bf16-mixed"):
            loss = module.total_loss(module.losses(batch))
        loss.backward()
        optimizer.step()
    return module, batch, step


def measure(row: dict, estimate: dict, module, batch, step, mode: str, device) -> None:
    import torch

    step()  # AdamW's state exists from here on, as in every later step
    row["saved_mib"] = saved_bytes(module, batch, mode == "bf16-mixed") / 2**20
    row["saved/estimate"] = row["saved_mib"] / ((estimate["activations_gib"] + estimate["casts_gib"]) * 1024)
    if device.type == "cuda":
        free_memory(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
        row["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
        row["peak/estimate"] = row["peak_mib"] / row["estimate_peak_mib"]
    else:  # no allocator statistics on CPU: weights + what the step keeps for backward
        row["peak_mib"] = None
        row["weights_plus_saved_mib"] = row["weights_mib"] + row["saved_mib"]


def measure_step(ctx, backbone, mode: str, batch_size: int, length: int, prompt: int, mem_shape: dict) -> dict:
    """One row of the memory table: the estimate, what the step saves for backward and (CUDA) its peak."""
    import torch

    from lit_infoprompt.sweep import memory

    weights = sum(p.numel() * p.element_size() for p in backbone.parameters())
    params = sum(p.numel() for p in backbone.parameters())
    estimate = memory.estimate(mem_shape, batch_size, length + prompt, mode, params=params)
    row = {"mode": mode, "batch": batch_size, "tokens": length + prompt, "weights_mib": weights / 2**20,
           "estimate_peak_mib": estimate["peak_gib"] * 1024, "estimate_worker_gib": estimate["worker_gib"]}
    try:
        measure(row, estimate, *training_step(backbone, mode, batch_size, length, prompt, ctx.device), mode,
                ctx.device)
    except torch.cuda.OutOfMemoryError as err:
        row["oom"] = str(err).splitlines()[0]
    free_memory(ctx.device)  # the module, batch and optimiser went with measure's frame
    return row


def section_memory(ctx) -> dict:
    import torch

    import bench
    from lit_infoprompt.sweep import memory

    plan = ctx.plan["memory"]
    layers, hidden, heads, vocab = bench.SHAPES[plan["shape"]]
    mem_shape = {"num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": 4 * hidden,
                 "vocab_size": vocab, "max_position_embeddings": max(plan["lengths"]) + plan["prompt"] + 2}
    cuda = ctx.device.type == "cuda"
    context = cuda_context_gib(ctx.device) if cuda else None
    gpu_gib = torch.cuda.get_device_properties(ctx.device).total_memory / 2**30 if cuda else None
    backbone = random_roberta(plan["shape"], vocab, 1, "float32", ctx.device, mem_shape["max_position_embeddings"])
    rows = []
    for mode in memory.MODES:
        if mode == "bf16-weights":
            backbone.model.to(torch.bfloat16)
        for batch_size in plan["batches"]:
            for length in plan["lengths"]:
                if ctx.left() < 10:
                    rows.append({"mode": mode, "batch": batch_size, "tokens": length + plan["prompt"],
                                 "skipped": "out of time"})
                    continue
                row = measure_step(ctx, backbone, mode, batch_size, length, plan["prompt"], mem_shape)
                if cuda and "reserved_mib" in row:
                    row["worker_gib"] = row["reserved_mib"] / 1024 + context
                    row["workers_per_gpu"] = memory.workers_that_fit(row["worker_gib"], gpu_gib)
                rows.append(row)
    del backbone
    free_memory(ctx.device)
    measured = [r for r in rows if r.get("peak_mib")]
    largest = max(rows, key=lambda r: (r["batch"] * r["tokens"], r["mode"] == "fp32"))
    if measured:
        ratios = [r["peak/estimate"] for r in measured]
        summary = (f"{len(measured)} shapes; peak {min(r['peak_mib'] for r in measured) / 1024:.2f}-"
                   f"{max(r['peak_mib'] for r in measured) / 1024:.2f} GiB, measured/estimate "
                   f"{min(ratios):.2f}-{max(ratios):.2f}; context {context:.2f} GiB")
    else:
        summary = (f"{len(rows)} shapes on {ctx.device.type}: saved for backward "
                   f"{min(r.get('saved_mib', 0) for r in rows):.2f}-{max(r.get('saved_mib', 0) for r in rows):.2f} "
                   f"MiB (no allocator peak without CUDA)")
    return {"shape": plan["shape"], "context_gib": context, "gpu_gib": gpu_gib, "rows": rows,
            "largest": {k: largest.get(k) for k in ("mode", "batch", "tokens", "peak_mib", "saved_mib")},
            "summary": summary}


# -- precision, workers, ddp: real runs through the project's own entry points -----------------------------------
def run_overrides(ctx, section: str, *extra) -> list:
    return [*ctx.plan["run"]["overrides"], f"model.name={require_model(ctx)}",
            f"out_dir={ctx.work / section}", "archive=null", "trainer.progress_bar=false",
            f"trainer.accelerator={ctx.accelerator}", *extra]


def run_scores(result: dict) -> dict:
    """The numbers of one finished run (a grid result), from its summary.json."""
    if "error" in result:
        raise RuntimeError(f"a run failed: {result['error']}")
    summary = json.loads((Path(result["run_dir"]) / "summary.json").read_text())
    scores = {"best_dev": summary["best_dev"], "best_step": summary.get("best_step"),
              **{k: v for k, v in summary.items() if k.startswith("test_")}}
    return {**scores, "seconds": summary.get("seconds"), "train_seconds": summary.get("train_seconds"),
            "sizes": summary.get("sizes")}


def score_diffs(a: dict, b: dict) -> dict:
    keys = ["best_dev"] + sorted(k for k in a if k.startswith("test_"))
    return {k: abs(a[k] - b[k]) for k in keys}


PRECISIONS = ("32-true", "bf16-mixed")


def precision_jobs(ctx, section: str) -> list:
    """One prompt-tuning run per precision, seed 13, as the grid makes its jobs (the arm named by its precision)."""
    from lit_infoprompt.experiment import Arm
    from lit_infoprompt.sweep.grid import grid_jobs

    return [job for p in PRECISIONS for job in grid_jobs(run_overrides(ctx, section, f"trainer.precision={p}"),
                                                         [Arm(f"prompt_tuning {p}", "prompt_tuning")], [13])]


def section_precision(ctx) -> dict:
    from lit_infoprompt.sweep.grid import Launch, run_grid

    results = run_grid(precision_jobs(ctx, "precision"), Launch(workers=1), report=ctx.log)
    runs = {p: run_scores(r) for p, r in zip(PRECISIONS, results)}
    diffs = score_diffs(runs["bf16-mixed"], runs["32-true"])
    agree = all(d <= TOLERANCE for d in diffs.values())
    sizes = runs["32-true"].get("sizes") or {}
    # one of CB 16-shot's 32 dev examples is 0.031: above the tolerance, so the best dev scores must be equal there
    one_example = {"best_dev": 1 / sizes["dev"]} if sizes.get("dev") else {}
    one_example.update({k: 1 / sizes["test"] for k in diffs if k == "test_acc" and sizes.get("test")})
    steps = next((o.split("=")[1] for o in ctx.plan["run"]["overrides"] if o.startswith("trainer.max_steps=")), None)
    return {"runs": runs, "diffs": diffs, "tolerance": TOLERANCE, "agree": agree, "steps": steps and int(steps),
            "one_example": one_example,
            "summary": f"best dev {runs['32-true']['best_dev']:.4f} (fp32) vs {runs['bf16-mixed']['best_dev']:.4f} "
                       f"(bf16-mixed), test acc {runs['32-true'].get('test_acc', float('nan')):.4f} vs "
                       f"{runs['bf16-mixed'].get('test_acc', float('nan')):.4f}: max diff {max(diffs.values()):.4f} "
                       f"{'<=' if agree else '>'} {TOLERANCE}"}


def section_workers(ctx) -> dict:
    from lit_infoprompt.sweep.grid import Launch, plan_workers, run_grid

    launch = Launch(workers=2)
    devices = plan_workers(launch)[2]
    started = time.perf_counter()
    results = run_grid(precision_jobs(ctx, "workers"), launch, report=ctx.log)
    wall = time.perf_counter() - started
    runs = {p: run_scores(r) for p, r in zip(PRECISIONS, results)}
    out = {"workers": 2, "devices": devices, "wall_s": wall, "runs": runs}
    alone = (ctx.results.get("precision") or {}).get("runs")
    if alone:
        diffs = {p: score_diffs(runs[p], alone[p]) for p in PRECISIONS}
        out["diffs_vs_alone"] = diffs
        out["same_scores_as_alone"] = all(d <= TOLERANCE for row in diffs.values() for d in row.values())
        # each run's own seconds (summary.json) while sharing, against the same run alone in the precision section
        out["run_s_shared"] = {p: runs[p]["seconds"] for p in PRECISIONS}
        out["run_s_alone"] = {p: alone[p]["seconds"] for p in PRECISIONS}
        out["slowdown"] = sum(out["run_s_shared"].values()) / sum(out["run_s_alone"].values())
    shared = devices.count(devices[0]) == 2 and devices[0] is not None
    where = f"GPU {devices[0]} (shared)" if shared else ctx.device.type
    out["summary"] = f"2 workers on {where}: wall {wall:.1f} s with the workers' start"
    if alone:
        out["summary"] += (f"; a run took x{out['slowdown']:.2f} its time alone; scores as alone (within "
                           f"{TOLERANCE}): {out['same_scores_as_alone']}")
    return out


def section_ddp(ctx) -> dict:
    import torch

    if ctx.device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU: the 2-process NCCL run needs 2",
                "summary": "skipped: 1 GPU"}
    if ctx.device.type != "cuda" and not ctx.ddp_cpu:
        return {"skipped": "no GPU: --ddp-cpu runs 2 gloo processes instead", "summary": "skipped: no GPU"}
    out_dir = ctx.work / "ddp"
    command = [sys.executable, "-m", "lit_infoprompt", "train",
               *run_overrides(ctx, "ddp", *ctx.plan["run"]["ddp_overrides"], "trainer.devices=2",
                              "trainer.strategy=ddp"), "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=max(10.0, ctx.left() - 5))
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"train with 2 processes exited {done.returncode}: {tail}")
    summaries = sorted(out_dir.rglob("summary.json"))
    if len(summaries) != 1:
        raise RuntimeError(f"expected one summary.json under {out_dir}, found {len(summaries)}")
    scores = run_scores({"run_dir": str(summaries[0].parent)})
    backend = "nccl" if ctx.device.type == "cuda" else "gloo"
    return {"processes": 2, "backend": backend, "wall_s": seconds, **scores,
            "summary": f"2 {backend} processes: best dev {scores['best_dev']:.4f}, "
                       f"test acc {scores.get('test_acc', float('nan')):.4f}, {seconds:.1f} s"}


SECTIONS = {"env": section_env, "bench_hand": section_bench_hand, "bench_lightning": section_bench_lightning,
            "memory": section_memory, "precision": section_precision, "workers": section_workers,
            "ddp": section_ddp}
# seconds per section on a GPU (H200-sized; the whole check stays within gpu_check.TOTAL_S) and for the CPU dry run
BUDGETS = {"env": 30, "bench_hand": 75, "bench_lightning": 75, "memory": 60, "precision": 90, "workers": 75,
           "ddp": 75}
TINY_BUDGETS = {name: 240 for name in SECTIONS}
