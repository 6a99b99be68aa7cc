"""Where each task's examples come from: a local folder in the official layout, or the hub.

A task's YAML names its folder, files, reader format and hub id. Readers (a plain dict by format) turn
every file into ``Example``s whose label is the class index in the task's ``labels`` order: label
formats (strings, JSON booleans, ints, relation names) are mapped in ``label_index`` and nowhere else.
A hub download is written in the official file format under ``data.cache_dir`` and read by the same
reader as a local copy, so one set of checks covers both. When no ``data.dir`` is given and the dataset hub
cannot be reached, CB falls back to the copy bundled with the package (``data/cb``, see its PROVENANCE.md);
other tasks stop with one line on how to get their files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from lit_infoprompt.config import DataConfig, TaskConfig
from lit_infoprompt.errors import InputError

log = logging.getLogger(__name__)
# task folder -> the official files bundled with the package (used without data.dir when the hub is unreachable)
BUNDLED = {"superglue/CB": Path(__file__).parent / "data" / "cb"}


@dataclass
class Example:
    id: Any  # the file's own example id
    fields: Dict[str, Any]  # text fields the template uses
    label: int  # class index in the task's label order


@dataclass
class SplitFiles:
    train: Path  # pool for sampling, or the fixed train file
    test: Path
    dev: Optional[Path] = None  # fixed dev file (protocol=fixed)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # True must not match 1 (JSON booleans vs COPA's ints)


def label_index(raw: Any, labels: Sequence[Any], where: str) -> int:
    for index, label in enumerate(labels):
        if _same(raw, label):
            return index
    raise InputError(f"{where}: label {raw!r} is not one of the task's labels {list(labels)}")


def _example(row: dict, fields: Sequence[str], labels, label_key: str, where: str, default_id) -> Example:
    for name in (*fields, label_key):
        if name not in row:
            raise InputError(f"{where}: missing field '{name}'")
    return Example(id=row.get("idx", row.get("id", default_id)), fields={f: row[f] for f in fields},
                   label=label_index(row[label_key], labels, where))


def _jsonl_rows(path: Path):
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
            yield number, where, row


def read_superglue(path: Path, fields: Sequence[str], labels: Sequence[Any]) -> List[Example]:
    """SuperGLUE jsonl: one object per line with the task's fields and ``label``."""
    return [_example(row, fields, labels, "label", where, number - 1) for number, where, row in _jsonl_rows(path)]


def _spans_to_fields(tokens: List[str], head: Sequence[int], tail: Sequence[int]) -> Dict[str, str]:
    return {"sentence": " ".join(tokens), "e1": " ".join(tokens[head[0]:head[1]]),
            "e2": " ".join(tokens[tail[0]:tail[1]])}


def read_relation(path: Path, fields: Sequence[str], labels: Sequence[Any]) -> List[Example]:
    """Generic relation jsonl: {"tokens": [...], "head": [start, end), "tail": [start, end), "relation": ...}.

    Gives the template the fields sentence (tokens joined by spaces), e1 (head span) and e2 (tail span).
    """
    examples = []
    for number, where, row in _jsonl_rows(path):
        for key in ("tokens", "head", "tail", "relation"):
            if key not in row:
                raise InputError(f"{where}: missing field '{key}'")
        spans = [row["head"], row["tail"]]
        if not all(isinstance(s, list) and len(s) == 2 and 0 <= s[0] < s[1] <= len(row["tokens"]) for s in spans):
            raise InputError(f"{where}: head/tail must be [start, end) token spans inside tokens")
        flat = {**_spans_to_fields(row["tokens"], *spans), "relation": row["relation"]}
        examples.append(_example(flat, fields, labels, "relation", where, row.get("id", number - 1)))
    return examples


_MARKED = re.compile(r"<e1>(.*?)</e1>.*?<e2>(.*?)</e2>", re.S)


def read_semeval(path: Path, fields: Sequence[str], labels: Sequence[Any]) -> List[Example]:
    """SemEval-2010 Task 8 official TXT: blocks of `id<TAB>"sentence"`, label, `Comment: ...`, blank line.

    Fields: sentence (entity markers removed), e1, e2 (the marked entities).
    """
    lines = path.read_text().replace("\r\n", "\n").split("\n")
    examples, number = [], 0
    while number < len(lines):
        if not lines[number].strip():
            number += 1
            continue
        where = f"{path}:{number + 1}"
        head, _, quoted = lines[number].partition("\t")
        label = lines[number + 1].strip() if number + 1 < len(lines) else ""
        match = _MARKED.search(quoted)
        if not head.strip().isdigit() or not quoted.startswith('"') or not quoted.endswith('"') or not match:
            raise InputError(f"{where}: expected 'id<TAB>\"sentence with <e1>..</e1> and <e2>..</e2>\"'")
        sentence = re.sub(r"</?e[12]>", "", quoted[1:-1])
        row = {"id": int(head), "sentence": sentence, "e1": match.group(1), "e2": match.group(2), "relation": label}
        examples.append(_example(row, fields, labels, "relation", where, int(head)))
        number += 3  # sentence, label, comment; the blank line is skipped above
    return examples


