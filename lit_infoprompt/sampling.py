"""Few-shot splits (LM-BFF protocol, METHOD.md): K per class for train, the next K per class for dev.

A split is a pure function of (task, K, seed, source file bytes): the sampler owns its seeded
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


def sample_per_class(labels: Sequence[int], label_names: Sequence[Any], shots: int, seed: int) -> FewShotSplit:
    """Draw K train and up to K dev examples per class; train and dev never overlap.

    A class with fewer than K examples cannot fill train: that is an error. A class with fewer than 2K
    gives dev what is left (possibly nothing) and adds a warning.
    """
    rng = random.Random(seed)
    by_class: Dict[int, List[int]] = {c: [] for c in range(len(label_names))}
    for position, label in enumerate(labels):
        by_class[label].append(position)
    train, dev, warnings = [], [], []
    for cls, positions in by_class.items():
        if len(positions) < shots:
            raise InputError(f"class '{label_names[cls]}' has {len(positions)} training examples, "
                             f"fewer than shots={shots}")
        rng.shuffle(positions)
        train += positions[:shots]
        dev += positions[shots:2 * shots]
        if len(positions) < 2 * shots:
            warnings.append(f"class '{label_names[cls]}' has {len(positions)} examples: dev gets "
                            f"{len(positions) - shots} of {shots}")
    return FewShotSplit(train=sorted(train), dev=sorted(dev), warnings=warnings)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_record(task: str, shots: int, seed: int, train_file: Path, test_file: Path,
                 train_ids: List[Any], dev_ids: List[Any]) -> dict:
    """What goes to ``split.json``: the inputs, the chosen example ids and a checksum over all of them."""
    record = {
        "task": task, "protocol": "per_class", "shots": shots, "seed": seed,
        "train_file": str(train_file), "train_file_sha256": file_sha256(train_file),
        "test_file": str(test_file), "test_file_sha256": file_sha256(test_file),
        "train_ids": train_ids, "dev_ids": dev_ids,
    }
    hashed = {k: v for k, v in record.items() if k not in ("train_file", "test_file")}  # paths may differ
    record["checksum"] = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()
    return record
