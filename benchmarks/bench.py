"""Benchmark suite: our prompt tuning and InfoPrompt against HF PEFT prompt tuning, in one process.

Same frozen backbone object, same batches, same precision, warm-up excluded, medians. Sections:
1. training step (forward + backward + AdamW) per method, interleaved so drift hits all alike;
2. evaluation throughput (examples/s);
3. peak memory (process RSS; GPU max allocated per method);
4. one-off costs (split + tokenisation, the prompt-free cache) and checkpoint size / backbone size.

Real data:  python benchmarks/bench.py --model <dir> --data-dir ../shared/data            (CB, batch 8)
Synthetic:  python benchmarks/bench.py --shape roberta-large --device cuda --batch-size 32 --seq-len 256
            --dtype bfloat16   (random weights: speed does not depend on them)
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import statistics
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from lit_infoprompt.model.backbone import from_pretrained_model, load_backbone
from lit_infoprompt.model.cache import prompt_free_states
from lit_infoprompt.config import load_config
from lit_infoprompt.tasks.datamodule import Collator
from lit_infoprompt.model.head import ClassHead
from lit_infoprompt.train.runner import build, build_module

SHAPES = {  # name -> (layers, hidden, heads, vocab)
    "roberta-large": (24, 1024, 16, 50265),
    "roberta-base": (12, 768, 12, 50265),
    "tiny": (2, 64, 4, 1000),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="hub id or folder: real weights and real task data")
    p.add_argument("--shape", choices=sorted(SHAPES), help="random weights of this shape, synthetic batches")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--task", default="cb")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="frozen backbone weights")
    p.add_argument("--autocast", action="store_true", help="bf16 autocast around every forward (GPU)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128, help="synthetic batches: tokens per example")
    p.add_argument("--prompt-length", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--methods", nargs="+", default=["prompt_tuning", "infoprompt", "peft"])
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if bool(args.model) == bool(args.shape):
        p.error("give exactly one of --model and --shape")
    return args


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- setups ----------------------------------------------------------------------------------------
def real_setup(args, device):
    """Backbone, CB batches and our modules from the project's own composition root."""
    dtype = getattr(torch, args.dtype)
    config0 = load_config([f"model.name={args.model}", f"model.dtype={args.dtype}"])
    backbone, tokenizer = load_backbone(config0.model)
    modules, one_off = {}, {}
    for method in [m for m in args.methods if m != "peft"] or ["prompt_tuning"]:
        overrides = [f"task={args.task}", f"method={method}", f"model.name={args.model}", f"model.dtype={args.dtype}",
                     f"data.batch_size={args.batch_size}", f"prompt.length={args.prompt_length}"]
        overrides += [f"data.dir={args.data_dir}"] if args.data_dir else []
        started = time.perf_counter()
        module, datamodule, _ = build(load_config(overrides), backbone, tokenizer)
        one_off["split_and_tokenise_s"] = time.perf_counter() - started
        module.to(device)
        started = time.perf_counter()
        module.ensure_cache(datamodule)
        sync(device)
        one_off[f"prompt_free_cache_s/{method}"] = time.perf_counter() - started
        modules[method] = module
    train = [to(b, device) for b in datamodule.train_dataloader()]
    evaluation = [to(b, device) for b in datamodule.test_dataloader()]
    backbone.to(device, dtype)
    return backbone, modules, train, evaluation, one_off, datamodule


def synthetic_setup(args, device):
    """A random model of the chosen shape, random token batches with one <mask> each."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    layers, hidden, heads, vocab = SHAPES[args.shape]
    hf = RobertaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=4 * hidden, max_position_embeddings=args.seq_len + args.prompt_length + 2)
    torch.manual_seed(0)
    backbone = from_pretrained_model(RobertaForMaskedLM(hf), True, False, getattr(torch, args.dtype)).to(device)
    tokenizer = SimpleNamespace(all_special_ids=[0, 1, 2, 3], mask_token_id=3, pad_token_id=1)
    rows = []
    generator = torch.Generator().manual_seed(0)
    for i in range(args.batch_size * 4):
        ids = torch.randint(4, vocab, (args.seq_len,), generator=generator).tolist()
        ids[0], ids[-1], ids[args.seq_len // 2] = 0, 2, 3
        rows.append({"input_ids": ids, "mask_pos": args.seq_len // 2, "label": i % 3, "index": i})
    collate = Collator(tokenizer.pad_token_id)
    batches = [to(collate(rows[i:i + args.batch_size]), device) for i in range(0, len(rows), args.batch_size)]
    modules, one_off = {}, {}
    for method in [m for m in args.methods if m != "peft"] or ["prompt_tuning"]:
        config = load_config([f"method={method}", f"prompt.length={args.prompt_length}",
                              f"data.batch_size={args.batch_size}"])
        module = build_module(config, backbone, tokenizer, [[10], [11], [12]]).to(device)
        if module.needs_cache:
            started = time.perf_counter()
            module.free_mask, module.free_cls = prompt_free_states(backbone, rows, collate, 32, device)
            sync(device)
            one_off[f"prompt_free_cache_s/{method}"] = time.perf_counter() - started
        modules[method] = module
    return backbone, modules, batches, batches, one_off, None


def to(batch, device):
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# -- steppers --------------------------------------------------------------------------------------
def our_stepper(module, autocast, device):
    module.train()
    optimizer = module.configure_optimizers()["optimizer"]

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            loss = module.total_loss(module.losses(batch))
        loss.backward()
        optimizer.step()

    def evaluate(batch):
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            module.eval()
            out = module(batch)
            module.train()
            return out
    return step, evaluate, module


def peft_stepper(backbone, reference_head: ClassHead, prompt_length, autocast, device):
    """HF PEFT prompt tuning (PromptTuningConfig, same number of virtual tokens) on the same frozen encoder,
    with the same class head on the same <mask> state."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    config = PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=prompt_length)
    model = get_peft_model(backbone.encoder, config).to(device)
    head = ClassHead(reference_head.vectors, reference_head.bias).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def logits(batch):
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return head(backbone.head_input(hidden[rows, batch["mask_pos"] + prompt_length]).float())

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            loss = F.cross_entropy(logits(batch).float(), batch["labels"])
        loss.backward()
        optimizer.step()

    def evaluate(batch):
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            return logits(batch)
    return step, evaluate, head


