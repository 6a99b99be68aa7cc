"""The W&B probe asks the way the client connects (an HTTP request, through the environment's proxy) and wants an
answer, not just a connection; wandb's own console messages go to the log. Only 127.0.0.1 is ever contacted: every
server here is a thread on a loopback port, and the one non-loopback name (wandb.invalid) is only ever handed to a
loopback proxy."""

import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lit_infoprompt.train import tracking

ROOT = Path(__file__).resolve().parents[1]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "WANDB_HTTP_PROXY", "WANDB_HTTPS_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch):
    """This machine's proxy settings must not route the loopback requests elsewhere."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a fake key: nothing here may reach W&B


class SilentServer:
    """Accepts every TCP connection and never sends a byte (a broken proxy, a captive portal)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def http_server(status: int):
    """A loopback HTTP server answering every GET with ``status``; records each request line."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.requestline)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def answering():
    servers = []

    def start(status):
        server, seen = http_server(status)
        servers.append(server)
        return server.server_address[1], seen
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def timed_probe():
    start = time.monotonic()
    answer = tracking.wandb_reachable()
    return answer, time.monotonic() - start


@pytest.mark.slow
def test_a_server_that_accepts_and_never_answers_is_unreachable_within_the_timeout(silent, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{silent.port}")
    answer, seconds = timed_probe()
    assert bool(answer) is False and seconds < 5
    assert answer.why == "did not answer within 3 s"
    assert silent.held  # the connection itself was taken: a TCP probe would have said yes


@pytest.mark.parametrize("status", [200, 401, 404])
def test_any_http_answer_counts(answering, monkeypatch, status):
    port, seen = answering(status)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    answer, seconds = timed_probe()
    assert bool(answer) is True and seconds < 5
    assert len(seen) == 1 and seen[0].startswith("GET / ")


def test_a_refused_connection_is_unreachable_at_once(monkeypatch):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: the connection is refused
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed.getsockname()[1]}")
        answer, seconds = timed_probe()
    assert bool(answer) is False and seconds < 2 and answer.why == "connection refused"


def test_the_probe_goes_through_the_proxy(answering, monkeypatch):
    port, seen = answering(200)
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.invalid")  # unresolvable: only the proxy can answer for it
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    answer, seconds = timed_probe()
    assert bool(answer) is True and seconds < 5
    assert seen == ["GET http://wandb.invalid/ HTTP/1.1"]  # the absolute form a client sends to its proxy


def test_w_and_b_own_proxy_setting_is_used_too(answering, monkeypatch):
    port, seen = answering(200)
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.invalid")
    monkeypatch.setenv("WANDB_HTTP_PROXY", f"http://127.0.0.1:{port}")
    assert bool(tracking.wandb_reachable()) is True and seen == ["GET http://wandb.invalid/ HTTP/1.1"]


@pytest.mark.slow
def test_a_silent_proxy_is_named_in_the_reason(silent, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.invalid")
    monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{silent.port}")
    answer, seconds = timed_probe()
    assert bool(answer) is False and seconds < 5
    assert answer.why == f"did not answer within 3 s through the proxy 127.0.0.1:{silent.port}"  # no password


def test_no_proxy_sends_the_request_straight_to_the_host(answering, silent, monkeypatch):
    port, seen = answering(200)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{silent.port}")  # would never answer
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    answer, _ = timed_probe()
    assert bool(answer) is True and len(seen) == 1 and not silent.held


@pytest.mark.slow
def test_an_online_run_behind_a_silent_server_logs_offline_with_the_reason(silent, monkeypatch, tmp_path, caplog):
    from lit_infoprompt.config import load_config

    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{silent.port}")
    started = []
    monkeypatch.setattr(tracking, "_start", lambda c, r, s, mode, d: (started.append(mode) or "logger", ""))
    with caplog.at_level(logging.WARNING, logger="lit_infoprompt.train.tracking"):
        logger = tracking.wandb_logger(load_config(["wandb.mode=online"]), tmp_path,
                                       {"protocol": "per_class", "size": 4})
    assert logger == "logger" and started == ["offline"]
    lines = [r.getMessage() for r in caplog.records if r.name == "lit_infoprompt.train.tracking"]
    assert len(lines) == 1
    assert lines[0].startswith(f"W&B: 127.0.0.1:{silent.port} cannot be reached: logging offline "
                               "(did not answer within 3 s); `wandb sync ")


WANDB_MESSAGES = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    from lit_infoprompt.config import load_config
    from lit_infoprompt.train import tracking

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
    logging.getLogger("lit_infoprompt.train.tracking").addHandler(Keep(logging.DEBUG))
    logging.getLogger("lit_infoprompt.train.tracking").setLevel(logging.DEBUG)
    out = Path(sys.argv[1])
    logger, why = tracking._start(load_config(["wandb.mode=offline"]), out, {"protocol": "per_class", "size": 4},
                                  "offline", out)
    assert logger is not None, why
    tracking.finish_wandb([logger], {"test_acc": 0.5})
    print("LOGGED:", " | ".join(records))
""")


def test_wandb_messages_go_to_the_log_not_the_console(tmp_path):
    """Lightning's WandbLogger makes wandb warn "The anonymous setting has no effect" on stderr; it is logged."""
    script = tmp_path / "start.py"
    script.write_text(WANDB_MESSAGES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update({"WANDB_ERROR_REPORTING": "false", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wandb:" not in result.stderr, result.stderr
    assert "The anonymous setting has no effect" in result.stdout
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
