"""Behaviour fingerprint: the numbers the training code computes, on committed tiny models, for every method
preset and every task format; compared with the committed golden file by tests/test_fingerprint.py.

    python tests/fingerprint.py            print the fingerprint (JSON) without writing it
    python tests/fingerprint.py --write    (re)write tests/fixtures/fingerprint.json: only on purpose, when a
                                           change of the numbers is intended; say why in the commit

A case is one short CPU training run (``train.run``) of a tiny model read from tests/fixtures/models (written once
by tests/fixtures/models/make_models.py; nothing is trained or downloaded here), plus two forward passes. Its
values: every numeric column of the run's curve.csv (a list over the dev evaluations; wall-clock columns left
out), the summary's test metrics and curve statistics, and the logits on the first dev batch of the freshly
built (untrained, seeded) module and of the best checkpoint. Cases:

* ``roberta/cb/<method>``: every method preset in conf/method/*.yaml, on CB;
* ``roberta/<task>/infoprompt``: every task in conf/task/*.yaml (plus the fixture task in the generic relation
  format), with InfoPrompt so that its MI terms run on each task format;
* ``bert/cb/<method>``: prompt tuning and InfoPrompt on a bare BERT encoder without MLM head (the
  all-MiniLM-L6-v2 family).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch

# Every use of the package goes through these names: a refactor that moves modules changes these lines only.
from lit_infoprompt.config import load_config
from lit_infoprompt.train.runner import build, run

torch.set_num_threads(1)  # one intra-op thread: the same reduction order on every machine, and faster here

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
MODELS = {"roberta": FIXTURES / "models" / "tiny-roberta", "bert": FIXTURES / "models" / "tiny-bert"}
GOLDEN = FIXTURES / "fingerprint.json"
EXTRA_TASKS = {"relation_task": FIXTURES / "relation_task.yaml"}  # the generic relation format has no conf/ task
BERT_METHODS = ("prompt_tuning", "infoprompt")
TASK_METHOD = "infoprompt"
BASE_TASK = "cb"

# A seconds-long CPU run on the fixture data; a copy of tests/conftest.py's tiny_overrides, kept here so that a
# change there does not silently change the golden numbers. Deterministic algorithms on.
TINY = ["data.shots=4", "data.batch_size=4", "model.max_length=64", "prompt.length=4", "trainer.max_steps=6",
        "trainer.val_every=3", "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.deterministic=true"]
# What the fixture data needs per task format (as tests/test_glue.py and tests/test_tasks.py run them): the GLUE
# files are small, and one SemEval class has a single training example, so both use a total budget.
FORMAT_OVERRIDES = {"glue-sst2": ["data.protocol=budget", "data.budget=4"],
                    "glue-mrpc": ["data.protocol=budget", "data.budget=4"],
                    "glue-cola": ["data.protocol=budget", "data.budget=4"],
                    "semeval": ["data.protocol=budget", "data.budget=8"]}
# Summary entries kept besides test_*: the curve statistics, the run length, the split and the parameter counts.
SUMMARY_KEYS = ("best_dev", "best_step", "dev_auc", "final_dev", "dev_step0", "steps", "split_size", "sizes",
                "params", "confusion_matrix_test")
TIMING_WORDS = ("seconds", "time")  # wall-clock columns: never reproducible

Number = Union[int, float, None]
Values = Dict[str, Union[Number, List[Number]]]


def presets(kind: str) -> List[str]:
    return sorted(p.stem for p in (ROOT / "conf" / kind).glob("*.yaml"))


def cases() -> Dict[str, List[str]]:
    """Case name -> overrides (without model.name and out_dir: see ``overrides``). Names are
    ``<model>/<task>/<method>``, so a (task, method) pair that two lists share is one case."""
    table: Dict[str, List[str]] = {}
    for method in presets("method"):
        table[f"roberta/{BASE_TASK}/{method}"] = [f"task={BASE_TASK}", f"method={method}"]
    tasks = {name: name for name in presets("task")}
    tasks.update({name: str(path) for name, path in EXTRA_TASKS.items()})
    for name, task in sorted(tasks.items()):
        form = load_config([f"task={task}"]).task.format
        table[f"roberta/{name}/{TASK_METHOD}"] = [f"task={task}", f"method={TASK_METHOD}",
                                                  *FORMAT_OVERRIDES.get(form, [])]
    for method in BERT_METHODS:
        table[f"bert/{BASE_TASK}/{method}"] = [f"task={BASE_TASK}", f"method={method}"]
    return dict(sorted(table.items()))


def overrides(name: str, out_dir: Path) -> List[str]:
    model = name.split("/", 1)[0]
    return [f"model.name={MODELS[model]}", f"data.dir={FIXTURES}", f"out_dir={out_dir}", *TINY, *cases()[name]]


def number(text: str) -> Number:
    if text == "":
        return None  # a column the row does not have (no training terms at step 0)
    try:
        return int(text)
    except ValueError:
        return float(text)


def curve_values(path: Path) -> Values:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    values: Values = {}
    for column in rows[0]:
        if any(word in column.lower() for word in TIMING_WORDS):
            continue
        try:
            values[f"curve/{column}"] = [number(row[column]) for row in rows]
        except ValueError:  # a text column: not a number to compare
            continue
    return values


def flat(value) -> Union[Number, List[Number]]:
    if isinstance(value, dict):
        raise TypeError("flatten dicts with summary_values")
    if isinstance(value, (list, tuple)):
        return [x for item in value for x in (flat(item) if isinstance(item, (list, tuple)) else [item])]
    return value


def summary_values(summary: dict) -> Values:
    values: Values = {}
    for key in sorted(summary):
        if not (key.startswith("test_") or key in SUMMARY_KEYS):
            continue
        value = summary[key]
        if isinstance(value, dict):
            values.update({f"summary/{key}/{k}": flat(v) for k, v in sorted(value.items())})
        else:
            values[f"summary/{key}"] = flat(value)
    return values


def first_dev_logits(module, datamodule) -> torch.Tensor:
    batch = next(iter(datamodule.val_dataloader()))
    module.eval()
    with torch.no_grad():
        return module(batch).float()


def logit_values(prefix: str, logits: torch.Tensor) -> Values:
    return {f"logits/{prefix}": [float(x) for x in logits.flatten()], f"logits/{prefix}_shape": list(logits.shape)}


def compute_case(name: str, out_dir: Path) -> Values:
    summary = run(load_config(overrides(name, out_dir / "runs")))
    values = curve_values(Path(summary["run_dir"]) / "curve.csv")
    values.update(summary_values(summary))
    # the untrained module as build() makes it (seeded): prompt init, verbalizer head, forward path
    module, datamodule, _ = build(load_config(overrides(name, out_dir / "runs")))
    values.update(logit_values("init", first_dev_logits(module, datamodule)))
    # the tested state: the best checkpoint (trainable tensors only) over the same freshly built module
    checkpoint = torch.load(Path(summary["run_dir"]) / "checkpoints" / "best.ckpt", map_location="cpu",
                            weights_only=False)
    module.on_load_checkpoint(checkpoint)  # adds the frozen backbone's tensors, as Lightning's own loading does
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    values.update(logit_values("best", first_dev_logits(module, datamodule)))
    return values


def compute(names: Optional[List[str]] = None) -> Dict[str, Values]:
    """{case: {value name: number or list}} for the given cases (default: all)."""
    result = {}
    with tempfile.TemporaryDirectory(prefix="fingerprint-") as tmp:
        for name in names or list(cases()):
            result[name] = compute_case(name, Path(tmp) / name.replace("/", "-"))
    return result


# -- the golden file ---------------------------------------------------------------------------------------

def environment() -> dict:
    import lightning
    import tokenizers
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__, "lightning": lightning.__version__, "machine": platform.machine()}
    return dict(sorted(versions.items()))


def dumps(fingerprint: Dict[str, Values], meta: Optional[dict] = None) -> str:
    """Sorted keys, one case per block, one value per line, floats as Python's repr (shortest round trip)."""
    blocks = []
    for case, values in sorted(({"_meta": meta} if meta else {}).items()) + sorted(fingerprint.items()):
        lines = [f"    {json.dumps(key)}: {json.dumps(values[key])}" for key in sorted(values)]
        blocks.append(f"  {json.dumps(case)}: {{\n" + ",\n".join(lines) + "\n  }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def load_golden(path: Path = GOLDEN) -> Dict[str, Values]:
    """The golden cases (without ``_meta``)."""
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def golden_meta(path: Path = GOLDEN) -> dict:
    return json.loads(path.read_text()).get("_meta", {})


# -- the comparison ----------------------------------------------------------------------------------------

def close(expected: Number, got: Number, rtol: float, atol: float) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected == got
    if math.isnan(expected) or math.isnan(got):
        return math.isnan(expected) and math.isnan(got)
    return abs(got - expected) <= atol + rtol * abs(expected)


def differences(expected: Values, got: Values, rtol: float, atol: float, case: str = "") -> List[str]:
    """One line per mismatch: golden keys missing from ``got``, lengths or values that differ. Keys in ``got``
    that the golden lacks (added since it was written) are not compared."""
    found = []
    for key in sorted(expected):
        want = expected[key]
        if key not in got:
            found.append(f"{case} {key}: missing (golden has {want!r})")
            continue
        have = got[key]
        if isinstance(want, list) != isinstance(have, list):
            found.append(f"{case} {key}: expected {want!r}, got {have!r}")
        elif isinstance(want, list):
            if len(want) != len(have):
                found.append(f"{case} {key}: length {len(have)}, expected {len(want)} ({want!r} vs {have!r})")
                continue
            found += [f"{case} {key}[{i}]: expected {w!r}, got {h!r}" for i, (w, h) in enumerate(zip(want, have))
                      if not close(w, h, rtol, atol)]
        elif not close(want, have, rtol, atol):
            found.append(f"{case} {key}: expected {want!r}, got {have!r}")
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN.relative_to(ROOT)}")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args(argv)
    if args.write and args.cases:
        parser.error("--write writes every case: give no case names")
    os.chdir(ROOT)
    fingerprint = compute(args.cases or None)
    text = dumps(fingerprint, environment())
    if args.write:
        GOLDEN.write_text(text)
        count = sum(len(v) if isinstance(v, list) else 1 for values in fingerprint.values() for v in values.values())
        print(f"wrote {GOLDEN.relative_to(ROOT)}: {len(fingerprint)} cases, {count} numbers")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
