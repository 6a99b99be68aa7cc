"""Official-file reader: labels to class indices; malformed lines, missing fields, unknown labels fail."""

import json
from types import SimpleNamespace

import pytest

from conftest import FIXTURES
from lit_infoprompt.config import DataConfig, load_config
from lit_infoprompt.errors import InputError
from lit_infoprompt.tasks.sources import read_examples, resolve_files, write_official

LABELS = ["entailment", "contradiction", "neutral"]
FIELDS = ["premise", "hypothesis"]
CB = load_config([]).task


def read_jsonl(path, fields, labels):
    task = load_config([]).task
    task.labels = labels
    return read_examples(path, task, fields)


def local(data_dir, **data):
    return DataConfig(dir=str(data_dir), cache_dir="/nonexistent", **data)


def write(tmp_path, *rows):
    path = tmp_path / "train.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reads_fixture_in_official_layout():
    files = resolve_files(CB, local(FIXTURES))
    assert files.test == FIXTURES / "superglue/CB/val.jsonl" and files.dev is None
    examples = read_jsonl(files.train, FIELDS, LABELS)
    assert len(examples) == 30 and {e.label for e in examples} == {0, 1, 2}
    assert examples[0].id == 0 and set(examples[0].fields) == set(FIELDS)


@pytest.mark.parametrize("row, message", [
    ('{"premise": "a", "hypothesis": ', r"train\.jsonl:2: malformed JSON"),
    ({"premise": "a", "label": "neutral"}, r"train\.jsonl:2: missing field 'hypothesis'"),
    ({"premise": "a", "hypothesis": "b", "label": "unsure"}, r"train\.jsonl:2: label 'unsure' is not one of"),
    ("[1, 2]", r"train\.jsonl:2: expected a JSON object"),
])
def test_bad_rows_fail_with_file_and_line(tmp_path, row, message):
    good = {"premise": "a", "hypothesis": "b", "label": "neutral", "idx": 0}
    with pytest.raises(InputError, match=message):
        read_jsonl(write(tmp_path, good, row), FIELDS, LABELS)


def test_boolean_labels_do_not_match_integers(tmp_path):
    path = write(tmp_path, {"premise": "a", "hypothesis": "b", "label": True})
    assert read_jsonl(path, FIELDS, [False, True])[0].label == 1
    with pytest.raises(InputError, match="label True is not one of"):
        read_jsonl(path, FIELDS, [0, 1])


def test_missing_data_dir_says_which_path(tmp_path):
    with pytest.raises(InputError, match=r"data file not found: .*superglue/CB/train\.jsonl"):
        resolve_files(CB, local(tmp_path))


def test_hub_rows_are_written_in_the_official_format(tmp_path):
    rows = [{"premise": "p", "hypothesis": "h", "idx": 0, "label": 2}]
    path = tmp_path / "val.jsonl"
    write_official(rows, ["e", "c", "n"], LABELS, path)
    assert json.loads(path.read_text()) == {"premise": "p", "hypothesis": "h", "idx": 0, "label": "neutral"}
    assert read_jsonl(path, FIELDS, LABELS)[0].label == 2


class FakeSplit(list):
    """Rows plus the ``features["label"].names`` of a hub ClassLabel."""
    features = {"label": SimpleNamespace(names=LABELS)}


@pytest.fixture
def hub_up(monkeypatch):
    """The hub counts as reachable (the downloads below are faked)."""
    from lit_infoprompt import hub
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "_reachable", {"hub": True})


def test_download_writes_the_official_layout_then_reads_it(tmp_path, monkeypatch, hub_up):
    import sys
    import types

    calls = []
    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda *args: calls.append(args) or {
        "train": FakeSplit([{"premise": "p", "hypothesis": "h", "idx": 0, "label": 1}]),
        "validation": FakeSplit([{"premise": "q", "hypothesis": "i", "idx": 0, "label": 0}])}
    monkeypatch.setitem(sys.modules, "datasets", fake)
    files = resolve_files(CB, DataConfig(dir=None, cache_dir=str(tmp_path)))
    train, test = files.train, files.test
    assert calls == [("aps/super_glue", "cb")]
    assert train == tmp_path / "superglue/CB/train.jsonl" and test == tmp_path / "superglue/CB/val.jsonl"
    assert read_jsonl(train, FIELDS, LABELS)[0].label == 1 and read_jsonl(test, FIELDS, LABELS)[0].label == 0
    resolve_files(CB, DataConfig(dir=None, cache_dir=str(tmp_path)))
    assert len(calls) == 1  # cached: a second call reads the files


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch, hub_up, caplog):
    import sys
    import types

    fake = types.ModuleType("datasets")

    def offline(*args):
        raise ConnectionError("no network\nlong details")
    fake.load_dataset = offline
    monkeypatch.setitem(sys.modules, "datasets", fake)
    rte = load_config(["task=rte"]).task
    with pytest.raises(InputError, match=r"downloading aps/super_glue/rte failed \(ConnectionError: no network\); give data.dir"):
        resolve_files(rte, DataConfig(dir=None, cache_dir=str(tmp_path)))
    # CB has a copy bundled with the package: a failed download falls back to it
    from lit_infoprompt.tasks.sources import BUNDLED
    assert resolve_files(CB, DataConfig(dir=None, cache_dir=str(tmp_path))).train == BUNDLED["superglue/CB"] / "train.jsonl"
    # ... and its notice names the real failure, not "the hub cannot be reached"
    assert "downloading aps/super_glue/cb failed (ConnectionError: no network)" in caplog.text


def test_the_fixed_protocol_says_where_fewglue_comes_from(tmp_path, hub_up):
    """FewGLUE's 32-example files are on no hub path the project downloads: the error says so and where they are,
    instead of advising a download that cannot supply them."""
    config = load_config(["task=rte", "data.protocol=fixed", f"data.cache_dir={tmp_path}"])
    with pytest.raises(InputError, match=r"data.protocol=fixed reads FewGLUE.s 32-example files .* which no download here provides: get them from github.com/THUDM/P-tuning"):
        resolve_files(config.task, config.data)