# -- measurements ----------------------------------------------------------------------------------
def time_steps(steppers, batches, args, device):
    times = {name: [] for name in steppers}
    for i in range(args.warmup + args.steps):
        for name, (step, _, _) in steppers.items():
            sync(device)
            started = time.perf_counter()
            step(batches[i % len(batches)])
            sync(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - started)
    return times


def eval_throughput(evaluate, batches, device) -> float:
    evaluate(batches[0])  # warm-up
    sync(device)
    started = time.perf_counter()
    count = 0
    for batch in batches:
        evaluate(batch)
        count += batch["labels"].shape[0]
    sync(device)
    return count / (time.perf_counter() - started)


def gpu_peak_mb(step, batch, device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    step(batch)
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def checkpoint_ratio(module) -> float:
    """Bytes of a trainable-only checkpoint (tensors + AdamW state after one step) / backbone bytes."""
    trainable = {n: p.detach() for n, p in module.named_parameters() if p.requires_grad}
    state = {n: {"exp_avg": t, "exp_avg_sq": t} for n, t in trainable.items()}  # AdamW keeps two per tensor
    buffer = io.BytesIO()
    torch.save({"state_dict": trainable, "optimizer": state}, buffer)
    backbone = sum(p.numel() * p.element_size() for p in module.backbone.parameters())
    return buffer.getbuffer().nbytes / backbone


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    setup = real_setup if args.model else synthetic_setup
    backbone, modules, train, evaluation, one_off, _ = setup(args, device)
    steppers = {name: our_stepper(module, args.autocast, device) for name, module in modules.items()
                if name in args.methods}
    if "peft" in args.methods:
        reference = next(iter(modules.values())).head
        steppers["peft"] = peft_stepper(backbone, reference, args.prompt_length, args.autocast, device)
    times = time_steps(steppers, train, args, device)
    results = {
        "machine": f"{platform.machine()} {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'} "
                   f"torch {torch.__version__} threads {torch.get_num_threads()}",
        "backbone": args.model or f"random {args.shape}", "device": args.device, "dtype": args.dtype,
        "autocast": args.autocast, "batch": [train[0]["input_ids"].shape[0], train[0]["input_ids"].shape[1]],
        "prompt_length": args.prompt_length, "steps": args.steps, "methods": {}, "one_off": one_off,
    }
    for name, (step, evaluate, owner) in steppers.items():
        median = statistics.median(times[name])
        results["methods"][name] = {
            "step_median_ms": 1e3 * median,
            "step_p10_ms": 1e3 * sorted(times[name])[len(times[name]) // 10],
            "step_p90_ms": 1e3 * sorted(times[name])[(9 * len(times[name])) // 10],
            "eval_examples_per_s": eval_throughput(evaluate, evaluation, device),
            "gpu_peak_mb": gpu_peak_mb(step, train[0], device),
        }
    med = {n: r["step_median_ms"] for n, r in results["methods"].items()}
    ratios = {}
    if "infoprompt" in med and "prompt_tuning" in med:
        ratios["infoprompt/prompt_tuning"] = med["infoprompt"] / med["prompt_tuning"]
    if "peft" in med and "prompt_tuning" in med:
        ratios["prompt_tuning/peft"] = med["prompt_tuning"] / med["peft"]
    if "prompt_tuning" in modules:
        ratios["checkpoint/backbone"] = checkpoint_ratio(modules["prompt_tuning"])
    results["ratios"] = ratios
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


def report(results):
    print(f"{results['machine']} | {results['backbone']} | {results['dtype']}"
          f"{' + autocast' if results['autocast'] else ''} | batch {results['batch'][0]} x {results['batch'][1]} "
          f"tokens + {results['prompt_length']} prompt | {results['steps']} timed steps")
    print(f"{'method':<16}{'step ms (median)':>18}{'p10':>8}{'p90':>8}{'eval ex/s':>11}{'GPU peak MB':>13}")
    for name, r in results["methods"].items():
        peak = "-" if r["gpu_peak_mb"] is None else f"{r['gpu_peak_mb']:.0f}"
        print(f"{name:<16}{r['step_median_ms']:>18.1f}{r['step_p10_ms']:>8.1f}{r['step_p90_ms']:>8.1f}"
              f"{r['eval_examples_per_s']:>11.1f}{peak:>13}")
    for name, value in results["ratios"].items():
        print(f"ratio {name}: {value:.4f}")
    for name, value in results["one_off"].items():
        print(f"one-off {name}: {value:.3f}")
    print(f"peak process RSS: {results['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
