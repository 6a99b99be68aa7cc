"""The researcher's path against a model hub on loopback (tests/loopback_hub.py): the real huggingface_hub,
transformers and datasets clients download roberta-large (a tiny one in its file layout) and the tasks' data
through HF_ENDPOINT, in subprocesses with their own empty caches, as on a fresh machine. Only 127.0.0.1 is used."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopback_hub import BUNDLED_CB, SUPERGLUE, Hub, Proxy, build_repos

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    return build_repos(tmp_path_factory.mktemp("hub-repos"))


@pytest.fixture
def hub(repos):
    server = Hub(repos).start()
    yield server
    server.stop()


def client_env(home: Path, endpoint: str, **extra) -> dict:
    """A fresh machine's environment: empty HF and project caches, the hub at ``endpoint``, no proxy, no offline."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().endswith("_PROXY") and k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                             "HF_DATASETS_OFFLINE", "LIT_INFOPROMPT_HUB")}
    env.update(HF_HOME=str(home / "hf"), HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1",
               LIT_INFOPROMPT_MODELS=str(home / "models"), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               NO_PROXY="", no_proxy="")
    env.update(extra)
    return env


def cli(env: dict, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lit_infoprompt", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def cli_on_a_terminal(env: dict, *args, timeout: int = 300) -> tuple:
    """(exit status, what the terminal showed) of the CLI run on a pseudo-terminal, as a person sees it (progress
    bars draw only on a terminal)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal has a width
    process = subprocess.Popen([sys.executable, "-m", "lit_infoprompt", *args], stdin=slave, stdout=slave,
                               stderr=slave, env=env, cwd=ROOT, close_fds=True)
    os.close(slave)
    shown, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        shown.append(data)
    code = process.wait(timeout=30)
    os.close(master)
    return code, b"".join(shown).decode(errors="replace").replace("\r", "\n")


def train_args(home: Path, *extra) -> list:
    return ["train", "task=cb", "model.name=roberta-large", f"data.cache_dir={home / 'data'}",
            f"out_dir={home / 'runs'}", "data.shots=4", "data.batch_size=4", "model.max_length=64", "prompt.length=4",
            "trainer.max_steps=2", "trainer.val_every=2", "trainer.accelerator=cpu", "-q", *extra]


def fetched(hub: Hub, start: int = 0, models_only: bool = False) -> list:
    """The file names whose bodies the hub sent since request ``start`` (of model repositories only)."""
    return [p.rsplit("/", 1)[1].split("?")[0] for m, p in hub.log[start:]
            if m == "GET" and "/resolve/" in p and not (models_only and p.startswith("/datasets/"))]


def test_first_run_downloads_in_view_and_the_second_downloads_nothing(hub, tmp_path):
    env = client_env(tmp_path, hub.url)
    code, shown = cli_on_a_terminal(env, *train_args(tmp_path)[:-1])  # without -q: the console a person sees
    assert code == 0, shown[-2000:]
    lines = shown.splitlines()
    said = [l for l in lines if "downloading roberta-large, " in l]
    assert len(said) == 1, shown[-2000:]
    assert "model.safetensors" in said[0] and "KB" in said[0] and str(tmp_path / "hf" / "hub") in said[0]
    assert any("model.safetensors" in l and "100%" in l for l in lines), shown[-3000:]  # huggingface_hub's bar
    assert any("downloading aps/super_glue cb to" in l for l in lines)
    assert any(l.startswith("backbone  roberta-large") for l in lines)
    files = fetched(hub)
    assert "model.safetensors" in files and "config.json" in files and "tokenizer.json" in files
    assert not {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "rust_model.ot"} & set(files)
    assert files.count("model.safetensors") == 1
    seen = len(hub.log)
    second = cli(env, *train_args(tmp_path))
    assert second.returncode == 0, second.stderr[-2000:]
    assert hub.log[seen:] == []  # no request at all: the model and the data come from the caches
    assert "downloading" not in second.stderr


def test_a_download_killed_midway_is_one_error_offline_and_completes_online(hub, tmp_path):
    env = client_env(tmp_path, hub.url)
    hub.faults.stall = {"model.safetensors": 20_000}  # the weights stop arriving after 20 kB
    process = subprocess.Popen([sys.executable, "-m", "lit_infoprompt", *train_args(tmp_path)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while "model.safetensors" not in fetched(hub) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)  # as a closed laptop or a killed job: no clean-up at all
    process.communicate(timeout=30)
    hub.faults.stall = {}

    offline = cli({**env, "HF_HUB_OFFLINE": "1"}, *train_args(tmp_path))
    errors = [l for l in offline.stderr.splitlines() if l.strip()]
    assert offline.returncode == 2 and len(errors) == 1 and "Traceback" not in offline.stderr, offline.stderr[-2000:]
    assert errors[0].startswith("error: model 'roberta-large' is only partly in the local Hugging Face cache")
    assert "no weights" in errors[0] and "make fetch MODEL=roberta-large" in errors[0]

    start = len(hub.log)
    online = cli(env, *train_args(tmp_path))
    assert online.returncode == 0, online.stderr[-2000:]
    assert fetched(hub, start, models_only=True) == ["model.safetensors"]  # the rest is kept; the weights come again


def test_a_cut_connection_resumes_and_a_dead_one_is_one_line(hub, tmp_path):
    env = client_env(tmp_path, hub.url)
    hub.faults.cut = {"model.safetensors": 10_000}  # the connection drops mid-file, once
    once = cli(env, *train_args(tmp_path))
    assert once.returncode == 0, once.stderr[-2000:]
    assert any(m == "GET" and p.endswith("model.safetensors") for m, p in hub.log)
    assert "Trying to resume download" in once.stderr  # huggingface_hub resumes it with a byte range
    home = tmp_path / "again"
    hub.faults.update({"cut": {"model.safetensors": 10_000}, "repeat": True})  # every retry is cut too
    try:
        dead = cli(client_env(home, hub.url), *train_args(home))
    finally:
        hub.faults.update({"cut": {}, "repeat": False})
    errors = [l for l in dead.stderr.splitlines() if l.startswith("error:")]
    assert dead.returncode == 2 and len(errors) == 1 and "Traceback" not in dead.stderr, dead.stderr[-2000:]
    assert "downloading roberta-large/model.safetensors failed" in errors[0] and "run the same command" in errors[0]
    again = cli(client_env(home, hub.url), *train_args(home))
    assert again.returncode == 0, again.stderr[-2000:]


PROBE = ("from lit_infoprompt import hub, fetch; print(hub.hub_reachable()); print(hub.resolve_model('auto')[0]); "
         "print(fetch.ensure_model('roberta-large'))")


def test_through_a_proxy_the_default_backbone_is_roberta_large(hub, tmp_path):
    proxy = Proxy(hub.server_address[1]).start()
    try:
        env = client_env(tmp_path, "http://hub.invalid", HTTP_PROXY=proxy.url, HTTPS_PROXY=proxy.url)
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["True", "roberta-large", "roberta-large"]
        assert any("/resolve/" in url and url.startswith("http://hub.invalid/") for url in proxy.log)
        bypass = {**env, "NO_PROXY": "hub.invalid", "no_proxy": "hub.invalid"}  # the proxy is not used for it
        out = subprocess.run([sys.executable, "-c", "from lit_infoprompt import hub; print(hub.hub_reachable())"],
                             env=bypass, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.stdout.split() == ["False"]
    finally:
        proxy.stop()


FETCH_ONE = "task=sst2", "model.name=roberta-large"


def test_three_processes_fetching_at_once_all_succeed_and_fetch_once(hub, tmp_path):
    """Three processes (a grid's workers, a SLURM array) fetch the same model and task from an empty cache at once:
    all succeed, one downloads each (the others wait on its lock, then read), no temporary file is left."""
    hub.faults.delay = 0.2  # a slow hub: the three overlap for seconds
    failures = []
    for trial in range(5):
        home = tmp_path / f"trial{trial}"
        env = client_env(home, hub.url)
        start = len(hub.log)
        processes = [subprocess.Popen([sys.executable, "-m", "lit_infoprompt", "fetch", *FETCH_ONE,
                                       f"data.cache_dir={home / 'data'}"], env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
        failures += [err[-1500:] for code, err in results if code != 0]
        said = "\n".join(err for _, err in results)
        assert said.count("downloading roberta-large, ") == 1 and said.count("downloading nyu-mll/glue sst2") == 1, said
        assert fetched(hub, start).count("model.safetensors") == 1
        folder = home / "data" / "glue" / "SST-2"
        assert len((folder / "train.tsv").read_text().splitlines()) == 13
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert failures == []


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    """Both writers finish and the file is one writer's whole text (a shared temporary name made one of them fail:
    its file was renamed away under it)."""
    import threading

    from lit_infoprompt.tasks.sources import _atomic_write

    target = tmp_path / "train.tsv"
    both_open = threading.Barrier(2, timeout=10)
    errors = []

    def lines(tag):
        yield f"{tag} first\n"
        both_open.wait()  # both temporary files are open and half written
        yield f"{tag} second\n"

    def write(tag):
        try:
            _atomic_write(target, lines(tag))
        except Exception as err:  # noqa: BLE001 - the failure under test
            errors.append(err)

    threads = [threading.Thread(target=write, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert target.read_text() in ("a first\na second\n", "b first\nb second\n")
    assert [p.name for p in tmp_path.iterdir()] == ["train.tsv"]


def source_files(task: str, config) -> tuple:
    """The official files the loopback hub's parquet was made from (loopback_hub.build_dataset_repos)."""
    if task == "cb":
        folder = BUNDLED_CB
    else:
        folder = FIXTURES / config.task.folder
    train = folder / config.task.train_file
    return (train if train.is_file() else folder / config.task.test_file), folder / config.task.test_file


def fields_of(task: str, config) -> list:
    from lit_infoprompt.tasks.sources import FORMAT_FIELDS

    if config.task.format in FORMAT_FIELDS:
        return sorted(FORMAT_FIELDS[config.task.format])
    return [c for c in SUPERGLUE[task][1] if c != "idx"]


@pytest.mark.parametrize("task", ["cb", "rte", "boolq", "wic", "copa", "sst2", "mrpc", "cola", "semeval"])
def test_every_task_downloads_to_the_official_files_it_was_made_from(hub, tmp_path, task):
    """What the hub serves (the fixtures as parquet, with the hub cards' schemas and class orders, unlabelled test
    splits) comes back through datasets and the project's writers as the examples of the official files."""
    from lit_infoprompt.config import load_config
    from lit_infoprompt.tasks.sources import read_examples, resolve_files

    out = cli(client_env(tmp_path, hub.url), "fetch", f"task={task}", f"data.cache_dir={tmp_path / 'data'}",
              timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ready: data of " + task in out.stdout
    config = load_config([f"task={task}", f"data.cache_dir={tmp_path / 'data'}", "data.protocol=budget"])
    got = resolve_files(config.task, config.data)
    assert got.train.parent == tmp_path / "data" / config.task.folder  # downloaded, not a fallback
    fields = fields_of(task, config)
    for mine, theirs in zip((got.train, got.test), source_files(task, config)):
        a = read_examples(mine, config.task, fields)
        b = read_examples(theirs, config.task, fields)
        assert len(a) == len(b) > 0
        assert [(e.fields, e.label) for e in a] == [(e.fields, e.label) for e in b]


def test_fetch_paper_then_the_offline_plan_lacks_nothing(hub, tmp_path):
    """A login node runs `make fetch PAPER=1`; the compute nodes' `make paper PLAN=1` under HF_HUB_OFFLINE=1 then
    lacks nothing. Without the fetch, the plan lists what is missing and the line that gets it."""
    env = client_env(tmp_path, hub.url)
    cache = f"data.cache_dir={tmp_path / 'data'}"
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    before = cli(offline, "paper", "plan=true", cache, f"out_dir={tmp_path / 'runs'}")
    assert before.returncode == 0, before.stderr[-2000:]
    lacking = [l for l in before.stdout.splitlines() if l.startswith("not in the local caches yet:")]
    assert len(lacking) == 1 and "model roberta-large (not in the Hugging Face cache" in lacking[0]
    for task in ("boolq", "cola", "mrpc", "rte", "semeval", "sst2", "wic", "copa"):
        assert f"data of {task}:" in lacking[0]
    assert "data of cb:" not in lacking[0]  # the bundled copy
    assert "make fetch PAPER=1" in before.stdout
    fetch = cli(env, "fetch", "paper=true", cache, timeout=600)
    assert fetch.returncode == 0, fetch.stderr[-2000:]
    ready = {l.split()[3] for l in fetch.stdout.splitlines() if l.startswith("ready: data of ")}
    assert ready == {"boolq", "cb", "cola", "copa", "mrpc", "rte", "semeval", "sst2", "wic"}, fetch.stdout
    assert "ready: model roberta-large" in fetch.stdout
    after = cli(offline, "paper", "plan=true", cache, f"out_dir={tmp_path / 'runs'}")
    assert after.returncode == 0, after.stderr[-2000:]
    assert "inputs: the backbone and every task's data are in the local caches" in after.stdout
    assert "not in the local caches" not in after.stdout
