"""Data that arrives over time: which raw files a watched run may read, and the night they belong to.

Observatory pipelines (NRES, SEDM, the Euclid VIS ground tests) receive frames all night.  A
pipeline that expects this declares :class:`Arrivals` (the settings field holding the watched
folder, glob patterns under it, and a completeness check); a run fed by ``astroflow watch``
locally, or by Argo Events at a site, is a *watched run*: its steps see only the files that were
**admitted**, never one still being written.

Admission
    A file is admitted once it is complete (size and mtime unchanged for a settling time and the
    check passes), or once it has stayed incomplete for a maximum wait, so that the pipeline
    records its error instead of waiting for ever.  Each admission is one small JSON record,
    ``RUN/_arrivals/<digest>.json``, written atomically (temporary name, then rename), so a killed
    watcher leaves whole records only, and two workflows admitting frames of the same night into
    one run directory on a shared filesystem never lose each other's records (an append to one
    file is not atomic over NFS; a rename is).  The folder ``RUN/_arrivals/`` existing is what
    makes a run a watched run: :func:`admitted` returns ``None`` for any other run, and then every
    file present counts.

Nights
    :func:`last_night` names the night (the observing day, DAY-OBS) whose processing can start:
    see its docstring for the convention.

This module does not import :mod:`astroflow.pipeline` (the pipeline declaration imports it).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob as globlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astroflow.atomic import write_json
from astroflow.errors import AstroflowError

ARRIVALS_DIR = "_arrivals"
BLOCK = 2880  # FITS logical record
CARD = 80
LAST_NIGHT = "last-night"  # the partition values resolved by :func:`resolve_partition`
TONIGHT = "tonight"


# --- the completeness check -----------------------------------------------------------------------
def fits_complete(path: str | Path) -> str | None:
    """None when ``path`` is a whole FITS file, else why not (for plain and fpacked ``.fz`` files).

    Every HDU's header must parse up to its END card, and the file must be at least as long as
    each header says its data are (``|BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn)``,
    which covers images, tables with a heap and the tile-compressed tables of fpack).  When the
    primary header has ``NEXTEND``, that many extensions must follow (a writer paused between
    HDUs leaves a file that is otherwise valid).  Reads the headers only: a few KB per HDU,
    whatever the size of the data.  A file that is still being written fails here with the HDU
    and the byte counts, which is what the watcher reports.
    """
    from astropy.io import fits

    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    with fh:
        if size == 0:
            return "empty file"
        offset, hdu, nextend = 0, 0, None
        while offset < size:
            fh.seek(offset)
            first = fh.read(8)
            expected = "SIMPLE" if hdu == 0 else "XTENSION"
            if len(first) == 8 and first.decode("ascii", "replace").strip() != expected:
                return (f"HDU {hdu} at byte {offset}: starts with {first.decode('ascii', 'replace').strip()!r}, "
                        f"not {expected} (not a FITS header)")
            fh.seek(offset)
            raw = _header_blocks(fh)
            if raw is None:
                return f"HDU {hdu}: header ends before its END card (file is {size} bytes, header at byte {offset})"
            try:
                header = fits.Header.fromstring(raw.decode("ascii"))
                data = _data_bytes(header)
            except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                return f"HDU {hdu}: header does not parse: {exc}"
            if hdu == 0 and isinstance(header.get("NEXTEND"), int):
                nextend = header["NEXTEND"]
            end = offset + len(raw) + data
            if end > size:
                return f"HDU {hdu}: header says {data} bytes of data; the file ends {end - size} bytes short"
            offset = offset + len(raw) + -(-data // BLOCK) * BLOCK
            hdu += 1
    if nextend is not None and hdu - 1 < nextend:
        return f"NEXTEND = {nextend} but the file holds {hdu - 1} extension(s) so far"
    return None


def _header_blocks(fh) -> bytes | None:
    """The 2880-byte blocks from here to the one holding the END card; None if the file ends first."""
    raw = b""
    while True:
        block = fh.read(BLOCK)
        if len(block) < BLOCK:
            return None
        raw += block
        if any(block[i:i + CARD].rstrip() == b"END" for i in range(0, BLOCK, CARD)):
            return raw


def _data_bytes(header) -> int:
    """Size of an HDU's data in bytes as its header gives it (FITS standard 4.0, section 4.4.1)."""
    naxis = int(header["NAXIS"])
    if naxis == 0:
        return 0
    axes = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
    if header.get("GROUPS") and axes[0] == 0:  # random groups: NAXIS1 = 0 does not count
        axes = axes[1:]
    n = 1
    for a in axes:
        n *= a
    return abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1)) * (int(header.get("PCOUNT", 0)) + n)


