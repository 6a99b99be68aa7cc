"""Use a trained prompt: a run directory (its best-on-dev checkpoint) or a PEFT export as a classifier.

    from lit_infoprompt.tools.predict import Classifier

    clf = Classifier.load("runs/sst2/budget64/infoprompt/seed13/version_0")  # or an export-peft folder
    clf.predict(["a gripping, funny film", "two hours I will not get back"])
    # [{'id': 0, 'label': '1', 'probs': {'0': 0.08, '1': 0.92}}, {'id': 1, 'label': '0', ...}]

A string fills a one-field template (SST-2's ``{sentence}``); otherwise give dicts with the template's fields
(``{"premise": ..., "hypothesis": ...}`` for CB). Examples are encoded, batched and scored exactly as the run's
test loop does (the same template, length-sorted batches of ``data.eval_batch_size``), so ``evaluate`` on the run's
own test file gives the test metrics of its summary.json, to the last digit.

Files (``predict``/``evaluate`` commands): the task's own file format, or JSON lines with the template's fields
(``id``/``idx`` and ``label`` optional; ``evaluate`` needs the labels).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Union

from lit_infoprompt.errors import InputError
from lit_infoprompt.tasks.sources import Example, label_index, read_examples

if TYPE_CHECKING:  # torch is imported where a prediction needs it: a wrong path answers before it loads
    import torch

FORWARD = ("prompt.", "head.", "bottleneck.")  # the trainable tensors a prediction uses


class Classifier:
    """A trained soft prompt on its frozen backbone, ready to classify new examples."""

    def __init__(self, config, module, tokenizer, encoder, device: torch.device):
        self.config, self.module, self.tokenizer, self.encoder, self.device = config, module, tokenizer, encoder, device
        self.labels = list(config.task.labels)

    # -- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Union[str, Path], device: Optional[str] = None) -> "Classifier":
        """A run directory (with checkpoints/best.ckpt) or a folder written by ``export-peft``."""
        path = Path(path)
        if source_kind(path) == "export":
            return cls._from_export(path, device)
        return cls._from_run(path, device)

    @classmethod
    def _from_run(cls, run_dir: Path, device: Optional[str]) -> "Classifier":
        from lit_infoprompt.tools.export import trainable_state
        from lit_infoprompt.train.runner import saved_config

        config = saved_config(run_dir)
        return cls._build(config, trainable_state(run_dir), device)

    @classmethod
    def _from_export(cls, folder: Path, device: Optional[str]) -> "Classifier":
        from safetensors.torch import load_file

        from lit_infoprompt.config import load_saved

        config = load_saved(folder / "run_config.yaml")
        virtual = load_file(str(folder / "adapter_model.safetensors"))["prompt_embeddings"]
        state = {"prompt.weight": virtual[1:], **load_file(str(folder / "head.safetensors"))}  # row 0: the frozen <s>
        return cls._build(config, state, device)

    @classmethod
    def _build(cls, config, state: Dict[str, torch.Tensor], device: Optional[str]) -> "Classifier":
        import torch

        from lit_infoprompt.model.backbone import load_backbone
        from lit_infoprompt.tasks.templates import TemplateEncoder, label_word_ids
        from lit_infoprompt.train.runner import build_module

        target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        backbone, tokenizer = load_backbone(config.model)
        encoder = TemplateEncoder(config.task.template, tokenizer, config.model.max_length, config.prompt.length)
        module = build_module(config, backbone, tokenizer, label_word_ids(config.task.label_words, tokenizer,
                                                                          encoder.mask_space))
        # what classifying uses: the prompt, the class head and the bottleneck (the estimator networks of the
        # information terms only serve training, and a PEFT export does not hold them)
        missing = sorted(n for n in module.trainable_names() - set(state) if n.startswith(FORWARD))
        if missing:
            raise InputError(f"the checkpoint lacks trainable tensor(s) {', '.join(missing[:3])}: not this run's")
        module.load_state_dict({k: v for k, v in state.items() if k in module.trainable_names()}, strict=False)
        return cls(config, module.to(target).eval(), tokenizer, encoder, target)

    # -- classifying -----------------------------------------------------------------------------------------
    def as_examples(self, inputs: Iterable[Union[str, dict, Example]]) -> List[Example]:
        """Strings (one-field templates), dicts of the template's fields (with optional id and label) or
        ``Example``s."""
        fields = self.encoder.fields
        examples = []
        for number, item in enumerate(inputs):
            if isinstance(item, Example):
                examples.append(item)
                continue
            if isinstance(item, str):
                if len(set(fields)) != 1:
                    raise InputError(f"the template has the fields {sorted(set(fields))}: give dicts, not strings")
                item = {fields[0]: item}
            examples.append(json_example(item, fields, self.labels, f"example {number}", number))
        return examples

    def probabilities(self, examples: Sequence[Example], progress: bool = False) -> torch.Tensor:
        """(N, classes) class probabilities in example order, scored as the run's test loop scores."""
        import torch

        from lit_infoprompt.model.cache import prompt_free_states
        from lit_infoprompt.model.prompt import InstancePrompt
        from lit_infoprompt.tasks.datamodule import Collator, encode_examples

        rows = encode_examples(list(examples), self.encoder)
        for index, row in enumerate(rows):
            row["index"], row["label"] = index, max(row["label"], 0)
        collate = Collator(self.tokenizer.pad_token_id)
        size = self.config.data.eval_batch_size
        if isinstance(self.module.prompt, InstancePrompt):  # P depends on each input's prompt-free <s> state
            self.module.free_mask, self.module.free_cls = prompt_free_states(self.module.backbone, rows, collate,
                                                                             size, self.device)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))  # the test loop's batches
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        out = torch.empty(len(rows), len(self.labels))
        autocast = self.device.type == "cuda" and self.config.trainer.precision == "bf16-mixed"
        from tqdm import tqdm

        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            for batch in tqdm(batches, desc="predict", unit="batch", file=sys.stderr,
                              disable=not progress or len(batches) < 5):
                inputs = {k: v.to(self.device) for k, v in collate([rows[i] for i in batch]).items()}
                out[batch] = self.module(inputs).float().softmax(-1).cpu()
        return out

    def predict(self, inputs: Iterable[Union[str, dict, Example]], progress: bool = False) -> List[dict]:
        """One record per example: its id, the predicted label (as the task's files spell it) and the class
        probabilities."""
        examples = self.as_examples(inputs)
        probs = self.probabilities(examples, progress)
        names = [str(label) for label in self.labels]
        return [{"id": e.id, "label": self.labels[int(p.argmax())],
                 "probs": {n: round(float(v), 6) for n, v in zip(names, p)}} for e, p in zip(examples, probs)]

    def evaluate(self, examples: Sequence[Example], progress: bool = False) -> Dict[str, float]:
        """The task's metrics (``test_<name>``, as summary.json names them) on labelled examples."""
        import torch

        from lit_infoprompt.train.metrics import build_metrics

        if any(e.label < 0 for e in examples):
            raise InputError("evaluate needs a label on every example")
        predictions = self.probabilities(examples, progress).argmax(-1)
        metrics = build_metrics(self.config.task.metrics, self.config.task.labels, prefix="")
        metrics.update(predictions, torch.tensor([e.label for e in examples]))
        return {f"test_{k}": float(v) for k, v in metrics.compute().items()}

    def read(self, path: Union[str, Path]) -> List[Example]:
        """Examples from a file: the task's own format (labelled), else JSON lines with the template's fields."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"--input {path}: no such file")
        try:
            return read_examples(path, self.config.task, self.encoder.fields)
        except InputError:
            if path.suffix not in (".jsonl", ".json"):
                raise
        examples = []
        for number, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise InputError(f"{path}:{number + 1}: not a JSON object") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number + 1}: not a JSON object")
            examples.append(json_example(row, self.encoder.fields, self.labels, f"{path}:{number + 1}", number))
        if not examples:
            raise InputError(f"{path}: no examples")
        return examples


def source_kind(path: Path) -> str:
    """``export`` (a folder written by ``export-peft``) or ``run`` (a run directory), read from the folder's files
    without importing torch; one error line for anything else."""
    if (path / "head_config.json").is_file() and (path / "adapter_model.safetensors").is_file():
        return "export"
    if (path / "config.yaml").is_file():
        return "run"
    if not path.is_dir():
        raise InputError(f"{path}: no such folder (a run directory or a PEFT export)")
    raise InputError(f"{path}: neither a run directory (config.yaml, checkpoints/) nor a PEFT export "
                     f"(head_config.json, adapter_model.safetensors)")


def json_example(row: Dict[str, Any], fields: Sequence[str], labels: Sequence[Any], where: str,
                 default_id: Any) -> Example:
    """A dict with the template's fields (and optionally id/idx and label) as an ``Example`` (label -1: none)."""
    absent = [f for f in dict.fromkeys(fields) if f not in row]
    if absent:
        raise InputError(f"{where}: missing the template field(s) {', '.join(absent)}")
    label = label_index(row["label"], labels, where) if row.get("label") is not None else -1
    return Example(row.get("id", row.get("idx", default_id)), {f: row[f] for f in fields}, label)


