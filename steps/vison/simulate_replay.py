"""Replay an ELVIS day folder (simulated or real) as an acquisition over time (cook-book: "data
acquisition", what wait mode and eyegore watch).

``acquisitions(day_folder)`` groups the folder by ObsID in time order (the date in the names):
its HK file, its CCD frames, its EXP_LOG lines.  ``replay(out, day_folder, ...)`` writes them into
``out/{day folder name}/`` as ELVIS does: per ObsID the HK file, then the frames (each written
whole, in two halves ``half_written_s`` apart if asked, as a slow copy), then its rows appended
to the growing EXP_LOG (created with its header line when the first row comes) and its readings
to the day's HK file; between ObsIDs it waits their time gap divided by ``speed`` (never more
than ``max_wait_s``).  ``stop_after`` ObsIDs leaves the folder caught mid-acquisition, as the
independent sample was.

Simplified: one EXP_LOG and one day HK file per folder (ELVIS starts a new ``_NN`` HK file after a
restart); an ObsID's EXP_LOG lines arrive after all its frames.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from steps.vison.elvis import (
    FRAME_NAME,
    HK_NAME,
    ElvisFormatError,
    find_explogs,
    parse_elvis_date,
)

DAY_HK = re.compile(r"^HK_\d\d-\d\d-\d\d_ROE\d_\d\d\.txt$")


@dataclass
class Acquisition:
    obsid: int
    time: dt.datetime
    hk: Path | None = None
    frames: list[Path] = field(default_factory=list)
    explog_lines: list[bytes] = field(default_factory=list)


def _lines(path: Path) -> tuple[bytes, list[bytes]]:
    """Header line and the other lines of a text file, each with its line end."""
    lines = path.read_bytes().splitlines(keepends=True)
    if not lines:
        raise ElvisFormatError(path, "empty file")
    return lines[0], lines[1:]


def acquisitions(day_folder: str | Path) -> tuple[list[Acquisition], Path, bytes]:
    """The folder's ObsIDs in time order, the EXP_LOG they came from and its header line."""
    folder = Path(day_folder)
    logs = find_explogs(folder)
    if len(logs) != 1:
        raise ElvisFormatError(folder, f"replay needs one EXP_LOG, found {len(logs)}")
    by_obsid: dict[int, Acquisition] = {}

    def entry(obsid: int, date: str) -> Acquisition:
        return by_obsid.setdefault(obsid, Acquisition(obsid, parse_elvis_date(date)))

    for path in sorted(folder.iterdir()):
        if m := FRAME_NAME.match(path.name):
            entry(int(m["obsid"]), m["date"]).frames.append(path)
        elif m := HK_NAME.match(path.name):
            entry(int(m["obsid"]), m["date"]).hk = path
    header, rows = _lines(logs[0])
    for line in rows:
        first = line.split(b"\t", 1)[0]
        if not first.strip().isdigit() or int(first) not in by_obsid:
            raise ElvisFormatError(logs[0], f"row {line[:40]!r} names no ObsID of the folder's files")
        by_obsid[int(first)].explog_lines.append(line)
    return sorted(by_obsid.values(), key=lambda a: (a.time, a.obsid)), logs[0], header


def replay(out: str | Path, day_folder: str | Path, *, speed: float = 3600.0, max_wait_s: float = 2.0,
           stop_after: int | None = None, half_written_s: float = 0.0,
           sleep: Callable[[float], None] = time.sleep) -> list[Path]:
    """Write the acquisition of ``day_folder`` into ``out/{its name}``; returns the paths written,
    in order (an appended file each time it grows)."""
    source = Path(day_folder)
    items, explog, header = acquisitions(source)
    target = Path(out) / source.name
    target.mkdir(parents=True, exist_ok=True)
    day_hk = next((p for p in sorted(source.iterdir()) if DAY_HK.match(p.name)), None)
    written: list[Path] = []
    previous = None
    for item in items[:stop_after]:
        if previous is not None:
            sleep(min(max((item.time - previous).total_seconds(), 0.0) / speed, max_wait_s))
        previous = item.time
        for path in ([item.hk] if item.hk else []) + item.frames:
            written.append(_copy(path, target / path.name, half_written_s, sleep))
        if item.explog_lines:
            written.append(_append(target / explog.name, header, item.explog_lines))
        if day_hk is not None and item.hk is not None:
            hk_header, readings = _lines(item.hk)
            written.append(_append(target / day_hk.name, hk_header, readings))
    return written


def _copy(src: Path, dst: Path, half_written_s: float, sleep: Callable[[float], None]) -> Path:
    data = src.read_bytes()
    with open(dst, "wb") as fh:
        if half_written_s > 0:
            fh.write(data[: len(data) // 2])
            fh.flush()
            sleep(half_written_s)
            fh.write(data[len(data) // 2:])
        else:
            fh.write(data)
    return dst


def _append(path: Path, header: bytes, lines: list[bytes]) -> Path:
    with open(path, "ab") as fh:
        if fh.tell() == 0:
            fh.write(header)
        fh.writelines(lines)
    return path