# --- the declaration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arrivals:
    """What a pipeline that receives data over time watches (``Pipeline(arrivals=Arrivals(...))``).

    ``root_setting`` names the settings field holding the watched folder; ``patterns`` are glob
    patterns relative to it (``"**/raw/*.fits.fz"``) and may name other settings fields in braces
    (``"{night}/raw/*.fits"``), so that a partitioned run watches only its own night; ``check(path)``
    returns None when a file is complete and readable, or the reason it is not (default:
    :func:`fits_complete`).  Hidden files and folders (a leading dot: the temporary names of
    rsync and of atomic writers) never match.  ``deadlines(settings)``, when given, returns the
    times (timezone-aware) at which the watcher runs the pipeline again even if nothing arrived,
    and before which it does not stop when idle: a step that waits for frames until a deadline
    (``ctx.past``) then goes on with what it has.  ``partition`` is the partition a watcher
    takes when none is given (``tonight``: SEDM's UT date), ``idle_stop_s`` how long it waits
    for a new file before the night is over and ``poll_s`` how often it looks (vison: the
    EXP_LOG every 120 s), unless the command line says otherwise.  ``growing`` are patterns (among
    ``patterns``) of files that are appended to after their admission, such as ELVIS's EXP_LOG,
    whose new rows arrive after the frames they list: when one of them has changed and settled,
    the watcher runs the pipeline again, as it does for a new file.
    """

    root_setting: str
    patterns: tuple[str, ...]
    check: Callable[[Path], str | None] = fits_complete
    deadlines: Callable[[Any], Iterable[dt.datetime]] | None = None
    partition: str | None = None
    idle_stop_s: float | None = None
    poll_s: float | None = None
    growing: tuple[str, ...] = ()

    def __post_init__(self):
        if isinstance(self.patterns, str):
            raise AstroflowError(f"Arrivals.patterns must be a tuple of patterns, not the string {self.patterns!r}")
        for p in self.patterns:
            if not p or p.startswith("/"):
                raise AstroflowError(f"Arrivals pattern {p!r} must be relative to the {self.root_setting} folder")
        if isinstance(self.growing, str) or not set(self.growing) <= set(self.patterns):
            raise AstroflowError(f"Arrivals.growing {self.growing!r} must be a tuple of patterns among {self.patterns}")

    def root(self, settings) -> Path:
        """The watched folder: the value of the ``root_setting`` field of ``settings``."""
        values = _as_dict(settings)
        if self.root_setting not in values:
            raise AstroflowError(f"arrivals: the settings have no field {self.root_setting!r} (the watched folder)")
        return Path(os.path.abspath(values[self.root_setting]))

    def globs(self, settings) -> tuple[str, ...]:
        """The patterns with the settings fields they name filled in."""
        return _filled(self.patterns, _as_dict(settings))

    def scan(self, settings) -> dict[str, tuple[int, int]]:
        """Every matching file under the root now, with its ``(size, mtime_ns)``; {} if no root yet.

        Listed as ``ctx.glob`` lists (the ``glob`` module: ``**`` recursive, hidden names skipped),
        so that the watcher admits exactly the files the steps will look for.
        """
        root = self.root(settings)
        found: dict[str, tuple[int, int]] = {}
        if not root.is_dir():
            return found
        for pattern in self.globs(settings):
            for name in globlib.glob(os.path.join(root, pattern), recursive=True):
                try:
                    st = os.stat(name)
                except OSError:  # removed between the listing and the stat
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[os.path.abspath(name)] = (st.st_size, st.st_mtime_ns)
        return dict(sorted(found.items()))

    def matches(self, path: str | Path, settings, patterns: tuple[str, ...] | None = None) -> bool:
        """Whether ``path`` is under the root and matches one of the patterns (or of ``patterns``)."""
        root = self.root(settings)
        path = Path(os.path.abspath(path))
        try:
            rel = path.relative_to(root)
        except ValueError:
            return False
        hidden = any(part.startswith(".") for part in rel.parts)
        globs = self.globs(settings) if patterns is None else _filled(patterns, _as_dict(settings))
        return not hidden and any(_glob_match(rel, g) for g in globs)

    def grows(self, path: str | Path, settings) -> bool:
        """Whether ``path`` is one of the files appended to after admission (``growing``)."""
        return bool(self.growing) and self.matches(path, settings, self.growing)


def _filled(patterns: tuple[str, ...], values: dict) -> tuple[str, ...]:
    out = []
    for p in patterns:
        try:
            out.append(p.format_map(values))
        except KeyError as exc:
            raise AstroflowError(f"arrivals pattern {p!r} names {exc.args[0]!r}, which is no settings field") from None
    return tuple(out)


def _as_dict(settings) -> dict:
    if isinstance(settings, Mapping):
        return dict(settings)
    return settings.model_dump()


