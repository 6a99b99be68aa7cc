"""Run claims: a lock file per run of a grid, so two workers (or two sweeps sharing an out_dir) never train the
same run at once. A holder refreshes its lock every HEARTBEAT_S; a lock not refreshed for STALE_S, or naming a
process of this host that is gone (or a zombie), is taken over.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lit_infoprompt.analysis.runs import as_dict, experiment_key

HEARTBEAT_S = 20.0
STALE_S = 120.0
POLL_S = 2.0


def run_key(config) -> str:
    key = json.dumps(experiment_key(as_dict(config)), sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    lr = f"{config.optim.prompt_lr:g}"
    return f"{config.task.name}-{config.method.name}-seed{config.seed}-lr{lr}-{digest}"


def _held(lock: Path) -> bool:
    """Whether a live holder has the lock: refreshed within STALE_S, and (when it names a process of this host)
    that process still exists."""
    try:
        if time.time() - lock.stat().st_mtime >= STALE_S:
            return False
        holder = json.loads(lock.read_text() or "{}")
    except FileNotFoundError:
        return False
    except ValueError:  # being written right now
        return True
    if holder.get("host") == socket.gethostname() and holder.get("pid"):
        return _alive(int(holder["pid"]))
    return True


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs. A zombie does not: it was killed and only waits for its parent to
    reap it, which may never come (a killed sweep's workers are left to PID 1, and a container's may not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it just ended
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@contextmanager
def claim(lock: Path) -> Iterator[None]:
    """Hold ``lock`` for the body (created exclusively, refreshed every HEARTBEAT_S, removed after); wait while
    another live holder has it, take over a stale one."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if _held(lock):
                time.sleep(POLL_S)
                continue
            try:  # stale: its holder stopped refreshing it (killed); take it over
                lock.unlink()
            except FileNotFoundError:
                pass
    with os.fdopen(fd, "w") as handle:
        handle.write(note)
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(lock)
            except FileNotFoundError:
                return

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        try:
            lock.unlink()
        except FileNotFoundError:
            pass
