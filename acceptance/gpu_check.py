"""Everything that needs a GPU, in one prepared script (``make gpu-check``), about 3-5 minutes on one GPU.

Sections, each in a child process under a time budget (a failing or hanging section leaves the others' results):

  env              versions, GPUs, the code identity, the bundle's manifest
  bench_hand       `make bench-gpu`'s hand loop (bench.py): random roberta-large shape, bf16 weights, 16x128, 32x256
  bench_lightning  trainer.fit on the datamodule's padded CB batches, ours vs PEFT, bf16-mixed and bf16 weights
  memory           peak memory of a training step per batch x tokens and mode (fp32, bf16-mixed, bf16 weights),
                   next to lit_infoprompt/sweep/memory.py's estimate; how many workers fit on the GPU
  precision        200-step CB runs, fp32 and bf16-mixed (`python -m lit_infoprompt`'s grid, the bundled MiniLM):
                   best dev score and every test metric must agree within 0.02
  workers          the same two runs as two grid workers sharing the GPU (WORKERS=2): both finish, same scores
  ddp              a 2-process NCCL run where 2 GPUs exist (skipped on one)

One JSON, rewritten after every section: ``--out`` (default ``$OUT/gpu_check.json`` when OUT is set, else
``runs/gpu-check/gpu_check.json``), with the children's full output in ``gpu_check.log`` beside it.

    bash acceptance/gpu_check.sh                  on the GPU machine (installs the bundle's wheels, then this)
    python acceptance/gpu_check.py --device cpu --tiny      the dry run on CPU (the committed tiny model)

Exit status: 0 every section ran (or was skipped) and every check passed; 1 a section failed or a check did not
pass; 2 bad arguments; 4 no CUDA device (one line; nothing measured, nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for folder in (HERE, ROOT / "benchmarks"):  # gpu_sections here; bench and lightning_bench beside the benchmarks
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import gpu_sections  # noqa: E402 - after the path above; imports nothing heavy

ORDER = list(gpu_sections.SECTIONS)
TOTAL_S = 290.0  # the whole check on a GPU, child start-ups included
TINY_TOTAL_S = 900.0
NO_CUDA = 4
RESTART = 5  # a child's status after a failed section: the next sections get a fresh process
POLL_S = 0.25
GRACE_S = 5.0
DEFAULT_MODEL = ROOT / ".gpu-bundle" / "all-MiniLM-L6-v2-bf16"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="the JSON file (default $OUT/gpu_check.json, else runs/gpu-check/gpu_check.json)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="the tiny committed model and fixture data (CPU dry run)")
    p.add_argument("--model", help="backbone of the real runs (default: make gpu-bundle's; --tiny: the committed "
                                   "tiny RoBERTa)")
    p.add_argument("--sections", default=",".join(ORDER), help="comma-separated, of: " + ", ".join(ORDER))
    p.add_argument("--total-s", type=float, help=f"the whole check's budget (default {TOTAL_S:g}, tiny "
                                                 f"{TINY_TOTAL_S:g})")
    p.add_argument("--budget", action="append", default=[], metavar="SECTION=SECONDS", help="one section's budget")
    p.add_argument("--ddp-cpu", action="store_true", help="without GPUs, run the ddp section on 2 gloo processes")
    p.add_argument("--work-dir", help="where the runs are written (default: a temporary folder, removed after)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # the events file of a child process
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    p.add_argument("--stall", action="append", default=[], help=argparse.SUPPRESS)  # tests: SECTION=SECONDS asleep
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = [s for s in args.sections if s not in gpu_sections.SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)} (known: {', '.join(ORDER)})")
    budgets = dict(gpu_sections.TINY_BUDGETS if args.tiny else gpu_sections.BUDGETS)
    for item in args.budget:
        name, _, seconds = item.partition("=")
        if name not in budgets:
            p.error(f"--budget {item}: unknown section {name}")
        budgets[name] = float(seconds)
    args.budgets = budgets
    if args.total_s is None:
        args.total_s = TINY_TOTAL_S if args.tiny else TOTAL_S
    if args.model is None:
        args.model = str(gpu_sections.TINY_MODEL if args.tiny else DEFAULT_MODEL)
    args.model = str(Path(args.model).resolve())  # the runs' processes may start elsewhere
    args.stall = {k: float(v) for k, _, v in (item.partition("=") for item in args.stall)}
    return args


# -- the child: runs sections in order, one event line per start and end -----------------------------------------
class Context:
    """What a section gets: device, plan, model, work folder, earlier results, its time left, a log."""

    def __init__(self, args, results: dict):
        import torch

        self.device = torch.device(args.device)
        self.accelerator = "gpu" if self.device.type == "cuda" else "cpu"
        self.tiny, self.ddp_cpu = args.tiny, args.ddp_cpu
        self.plan = gpu_sections.TINY if args.tiny else gpu_sections.GPU
        self.model = args.model
        self.work = Path(args.work_dir)
        self.results = results
        self.deadline, self.budgets = args.deadline, args.budgets
        self.started, self.budget = time.time(), 0.0

    def left(self) -> float:
        return min(self.started + self.budget, self.deadline) - time.time()

    def log(self, *parts) -> None:
        print(*parts, flush=True)


def child(args) -> int:
    import torch

    if args.device == "cpu":
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))))
    if not args.tiny and not Path(args.model).is_dir():
        print(f"note: no backbone at {args.model}: the sections that train real runs will fail "
              f"(make gpu-bundle prepares it)", flush=True)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.is_file() else {"sections": {}}
    results = {k: v for k, v in report["sections"].items() if v.get("status") == "ok"}
    ctx = Context(args, results)
    with open(args.child, "a") as events:
        def emit(event):
            events.write(json.dumps(event, default=str) + "\n")
            events.flush()

        for name in args.sections:
            ctx.started, ctx.budget = time.time(), args.budgets[name]
            emit({"event": "start", "section": name, "t": ctx.started})
            print(f"=== {name} (budget {ctx.budget:.0f} s)", flush=True)
            try:
                time.sleep(args.stall.get(name, 0.0))
                result = gpu_sections.SECTIONS[name](ctx)
                status = "skipped" if "skipped" in result else "ok"
            except Exception as err:  # noqa: BLE001 - one section's failure is its result
                traceback.print_exc()
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                result = {"error": f"{type(err).__name__}: {first}"[:500],
                          "traceback": traceback.format_exc().strip().splitlines()[-6:]}
                status = "error"
            result.update(status=status, seconds=round(time.time() - ctx.started, 2), budget_s=ctx.budget)
            emit({"event": "done", "section": name, "result": result})
            results[name] = result
            if status == "error" and args.device == "cuda":
                return RESTART  # a CUDA error can poison the process: the rest starts afresh
    return 0


# -- the parent: supervises children, writes the JSON, prints the summary ----------------------------------------
def write_json(path: Path, report: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(path)


def checks(sections: dict) -> dict:
    """Pass (True), fail (False) or not run (None) for what the issue asks of a GPU machine."""
    def ok(name):
        return sections.get(name, {}).get("status") == "ok"

    precision, workers, ddp = (sections.get(n, {}) for n in ("precision", "workers", "ddp"))
    return {
        "every_section_ran": all(s.get("status") in ("ok", "skipped") for s in sections.values()),
        "bf16_mixed_agrees_with_fp32": precision.get("agree") if ok("precision") else
        (False if precision.get("status") == "error" else None),
        "two_workers_share_the_device": (workers.get("same_scores_as_alone", True) if ok("workers") else
                                         (False if workers.get("status") == "error" else None)),
        "ddp_two_processes": True if ok("ddp") else (False if ddp.get("status") == "error" else None),
    }


def summary_line(name: str, result: dict) -> str:
    text = result.get("error") or result.get("summary") or result.get("skipped") or ""
    return f"{name:<16}{result.get('status', '?'):<8}{result.get('seconds', 0):>7.1f} s  {text}"


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        return " / ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])[-800:]
    except OSError:
        return ""


def supervise(args, out: Path, log_path: Path, work: Path) -> dict:
    import torch

    report = {"script": "acceptance/gpu_check.py", "argv": sys.argv[1:], "device": args.device, "tiny": args.tiny,
              "model": args.model, "total_s": args.total_s, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "torch": torch.__version__, "sections": {n: {"status": "pending"} for n in args.sections}}
    write_json(out, report)
    started = time.time()
    deadline = started + args.total_s
    pending = list(args.sections)
    runs = 0
    with open(log_path, "a") as log:
        while pending:
            if deadline - time.time() < 10:
                for name in pending:
                    report["sections"][name] = {"status": "skipped", "skipped": "out of time (the check's budget)"}
                break
            runs += 1
            events = work / f"events-{runs}.jsonl"
            command = [sys.executable, str(Path(__file__).resolve()), "--child", str(events), "--deadline",
                       str(deadline), "--out", str(out), "--device", args.device, "--model", args.model,
                       "--work-dir", str(work), "--sections", ",".join(pending),
                       *[f"--budget={k}={v}" for k, v in args.budgets.items()],
                       *[f"--stall={k}={v}" for k, v in args.stall.items()],
                       *(["--tiny"] if args.tiny else []), *(["--ddp-cpu"] if args.ddp_cpu else [])]
            log.flush()
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                       start_new_session=True)
            current, since, seen, progressed = None, 0.0, 0, False
            while True:
                time.sleep(POLL_S)
                exited = process.poll() is not None
                text = events.read_text() if events.is_file() else ""
                lines = text[:text.rfind("\n") + 1].splitlines()  # whole lines only: the child may be writing
                for line in lines[seen:]:
                    event = json.loads(line)
                    if event["event"] == "start":
                        current, since, progressed = event["section"], event["t"], True
                        report["sections"][current] = {"status": "running"}
                    else:
                        report["sections"][event["section"]] = event["result"]
                        pending.remove(event["section"])
                        print(summary_line(event["section"], event["result"]), flush=True)
                        current = None
                    report["checks"] = checks(report["sections"])
                    write_json(out, report)
                seen = len(lines)
                if current is not None and not exited:
                    limit = min(since + args.budgets[current], deadline) + GRACE_S
                    if time.time() > limit:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                        fail(report, pending, current, f"timed out after {time.time() - since:.0f} s (budget "
                             f"{args.budgets[current]:.0f} s)", since)
                        break
                if exited:
                    if current is not None:
                        fail(report, pending, current, f"the process died (exit {process.returncode}): "
                             f"{log_tail(log_path)}", since)
                    elif pending and not progressed:  # it could not start a section at all: do not loop
                        for name in list(pending):
                            fail(report, pending, name, f"the check's process exited {process.returncode} before "
                                 f"this section: {log_tail(log_path)}", time.time())
                    break
            report["checks"] = checks(report["sections"])
            write_json(out, report)
    report["elapsed_s"] = round(time.time() - started, 1)
    report["checks"] = checks(report["sections"])
    report["ok"] = all(v is not False for v in report["checks"].values())
    write_json(out, report)
    return report


def fail(report: dict, pending: list, name: str, message: str, since: float) -> None:
    report["sections"][name] = {"status": "error", "error": message, "seconds": round(time.time() - since, 2)}
    pending.remove(name)
    print(summary_line(name, report["sections"][name]), flush=True)


def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    return ROOT / "runs" / "gpu-check" / "gpu_check.json"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        build = "a CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no device visible"
        print(f"gpu-check: no CUDA device here (torch {torch.__version__}, {build}): nothing measured; run it on a GPU "
              f"machine (docs/benchmarks.md), or --device cpu --tiny for the dry run")
        return NO_CUDA
    out = Path(args.out) if args.out else default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    log_path = out.with_name(out.stem + ".log")
    log_path.unlink(missing_ok=True)
    temporary = args.work_dir is None
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    args.work_dir = str(work)
    print(f"gpu-check: {', '.join(args.sections)} on {args.device}{' (tiny)' if args.tiny else ''}, "
          f"budget {args.total_s:.0f} s -> {out}", flush=True)
    try:
        report = supervise(args, out, log_path, work)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    counts = {s: sum(r.get("status") == s for r in report["sections"].values()) for s in ("ok", "error", "skipped")}
    failed = [k for k, v in report["checks"].items() if v is False]
    print(f"gpu-check: {counts['ok']} ok, {counts['error']} failed, {counts['skipped']} skipped in "
          f"{report['elapsed_s']:.0f} s; checks {'passed' if not failed else 'FAILED: ' + ', '.join(failed)}; "
          f"{out} (log: {log_path.name})")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
