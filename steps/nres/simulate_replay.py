"""Replay simulated (or any) NRES raw frames into a watched folder, as the archive delivers them.

``arrivals(root)`` yields every file under ``root/{site}/{instrument}/{day-obs}/raw/`` as an
:class:`Arrival` (its path relative to ``root``, its bytes, the UTC time it becomes available:
DATE-OBS + EXPTIME + readout), in the order of those times, so that the nights of several
sites interleave as they would at the archive.  ``replay(out, root, speed=...)`` writes them
under ``out`` with the same relative paths, waiting ``gap / speed`` between two arrivals (never
more than ``max_wait_s``), and optionally writes each file in two halves ``half_written_s``
apart, like a slow transfer: the watcher must wait for the second half.

Files whose primary header cannot be read (a truncated frame keeps its header, so this is only
for files that are not FITS at all) arrive last, in name order.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from steps.nres.simulate_detector import READOUT_S


@dataclass(frozen=True)
class Arrival:
    path: Path  # relative to the simulated root
    data: bytes
    time: dt.datetime | None  # UTC; None when the header could not be read


def _available(path: Path) -> dt.datetime | None:
    try:
        head = fits.getheader(path, 0)
        start = dt.datetime.fromisoformat(str(head["DATE-OBS"]))
        return start + dt.timedelta(seconds=float(head.get("EXPTIME", 0.0)) + READOUT_S)
    except (OSError, KeyError, ValueError):
        return None


def arrivals(root: str | Path) -> Iterator[Arrival]:
    """Every raw frame under ``root``, in the order the archive would deliver it."""
    root = Path(root)
    files = sorted(p for p in root.glob("*/*/*/raw/*") if p.is_file() and not p.name.startswith("."))
    timed = [(_available(p), p) for p in files]
    last = dt.datetime.max
    for when, path in sorted(timed, key=lambda tp: (tp[0] or last, tp[1].name)):
        yield Arrival(path.relative_to(root), path.read_bytes(), when)


def replay(out: str | Path, root: str | Path, *, speed: float = 3600.0, max_wait_s: float = 2.0,
           half_written_s: float = 0.0, sleep: Callable[[float], None] = time.sleep) -> list[Path]:
    """Write the frames of ``root`` into ``out`` in arrival order, ``speed`` times faster than
    they were observed; returns the paths written."""
    out = Path(out)
    written, previous = [], None
    for item in arrivals(root):
        if previous is not None and item.time is not None:
            sleep(min(max((item.time - previous).total_seconds(), 0.0) / speed, max_wait_s))
        previous = item.time or previous
        target = out / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            if half_written_s > 0:
                half = len(item.data) // 2
                fh.write(item.data[:half])
                fh.flush()
                sleep(half_written_s)
                fh.write(item.data[half:])
            else:
                fh.write(item.data)
        written.append(target)
    return written
