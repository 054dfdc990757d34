"""A process pool in which a killed worker fails only the task it held.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (the kernel's
out-of-memory killer, a segfault in a native kernel): every pending future fails with
BrokenProcessPool and nobody knows which task was at fault.  Here each worker takes one task at
a time over its own pipe, so when a worker's process ends the pool knows the task it held,
reports it as :class:`~astroflow.errors.WorkerDied` with the signal, starts a fresh worker and
goes on.  Workers are spawned (never forked) and warm: each runs ``initializer`` once.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from astroflow.errors import WorkerDied


class RemoteError(Exception):
    """An exception raised in a worker, carried back as its type name, message and traceback."""

    def __init__(self, type_name: str, message: str, tb: str):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.remote_traceback = type_name, message, tb


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: Connection
    task: tuple | None = None  # (ticket, fn, args) while busy


def _serve(conn: Connection, initializer, initargs) -> None:
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        fn, args = msg
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the runner
            conn.send(("err", (type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))[-4000:])))


class WorkerPool:
    def __init__(self, n: int, initializer: Callable | None = None, initargs: tuple = ()):
        self.ctx = multiprocessing.get_context("spawn")
        self.initializer, self.initargs = initializer, initargs
        self.workers = [self._start() for _ in range(n)]
        self.queue: deque = deque()
        self.next_ticket = 0

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_serve, args=(child, self.initializer, self.initargs), daemon=True)
        p.start()
        child.close()
        return _Worker(p, parent)

    def submit(self, fn: Callable, *args) -> int:
        ticket = self.next_ticket
        self.next_ticket += 1
        self.queue.append((ticket, fn, args))
        self._dispatch()
        return ticket

    @property
    def busy(self) -> bool:
        return bool(self.queue) or any(w.task is not None for w in self.workers)

    def _dispatch(self) -> None:
        for w in self.workers:
            if w.task is None and self.queue:
                w.task = self.queue.popleft()
                _, fn, args = w.task
                try:
                    w.conn.send((fn, args))
                except (BrokenPipeError, OSError):
                    pass  # the worker is gone: wait() reports it

    def wait(self) -> list[tuple[int, object, BaseException | None]]:
        """Block until at least one task ends; returns ``(ticket, result, error)`` for each."""
        done: list[tuple[int, object, BaseException | None]] = []
        while not done and self.busy:
            busy = [w for w in self.workers if w.task is not None]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for k, w in enumerate(self.workers):
                if w.task is None:
                    continue
                if w.conn in ready:
                    try:
                        status, value = w.conn.recv()
                    except (EOFError, OSError):
                        status, value = None, None
                    if status == "ok":
                        done.append((w.task[0], value, None))
                        w.task = None
                        continue
                    if status == "err":
                        done.append((w.task[0], None, RemoteError(*value)))
                        w.task = None
                        continue
                if w.process.sentinel in ready or not w.process.is_alive():
                    w.process.join(timeout=5)
                    done.append((w.task[0], None, WorkerDied(_death(w.process.exitcode))))
                    w.conn.close()
                    self.workers[k] = self._start()
            self._dispatch()
        return done

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in self.workers:
            w.process.join(timeout=10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()

    def terminate(self) -> None:
        for w in self.workers:
            if w.process.is_alive():
                w.process.kill()
            w.process.join()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (the out-of-memory killer sends it)" if sig == signal.SIGKILL else ""
        return f"the worker was killed by {name} (signal {sig}){hint}"
    return f"the worker exited with status {exitcode}"