# GLUE tsv layouts: (header line?, column names in order). The label column is "label"; text columns are fields.
GLUE_LAYOUTS = {
    "glue-sst2": (True, ("sentence", "label")),
    "glue-mrpc": (True, ("label", "id1", "id2", "sentence1", "sentence2")),  # header "Quality\t#1 ID\t..."
    "glue-cola": (False, ("source", "label", "mark", "sentence")),  # no header; mark: the original '*' or empty
}
GLUE_TEXT = {"glue-sst2": {"sentence"}, "glue-mrpc": {"sentence1", "sentence2"}, "glue-cola": {"sentence"}}


def read_glue(path: Path, fields: Sequence[str], labels: Sequence[Any], layout: str) -> List[Example]:
    """A GLUE tsv file in its official layout (``GLUE_LAYOUTS``): UTF-8 (a BOM, as in MRPC, is skipped), one row
    per line, tab-separated; a row with another number of columns or an unknown label is an error naming the
    file and line. Labels are the strings of the file ("0"/"1")."""
    header, columns = GLUE_LAYOUTS[layout]
    examples = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if (header and number == 1) or not line.strip():
                continue
            where = f"{path}:{number}"
            cells = line.split("\t")
            if len(cells) != len(columns):
                raise InputError(f"{where}: expected {len(columns)} tab-separated columns ({', '.join(columns)}), "
                                 f"found {len(cells)}")
            row = dict(zip(columns, cells))
            examples.append(_example(row, fields, labels, "label", where, number - 1 - header))
    return examples


READERS: Dict[str, Callable[[Path, Sequence[str], Sequence[Any]], List[Example]]] = {
    "superglue": read_superglue,
    "semeval": read_semeval,
    "relation": read_relation,
    **{layout: (lambda layout: lambda path, fields, labels: read_glue(path, fields, labels, layout))(layout)
       for layout in GLUE_LAYOUTS},
}
FORMAT_FIELDS = {"semeval": {"sentence", "e1", "e2"}, "relation": {"sentence", "e1", "e2"}, **GLUE_TEXT}


def read_examples(path: Path, task: TaskConfig, fields: Sequence[str]) -> List[Example]:
    provided = FORMAT_FIELDS.get(task.format)
    if provided is not None and set(fields) - provided:
        raise InputError(f"template field(s) {sorted(set(fields) - provided)} are not given by the {task.format} "
                         f"format (it gives {', '.join(sorted(provided))})")
    examples = READERS[task.format](path, fields, task.labels)
    if not examples:
        raise InputError(f"{path}: no examples")
    return examples


FEWGLUE_SOURCE = "github.com/THUDM/P-tuning, folder FewGLUE_32dev/<Task>/{train,dev32}.jsonl"


def split_files(task: TaskConfig, data: DataConfig) -> SplitFiles:
    """The files a run reads, where they are expected (``data.dir``, else ``data.cache_dir``); nothing is fetched."""
    root = Path(data.dir if data.dir else data.cache_dir).expanduser()
    folder = root / task.folder
    files = SplitFiles(folder / task.train_file, folder / task.test_file)
    if data.protocol == "fixed" or (not files.train.is_file() and task.fixed_folder
                                    and (root / task.fixed_folder / "train.jsonl").is_file()):
        fixed = root / (task.fixed_folder or "")
        if not task.fixed_folder:
            raise InputError(f"data.protocol=fixed needs task.fixed_folder (task {task.name} has none)")
        files = SplitFiles(fixed / "train.jsonl", files.test, fixed / "dev32.jsonl")
    return files


def _present(files: SplitFiles) -> bool:
    return all(p is None or p.is_file() for p in (files.train, files.test, files.dev))


def data_state(config) -> Optional[str]:
    """None when a run with this config finds its data without network; else what is missing, in words."""
    task, data = config.task, config.data
    files = split_files(task, data)
    if _present(files):
        return None
    if data.dir is None and task.folder in BUNDLED and data.protocol != "fixed":
        return None  # the bundled copy
    absent = [p for p in (files.train, files.test, files.dev) if p is not None and not p.is_file()]
    return f"{', '.join(str(p) for p in absent)} not found"


def resolve_files(task: TaskConfig, data: DataConfig) -> SplitFiles:
    """The files a run reads, downloading into ``data.cache_dir`` when no ``data.dir`` is given."""
    root = Path(data.dir if data.dir else data.cache_dir).expanduser()
    folder = root / task.folder
    files = split_files(task, data)
    if data.dir is None and not _present(files):
        if data.protocol == "fixed":
            raise InputError(f"data.protocol=fixed reads FewGLUE's 32-example files ({files.train}, {files.dev}), "
                             f"which no download here provides: get them from {FEWGLUE_SOURCE}, put them in "
                             f"<DIR>/{task.fixed_folder}/ with the task's {task.test_file} in <DIR>/{task.folder}/ and "
                             f"pass DATA_DIR=<DIR>")
        bundled = BUNDLED.get(task.folder)
        if bundled is not None:
            failure = download(task, folder, fallback=True)
            if failure is not None:
                log.warning("NOTICE data: %s and data.dir is unset: reading the CB copy bundled with the package (%s, "
                            "official SuperGLUE files; see PROVENANCE.md there)", failure, bundled)
                return SplitFiles(bundled / task.train_file, bundled / task.test_file)
        else:
            download(task, folder)
    for path in (files.train, files.test, files.dev):
        if path is not None and not path.is_file():
            how = (f"leave data.dir unset to download {'/'.join(task.hub)}" if task.hub else
                   "this task has no download: place the files there")
            raise InputError(f"data file not found: {path} (give data.dir=<folder holding {task.folder}/>, or {how})")
    return files


