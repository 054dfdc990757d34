"""One writer per run directory: an advisory lock that names its holder.

``RUN/.lock`` is held with ``flock`` for as long as a runner, a watcher or a redo writes the run.
The kernel releases it when the holder dies however it dies (``kill -9`` included), so a dead
holder's lock is simply taken over; the file also holds the holder's pid, host, start time and
command, which a refused second writer prints.  Re-entrant within one process (a watcher holds
it around many runs).  At a site the same guarantee comes from the Argo mutex per run name.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from astroflow.errors import RunLocked

LOCK = ".lock"
_held: dict[str, tuple[int, int]] = {}  # run dir -> (fd, depth)


def holder(run_dir: str | Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / LOCK).read_text() or "null")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@contextmanager
def run_lock(run_dir: str | Path):
    """Hold the run directory's lock; raises RunLocked naming the other holder."""
    run_dir = Path(run_dir).absolute()
    key = str(run_dir)
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        h = holder(run_dir) or {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["started"])) if "started" in h else "?"
        raise RunLocked(
            f"{run_dir} is being written by another process: pid {h.get('pid', '?')} on {h.get('host', '?')} "
            f"since {since} ({h.get('command', '?')}); wait for it to finish, or stop it") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "command": " ".join(sys.argv)[:300]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        fd, depth = _held[key]
        if depth <= 1:
            del _held[key]
            os.ftruncate(fd, 0)
            os.close(fd)
        else:
            _held[key] = (fd, depth - 1)
