"""Where each task's examples come from: a local folder in the official layout, or the hub.

Both paths end in the same place: the hub's rows are written to ``<cache_dir>/<layout>`` in the official
file format, then read by the same reader as a local copy. One reader means one set of checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from lit_infoprompt.errors import InputError


@dataclass(frozen=True)
class TaskSource:
    folder: str  # relative to the data root, e.g. superglue/CB
    train: str  # file the few-shot train/dev examples are drawn from
    test: str  # official file used as the test set
    hub: tuple  # (dataset id, config) on the Hugging Face hub
    hub_splits: tuple = ("train", "validation")  # hub splits written as (train, test) files


# Registry of tasks with downloadable sources; the label order is the task's YAML `labels`.
SOURCES: Dict[str, TaskSource] = {
    "cb": TaskSource("superglue/CB", "train.jsonl", "val.jsonl", ("aps/super_glue", "cb")),
}


@dataclass
class Example:
    id: Any  # the file's own example id (idx)
    fields: Dict[str, Any]  # text fields the template uses
    label: int  # class index in the task's label order


def source_for(task: str) -> TaskSource:
    if task not in SOURCES:
        raise InputError(f"unknown task '{task}' (known: {', '.join(sorted(SOURCES))})")
    return SOURCES[task]


def resolve_files(task: str, data_dir: Optional[str], cache_dir: str) -> tuple[Path, Path]:
    """Return (train file, test file), downloading into ``cache_dir`` when no ``data_dir`` is given."""
    source = source_for(task)
    root = Path(data_dir if data_dir else cache_dir).expanduser()
    folder = root / source.folder
    train, test = folder / source.train, folder / source.test
    if data_dir is None and not (train.is_file() and test.is_file()):
        download(source, folder)
    for path in (train, test):
        if not path.is_file():
            raise InputError(f"data file not found: {path} (give data.dir=<folder holding {source.folder}/> "
                             f"or leave data.dir unset to download {source.hub[0]}/{source.hub[1]})")
    return train, test


def download(source: TaskSource, folder: Path) -> None:
    """Fetch the task from the hub and write it in the official jsonl layout (labels as the files spell them)."""
    try:
        import datasets
    except ImportError:
        raise InputError("downloading data needs the 'datasets' package: pip install datasets") from None
    try:
        hub = datasets.load_dataset(*source.hub)
    except Exception as err:  # network, auth or hub errors all mean: no data
        raise InputError(f"could not download {source.hub[0]}/{source.hub[1]}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}; give data.dir=<local folder>") from None
    folder.mkdir(parents=True, exist_ok=True)
    names = hub[source.hub_splits[0]].features["label"].names
    for split, filename in zip(source.hub_splits, (source.train, source.test)):
        write_official(hub[split], names, folder / filename)


def write_official(rows, label_names: Sequence[str], path: Path) -> None:
    """Write hub rows (integer ClassLabel) as official jsonl rows (label written as its name)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        for row in rows:
            row = dict(row)
            row["label"] = label_names[row["label"]]
            out.write(json.dumps(row) + "\n")
    tmp.replace(path)  # never leave a half-written file that looks complete


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # True must not match 1 (JSON booleans vs COPA's ints)


def label_index(raw: Any, labels: Sequence[Any], where: str) -> int:
    for index, label in enumerate(labels):
        if _same(raw, label):
            return index
    raise InputError(f"{where}: label {raw!r} is not one of the task's labels {list(labels)}")


def read_jsonl(path: Path, fields: Sequence[str], labels: Sequence[Any]) -> List[Example]:
    """Read one official jsonl file; malformed lines, missing fields and unknown labels fail with file:line."""
    examples = []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{where}: malformed JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{where}: expected a JSON object")
            for name in (*fields, "label"):
                if name not in row:
                    raise InputError(f"{where}: missing field '{name}'")
            examples.append(Example(id=row.get("idx", number - 1), fields={f: row[f] for f in fields},
                                    label=label_index(row["label"], labels, where)))
    if not examples:
        raise InputError(f"{path}: no examples")
    return examples