def download(task: TaskConfig, folder: Path, fallback: bool = False) -> Optional[str]:
    """Fetch the task from the hub and write it in the official file format of ``task.format`` (None: done, or
    another process did it meanwhile). With ``fallback`` (a bundled copy exists), return why it failed instead of
    raising. One lock per task folder: processes started together download it once."""
    from lit_infoprompt.fetch import held
    from lit_infoprompt.hub import hub_reachable, unreachable_reason

    if not task.hub:
        return "the task has no download"  # the caller reports the missing files
    if not hub_reachable(data=True):
        if fallback:
            return unreachable_reason(data=True)
        raise InputError(f"no data for task {task.name}: {unreachable_reason(data=True)} and data.dir is unset. "
                         f"Put the official {task.train_file} and {task.test_file} in <DIR>/{task.folder}/ and pass "
                         f"DATA_DIR=<DIR> (data.dir=<DIR>); or run `make fetch TASK={task.name}` where the hub is "
                         f"reachable: that writes them to {folder}")
    with held(folder.parent / f".{folder.name}.lock", "/".join(task.hub)):
        if (folder / task.train_file).is_file() and (folder / task.test_file).is_file():
            return None  # another process wrote them while this one waited
        return _download(task, folder, fallback)


def _download(task: TaskConfig, folder: Path, fallback: bool) -> Optional[str]:
    try:
        import datasets
    except ImportError:
        raise InputError("downloading data needs the 'datasets' package: pip install datasets") from None
    log.warning("downloading %s to %s", " ".join(task.hub), folder)
    try:
        hub = datasets.load_dataset(*task.hub)
    except Exception as err:  # network, auth, rate limit or hub errors all mean: no data; say which
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        why = f"downloading {'/'.join(task.hub)} failed ({type(err).__name__}{': ' + first if first else ''})"
        if fallback:
            return why
        raise InputError(f"{why}; give data.dir=<local folder>") from None
    folder.mkdir(parents=True, exist_ok=True)
    test_split = "validation" if "validation" in hub else "test"
    label_key = "relation" if task.format == "semeval" else "label"
    names = hub["train"].features[label_key].names
    if len(names) != len(task.labels):
        raise InputError(f"{'/'.join(task.hub)} has {len(names)} classes, task {task.name} has {len(task.labels)}")
    for split, filename in (("train", task.train_file), (test_split, task.test_file)):
        WRITERS[task.format](hub[split], names, task.labels, folder / filename)
    return None


def _atomic_write(path: Path, lines) -> None:
    """Write through a temporary file of this process's own (never a shared name) and rename it into place, so a
    reader never sees a half-written file that looks complete."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.writelines(lines)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_official(rows, label_names: Sequence[str], labels: Sequence[Any], path: Path) -> None:
    """SuperGLUE jsonl rows with the label spelled as the official files spell it.

    The task's ``labels`` are listed in the hub's class order, so hub class i is written as labels[i]
    (CB "neutral", BoolQ/WiC false/true, COPA 0/1), whatever the hub calls the class.
    """
    _atomic_write(path, (json.dumps({**row, "label": labels[row["label"]]}) + "\n" for row in rows))


def write_semeval(rows, label_names: Sequence[str], labels: Sequence[Any], path: Path) -> None:
    """SemEval hub rows ({sentence, relation}) as the official TXT blocks."""
    _atomic_write(path, (f'{i}\t"{row["sentence"]}"\n{label_names[row["relation"]]}\nComment:\n\n'
                         for i, row in enumerate(rows, start=1)))


GLUE_HEADERS = {"glue-sst2": "sentence\tlabel", "glue-mrpc": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"}


def write_glue(layout: str):
    """Hub GLUE rows ({sentence | sentence1, sentence2}, label, idx) as the official tsv of ``layout``."""
    _, columns = GLUE_LAYOUTS[layout]

    def write(rows, label_names: Sequence[str], labels: Sequence[Any], path: Path) -> None:
        def line(row) -> str:
            cells = {**row, "label": str(labels[row["label"]]), "id1": row.get("idx", ""), "id2": row.get("idx", ""),
                     "source": "hub", "mark": ""}
            return "\t".join(str(cells[c]).replace("\t", " ").replace("\n", " ") for c in columns) + "\n"
        head = [GLUE_HEADERS[layout] + "\n"] if layout in GLUE_HEADERS else []
        _atomic_write(path, head + [line(row) for row in rows])
    return write


WRITERS = {"superglue": write_official, "semeval": write_semeval, **{l: write_glue(l) for l in GLUE_LAYOUTS}}