def _glob_match(rel: Path, pattern: str) -> bool:
    """Whether ``rel`` matches ``pattern`` as :meth:`Arrivals.scan` lists: ``*``, ``?`` and
    ``[...]`` within one folder name, ``**`` for any number of folders."""
    return _match_parts(rel.parts, tuple(pattern.split("/")))


def _match_parts(parts: tuple[str, ...], pats: tuple[str, ...]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match_parts(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and _match_parts(parts[1:], pats[1:])


# --- admission ----------------------------------------------------------------------------------------
def _folder(run_dir: str | Path) -> Path:
    return Path(run_dir) / ARRIVALS_DIR


def _key(path: str | Path) -> str:
    """The form in which a path is admitted and compared: absolute, symlinks left as they are."""
    return os.path.abspath(path)


def mark_watched(run_dir: str | Path) -> None:
    """Make ``run_dir`` a watched run (steps then see admitted files only), before any admission."""
    _folder(run_dir).mkdir(parents=True, exist_ok=True)


def admit(run_dir: str | Path, paths: Iterable[str | Path], reasons: Mapping[str, str] | None = None) -> list[str]:
    """Record ``paths`` as admitted into the watched run ``run_dir``; returns those newly admitted.

    One record per file, each written atomically; a record states the file's size and mtime at
    admission and, for a file admitted after the maximum wait, the reason it was still incomplete
    (``reasons``, keyed by path), kept beside the error the pipeline will record for it.
    """
    mark_watched(run_dir)
    reasons = {_key(k): v for k, v in (reasons or {}).items()}
    new = []
    for path in paths:
        key = _key(path)
        record = _folder(run_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
        if record.exists():
            continue
        try:
            st = os.stat(key)
            size, mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            size = mtime_ns = None
        write_json(record, {
            "path": key, "size": size, "mtime_ns": mtime_ns,
            "admitted_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "incomplete": reasons.get(key),
        })
        new.append(key)
    return new


def records(run_dir: str | Path) -> list[dict] | None:
    """The admission records of a watched run in admission order; None when it is not watched."""
    folder = _folder(run_dir)
    if not folder.is_dir():
        return None
    out = []
    for p in folder.glob("*.json"):  # hidden temporary names do not match
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise AstroflowError(f"{p}: unreadable admission record: {exc}") from None
    return sorted(out, key=lambda r: (r["admitted_utc"], r["path"]))


def admitted(run_dir: str | Path) -> set[str] | None:
    """Absolute paths admitted into ``run_dir``; None when it is not a watched run (all files count)."""
    recs = records(run_dir)
    return None if recs is None else {r["path"] for r in recs}


# --- deciding when a file is complete -----------------------------------------------------------------
@dataclass
class _Seen:
    signature: tuple[int, int]
    first_seen: float
    stable_since: float


@dataclass
class Observation:
    """The outcome of one look at the watched files: what to admit, and why the others wait."""

    ready: list[str] = field(default_factory=list)
    incomplete: dict[str, str] = field(default_factory=dict)  # admitted after max_wait: why
    waiting: dict[str, str] = field(default_factory=dict)
    changed: bool = False  # a file appeared or its size or mtime changed since the last look


class Settling:
    """Decides, look after look, which files are complete (no I/O but the injected check).

    A file is ready once its ``(size, mtime_ns)`` has not changed for ``settle_s`` and ``check``
    passes; a file whose signature is stable but whose check keeps failing is admitted anyway
    ``max_wait_s`` after it was first seen, with the check's reason, so that the pipeline records
    its error.  A file still changing is never admitted: it is still being written.
    """

    def __init__(self, check: Callable[[Path], str | None], settle_s: float, max_wait_s: float):
        self.check, self.settle_s, self.max_wait_s = check, settle_s, max_wait_s
        self.seen: dict[str, _Seen] = {}

    def observe(self, listing: Mapping[str, tuple[int, int]], now: float) -> Observation:
        """``listing``: the files not admitted yet, with their signature at time ``now``."""
        obs = Observation()
        for gone in set(self.seen) - set(listing):
            del self.seen[gone]
        for path, sig in listing.items():
            s = self.seen.get(path)
            if s is None or s.signature != sig:
                obs.changed = True
                self.seen[path] = s = _Seen(sig, s.first_seen if s else now, now)
            stable = now - s.stable_since
            if stable < self.settle_s:
                obs.waiting[path] = f"size or mtime changed {stable:.0f} s ago (settling {self.settle_s:g} s)"
                continue
            reason = self.check(Path(path))
            if reason is None:
                obs.ready.append(path)
            elif now - s.first_seen >= self.max_wait_s:
                obs.ready.append(path)
                obs.incomplete[path] = reason
            else:
                obs.waiting[path] = reason
        for path in obs.ready:
            del self.seen[path]
        return obs


def receive(
    run_dir: str | Path,
    arrivals: Arrivals,
    settings,
    path: str | Path,
    *,
    settle_s: float = 5.0,
    max_wait_s: float = 900.0,
    poll_s: float = 1.0,
) -> Observation:
    """Admit what one event names (``astroflow init --arrival PATH``, in an Argo workflow).

    A file is waited for until complete (or admitted after ``max_wait_s`` with its reason); it
    must lie under the pipeline's watched folder and match its patterns.  A folder is a catch-up
    sweep (a calendar event, banzai's daily requeue of frames whose message was lost): every
    matching file under it that is complete after one settling time is admitted, the others are
    left for their own event or the next sweep.  Returns the last observation.
    """
    target = Path(os.path.abspath(path))
    if not target.exists():
        raise AstroflowError(f"arrival {target}: no such file or folder")
    if target.is_dir():
        def listing():
            return {p: s for p, s in arrivals.scan(settings).items() if Path(p).is_relative_to(target)}
    else:
        if not arrivals.matches(target, settings):
            raise AstroflowError(
                f"arrival {target}: not a file this pipeline watches (under {arrivals.root(settings)}, "
                f"matching {', '.join(arrivals.globs(settings))})"
            )

        def listing():
            st = target.stat()
            return {str(target): (st.st_size, st.st_mtime_ns)}
    known = admitted(run_dir) or set()
    settling = Settling(arrivals.check, settle_s, max_wait_s)
    start = time.monotonic()
    while True:
        now = time.monotonic()
        obs = settling.observe({p: s for p, s in listing().items() if p not in known}, now)
        admit(run_dir, obs.ready, obs.incomplete)
        known |= set(obs.ready)
        if not obs.waiting or (target.is_dir() and now - start >= settle_s):
            return obs
        time.sleep(poll_s)


# --- nights -----------------------------------------------------------------------------------------
def last_night(now_utc: dt.datetime, timezone: str, restart_hour: int) -> str:
    """The last night (``YYYYMMDD``) whose observing day has ended at ``now_utc``.

    Convention: an observing day (DAY-OBS) is named after the local calendar date on which it
    starts, and it runs from ``restart_hour``:00 local wall-clock time on that date to
    ``restart_hour``:00 on the next (the hour a site's pipeline rolls over; local noon at most
    sites, so a night keeps one name across local midnight).  ``last_night`` is the most recent
    day that has ended: from ``restart_hour``:00 today it is yesterday's date; before it, the day
    before yesterday.  Wall-clock hours are compared in ``timezone`` (IANA name), so a day that
    spans a daylight-saving change is 23 or 25 hours long and is still named once.

    >>> last_night(dt.datetime(2025, 3, 10, 20, 0, tzinfo=dt.timezone.utc), "America/Santiago", 16)
    '20250309'
    """
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError(f"last_night: now_utc must carry a time zone, got the naive {now_utc.isoformat()}")
    if not 0 <= int(restart_hour) <= 23:
        raise ValueError(f"last_night: restart hour {restart_hour} is not in 0..23")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"last_night: unknown time zone {timezone!r} (an IANA name such as America/Santiago)") from None
    local = now_utc.astimezone(zone)
    days_back = 1 if local.hour >= int(restart_hour) else 2
    return (local.date() - dt.timedelta(days=days_back)).strftime("%Y%m%d")


def tonight(now_utc: dt.datetime, timezone: str) -> str:
    """The calendar date (``YYYYMMDD``) at ``now_utc`` in ``timezone``: the night being taken
    where a night is named after the date on which it is observed (SEDM's UT date, with
    ``timezone`` UTC: "In the afternoon when the UT date changes").

    >>> tonight(dt.datetime(2025, 6, 12, 0, 5, tzinfo=dt.timezone.utc), "UTC")
    '20250612'
    """
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError(f"tonight: now_utc must carry a time zone, got the naive {now_utc.isoformat()}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"tonight: unknown time zone {timezone!r} (an IANA name such as America/Santiago)") from None
    return now_utc.astimezone(zone).strftime("%Y%m%d")


def resolve_partition(value: str, timezone: str = "UTC", restart_hour: int = 12, now_utc: dt.datetime | None = None) -> str:
    """A partition value as given (``--partition``): ``last-night`` becomes :func:`last_night`,
    ``tonight`` :func:`tonight`."""
    if value == LAST_NIGHT:
        return last_night(now_utc or dt.datetime.now(dt.UTC), timezone, restart_hour)
    if value == TONIGHT:
        return tonight(now_utc or dt.datetime.now(dt.UTC), timezone)
    return value