def predict_command(args: List[str], evaluate: bool = False) -> int:
    """``predict RUN_DIR --input FILE [--output FILE] [--device cpu|cuda]``; ``evaluate RUN_DIR --input FILE``."""
    import argparse

    name = "evaluate" if evaluate else "predict"
    parser = argparse.ArgumentParser(prog=f"python -m lit_infoprompt {name}", add_help=False)
    parser.add_argument("run")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output")
    parser.add_argument("--device")
    try:
        ns = parser.parse_args(args)
    except SystemExit:
        raise InputError(f"usage: python -m lit_infoprompt {name} <run dir | PEFT export> --input FILE"
                         + ("" if evaluate else " [--output FILE]") + " [--device cpu|cuda]") from None
    source_kind(Path(ns.run))  # both named files exist before torch is imported (the backbone loads for seconds)
    if not Path(ns.input).is_file():
        raise InputError(f"--input {ns.input}: no such file")
    clf = Classifier.load(ns.run, ns.device)
    examples = clf.read(ns.input)
    if evaluate:
        scores = clf.evaluate(examples, progress=True)
        print("  ".join(f"{k.removeprefix('test_')} {v:.4f}" for k, v in scores.items())
              + f"  ({len(examples)} examples, {ns.input})")
        print(json.dumps(scores))
        return 0
    records = clf.predict(examples, progress=True)
    lines = "".join(json.dumps(r, default=str) + "\n" for r in records)
    if ns.output:
        Path(ns.output).write_text(lines)
        print(f"wrote {len(records)} predictions to {ns.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0
