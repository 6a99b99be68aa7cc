"""The local pool of a grid (``workers=N``): N spawned worker processes that each run one job at a time, and
survive one of them dying.

The parent hands every worker its jobs one by one over the worker's own pipe, so when a worker dies (SIGKILL from
the out-of-memory killer, a driver fault) the parent knows which run it was running. Only that worker is replaced
(on the same device) and its run given to the new one, resumed from its checkpoint when it has one (its claim names
a dead process and is taken over); the other workers go on. A run whose worker died ``TRIES`` times is reported
failed. (A pool that breaks as a whole on one dead worker, as ``concurrent.futures`` does, would fail every run.)
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Dict, List, Optional, Sequence

TRIES = 2  # a run whose worker process dies this many times is reported failed


def _worker(connection, threads: int, device: Optional[str], target) -> None:
    """One worker: its share of the CPU threads and its GPU, then the jobs the parent sends, one at a time, each
    result sent back; it stops at None or when the parent is gone. CUDA reads CUDA_VISIBLE_DEVICES when it
    initialises (at a run's first CUDA call), so setting it here is in time."""
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            job = connection.recv()
            if job is None:
                return
            try:
                result = target(job)
            except Exception as err:  # noqa: BLE001 - execute never raises; a wrapper might
                result = {"error": f"{type(err).__name__}: {err}"}
            connection.send(result)
        except (EOFError, OSError):  # the parent is gone
            return


def died(exitcode: Optional[int]) -> str:
    """How a worker process ended, in words: 'killed by SIGKILL', 'exit status 1'."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _stop(process, connection) -> None:
    try:
        connection.send(None)
    except OSError:  # already gone
        pass
    process.join()
    connection.close()


def run_pool(jobs: Sequence, pending: List[int], workers: int, threads: int, devices: List[Optional[str]],
             target: Callable, done: Callable[[int, dict], None], report: Callable[[str], None]) -> None:
    """Run ``jobs[i]`` for every i of ``pending`` (in order) on ``workers`` processes, worker k pinned to
    ``devices[k]`` (a ``CUDA_VISIBLE_DEVICES`` entry, or None); ``done(i, result)`` for each as it finishes,
    ``report(line)`` when a worker dies and its run is given again. ``target`` must be importable by name (spawn)."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    queue = list(reversed(pending))  # pop() gives the next job; a run whose worker died goes back on top
    deaths = {i: 0 for i in pending}
    busy: Dict[int, tuple] = {}  # worker slot -> (process, connection, job index)

    def give(slot: int, process=None, connection=None) -> None:
        """The next job to the worker of ``slot``; a new worker first when it has none."""
        i = queue.pop()
        if process is None:
            connection, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs, threads, devices[slot], target),
                                      name=f"grid-worker-{slot}")
            process.start()
            theirs.close()  # the worker holds the only other end: its death reads as end of file here
        try:
            connection.send(jobs[i])
        except OSError:  # it died after its last result: found dead below, and this run counts that death
            pass
        busy[slot] = (process, connection, i)

    try:
        for slot in range(min(workers, len(queue))):
            give(slot)
        while busy:
            ready = set(wait([c for _, c, _ in busy.values()] + [p.sentinel for p, _, _ in busy.values()]))
            for slot, (process, connection, i) in list(busy.items()):
                if connection not in ready and process.sentinel not in ready:
                    continue
                try:
                    result = connection.recv()
                except (EOFError, OSError):  # the worker died running jobs[i]
                    del busy[slot]
                    process.join()
                    connection.close()
                    deaths[i] += 1
                    how = died(process.exitcode)
                    if deaths[i] < TRIES:
                        report(f"the worker running {jobs[i].method} seed {jobs[i].seed} died ({how}); "
                               f"the run goes to a new worker")
                        queue.append(i)
                    else:
                        done(i, {"error": f"WorkerDied: its worker process died {deaths[i]} times, the last "
                                          f"{how} (out of memory?)"})
                    if queue:
                        give(slot)
                    continue
                done(i, result)
                if queue:
                    give(slot, process, connection)
                else:
                    del busy[slot]
                    _stop(process, connection)
    finally:  # an interrupted grid (Ctrl-C, an error here) leaves no worker behind
        for process, connection, _ in busy.values():
            process.terminate()
            _stop(process, connection)
