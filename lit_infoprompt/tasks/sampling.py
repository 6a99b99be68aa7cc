"""Few-shot splits (METHOD.md). ``per_class`` (LM-BFF): K per class for train, the next K per class for
dev. ``budget`` (the paper's 64 / 256 samples): a total, stratified over classes, and a dev set of the
same make-up. (Fixed split files, such as FewGLUE's, need no sampling.)

A split is a pure function of (task, protocol, K or budget, seed, source file bytes): the sampler owns its seeded
``random.Random`` (stable across Python versions, unlike numpy's Generator streams), and the checksum
covers every input plus the chosen ids, so two runs can be proven to have used the same data.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

from lit_infoprompt.errors import InputError


@dataclass
class FewShotSplit:
    train: List[int]  # positions in the source file's example list
    dev: List[int]
    warnings: List[str] = field(default_factory=list)


def _by_class(labels: Sequence[int], num_classes: int) -> Dict[int, List[int]]:
    by_class: Dict[int, List[int]] = {c: [] for c in range(num_classes)}
    for position, label in enumerate(labels):
        by_class[label].append(position)
    return by_class


def _draw(by_class: Dict[int, List[int]], counts: Dict[int, int], label_names, seed: int) -> FewShotSplit:
    """``counts[c]`` train examples of class c, then up to as many dev examples from the rest."""
    rng = random.Random(seed)
    train, dev, warnings = [], [], []
    for cls, positions in by_class.items():
        want = counts[cls]
        positions = list(positions)
        rng.shuffle(positions)
        train += positions[:want]
        dev += positions[want:2 * want]
        if len(positions) < 2 * want:
            warnings.append(f"class '{label_names[cls]}' has {len(positions)} examples: dev gets "
                            f"{max(len(positions) - want, 0)} of {want}")
    return FewShotSplit(train=sorted(train), dev=sorted(dev), warnings=warnings)


def sample_per_class(labels: Sequence[int], label_names: Sequence[Any], shots: int, seed: int) -> FewShotSplit:
    """Draw K train and up to K dev examples per class; train and dev never overlap.

    A class with fewer than K examples cannot fill train: that is an error. A class with fewer than 2K
    gives dev what is left (possibly nothing) and adds a warning.
    """
    by_class = _by_class(labels, len(label_names))
    for cls, positions in by_class.items():
        if len(positions) < shots:
            raise InputError(f"class '{label_names[cls]}' has {len(positions)} training examples, "
                             f"fewer than shots={shots}")
    return _draw(by_class, {c: shots for c in by_class}, label_names, seed)


def stratified_counts(class_sizes: Sequence[int], budget: int) -> List[int]:
    """Split ``budget`` over classes in proportion to their sizes (largest remainder, ties to the lower
    class index); the counts add up to ``budget`` exactly."""
    total = sum(class_sizes)
    exact = [budget * size / total for size in class_sizes]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda c: (-(exact[c] - counts[c]), c))
    for cls in by_remainder[: budget - sum(counts)]:
        counts[cls] += 1
    return counts


def sample_budget(labels: Sequence[int], label_names: Sequence[Any], budget: int, seed: int) -> FewShotSplit:
    """Draw ``budget`` train examples stratified over classes, and a dev set of the same make-up."""
    if budget > len(labels):
        raise InputError(f"data.budget={budget} is larger than the {len(labels)} training examples")
    by_class = _by_class(labels, len(label_names))
    counts = stratified_counts([len(by_class[c]) for c in by_class], budget)
    return _draw(by_class, dict(enumerate(counts)), label_names, seed)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_record(task: str, protocol: str, size: int, seed: int, files: Dict[str, Path],
                 train_ids: List[Any], dev_ids: List[Any]) -> dict:
    """What goes to ``split.json``: the inputs, the chosen example ids and a checksum over all of them.

    ``size`` is K (per_class), the budget (budget) or the fixed train size (fixed); ``files`` maps
    train/test (and dev for fixed splits) to their paths.
    """
    record = {"task": task, "protocol": protocol, "size": size, "seed": seed}
    for name, path in files.items():
        record[f"{name}_file"] = str(path)
        record[f"{name}_file_sha256"] = file_sha256(path)
    record.update({"train_ids": train_ids, "dev_ids": dev_ids})
    hashed = {k: v for k, v in record.items() if not k.endswith("_file")}  # paths may differ between machines
    record["checksum"] = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()
    return record
