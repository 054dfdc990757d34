"""Aim mode's frame finding: each test's frames in the day folders' EXP_LOGs (runbook: "Aim
mode", the ``test_specifics`` OBSID limits and vison's ``filterexposures``).

Reads every EXP_LOG of the run's day folders (merged, columns by name from the per-ELVIS-version
maps) and, for each test of the session, lists its frames, one row per ObsID and CCD: the file,
the date, exposure time, readout mode, the CCD's serial as the EXP_LOG gives it, its HK file.
A test is found by name (the EXP_LOG ``test`` column) among the ObsIDs from ``start_obsid`` on
(vison's ``-O``), unless ``obsid_limits`` names the range; when the log holds several sequences
of it, the last is taken (:func:`last_sequence`): the last contiguous block of its ObsIDs, and
in it the last restart, which is how a resubmission after an aborted one shows (the original
counted the 4 + 15 frames of such a test as 19 and never saw it complete).  Each test's rows say
its ``state``: ``complete`` once its structure's frames are there, with the CCD and HK files of
its last ObsID, or once a later ObsID shows it ended; ``acquiring`` before (wait mode analyses
a test once complete; aim mode analyses it as found); ``absent``.  What is not there is recorded, not fatal: a CCD file not written (``missing``), a file
that is not a complete FITS (``incomplete``: being written, or cut), frames on disk whose
EXP_LOG rows are missing (``unlisted``, found by ObsID range or the header's ``OBJECT``), a test
absent from the log (``absent``, ObsID -1); the Task's flags step raises MISSDATA or BADDATA for
them.  An EXP_LOG that does not read is a format error naming the file, and fails the step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.arrivals import fits_complete
from astroflow.step import Step
from steps.vison import elvis, tasks

SCHEMA = pa.schema([
    ("test", pa.string()), ("task", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("file", pa.string()),
    ("day_folder", pa.string()), ("date", pa.string()), ("exptime", pa.float64()), ("rdmode", pa.string()),
    ("serial", pa.string()), ("sn_roe", pa.string()), ("sn_rpsu", pa.string()), ("elvis", pa.string()),
    ("hk_file", pa.string()), ("problem_kind", pa.string()), ("problem", pa.string()),
    ("n_expected", pa.int32()), ("state", pa.string()), ("note", pa.string()),
])
# the EXP_LOG columns a script varies from frame to frame: a restart repeats its first frame's
SETTINGS = ("exptime", "rdmode", "source", "wave", "mirr_pos", "chinj", "id_dly", "IG1_1_T", "toi_tp", "toi_ch",
            "v_tp_mod", "s_tp_mod", "dwell_v")


def _last_block(obsids: list[int], all_obsids: list[int]) -> list[int]:
    """The last run of ``obsids`` not interrupted by another ObsID of the log."""
    chosen, blocks, current = set(obsids), [], []
    for o in all_obsids:
        if o in chosen:
            current.append(o)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks[-1] if blocks else []


@dataclass(frozen=True)
class Sequence:
    obsids: list[int]
    note: str | None = None  # the earlier ObsIDs of the block left out, and why


def last_sequence(frames: list[dict]) -> Sequence:
    """The last sequence of one test's contiguous block (one dict per ObsID, in order: ``obsid``,
    ``time`` (datetime), ``exptime``, ``settings``): the block from its last restart on.

    A restart is a frame with the block's first frame's settings after an interruption: its
    ObsID follows the previous one's (no EXP_LOG rows are missing between them), and the gap
    between the end of the previous frame's exposure and its start is longer than twice the
    block's median such gap (its readout and overheads) and than the median plus 60 s (an
    aborted script resubmitted).  A test with no restart is one sequence, whatever its length
    (another structure is analysed as found)."""
    if len(frames) < 3:
        return Sequence([f["obsid"] for f in frames])
    gaps = [(b["time"] - a["time"]).total_seconds() - (a["exptime"] or 0.0) for a, b in zip(frames, frames[1:])]
    usual = float(np.median(gaps))
    start = 0
    for k in range(1, len(frames)):
        if (frames[k]["settings"] == frames[0]["settings"] and frames[k]["obsid"] == frames[k - 1]["obsid"] + 1
                and gaps[k - 1] > max(2 * usual, usual + 60.0)):
            start = k
    if start == 0:
        return Sequence([f["obsid"] for f in frames])
    left = f"{frames[0]['obsid']}-{frames[start - 1]['obsid']}"
    return Sequence([f["obsid"] for f in frames[start:]],
                    f"ObsIDs {left} left out: an earlier submission, interrupted {gaps[start - 1]:.0f} s before "
                    f"ObsID {frames[start]['obsid']} restarted the test")


def _per_obsid(rows: list[dict]) -> list[dict]:
    """One dict per ObsID of a test's EXP_LOG rows (its first CCD's), for :func:`last_sequence`."""
    first: dict[int, dict] = {}
    for r in sorted(rows, key=lambda r: (r["ObsID"], r["CCD"])):
        first.setdefault(r["ObsID"], r)
    out = []
    for obsid, r in first.items():
        try:
            when = elvis.parse_elvis_date(r["date"])
        except (TypeError, ValueError):
            when = None
        out.append({"obsid": obsid, "time": when, "exptime": r.get("exptime"),
                    "settings": tuple(r.get(c) for c in SETTINGS)})
    if any(f["time"] is None for f in out):  # no usable dates: no restart can be told
        return [{**f, "time": dt.datetime(2000, 1, 1) + dt.timedelta(seconds=i), "exptime": 0.0}
                for i, f in enumerate(out)]
    return out


def find_frames(ctx) -> list[dict]:
    s = ctx.settings
    folders = s.folders()
    for folder in folders:
        for log in ctx.glob(folder, "EXP_LOG_*.txt"):
            ctx.uses(log)
    log = elvis.read_explogs(folders, s.elvis).to_pylist()
    on_disk: dict[tuple[int, int], Path] = {}
    hk_files: dict[tuple[Path, int], Path] = {}  # by ObsID: the HK name's time may differ from the log's date
    for folder in folders:
        for path in ctx.glob(folder, "HK_*_ROE*.txt"):
            if m := elvis.HK_NAME.match(path.name):
                hk_files[Path(folder).resolve(), int(m["obsid"])] = path
    for folder in folders:
        for path in ctx.glob(folder, "EUC_*.fits"):
            try:
                meta = elvis.parse_frame_name(path)
            except elvis.ElvisFormatError:
                continue
            on_disk[meta["obsid"], meta["ccd"]] = path
    first = s.start_obsid or 0
    log = [r for r in log if r["ObsID"] >= first]
    on_disk = {k: v for k, v in on_disk.items() if k[0] >= first}
    all_obsids = sorted({r["ObsID"] for r in log})
    rows: list[dict] = []
    for test in s.tests:
        task = tasks.resolve(test)
        expected = tasks.structure(test).frames
        mine = [r for r in log if r["test"] == test]
        note = None
        if test in s.obsid_limits:
            lo, hi = s.obsid_limits[test]
            mine = [r for r in log if lo <= r["ObsID"] <= hi]
        else:
            keep = set(_last_block(sorted({r["ObsID"] for r in mine}), all_obsids))
            seq = last_sequence(_per_obsid([r for r in mine if r["ObsID"] in keep]))
            mine, note = [r for r in mine if r["ObsID"] in set(seq.obsids)], seq.note
        if not mine:
            rows += [_row(test, task, expected, -1, ccd, problem=("absent", f"test {test} is not in the EXP_LOG(s) of "
                                                                  f"{', '.join(str(f) for f in folders)}"),
                          state="absent")
                     for ccd in elvis.CCDS]
            continue
        last = max(r["ObsID"] for r in mine)
        test_rows = []
        for r in mine:
            ccd = int(r["CCD"][-1])
            folder = Path(r["explog"]).parent
            path = folder / f"{r['File_name']}.fits"
            hk = hk_files.get((folder.resolve(), r["ObsID"]))
            problem = None
            if not path.exists():
                problem = ("missing", f"{path.name} is not in {folder} (its EXP_LOG row is)")
            elif (why := fits_complete(path)) is not None:
                problem = ("incomplete", f"{path}: not a complete FITS file: {why}")
            test_rows.append(_row(test, task, expected, r["ObsID"], ccd, path, folder, r, hk, problem, note=note))
        last_there = (all((last, c) in on_disk for c in elvis.CCDS)
                      and any(k[1] == last for k in hk_files) and not any(
                          r["problem_kind"] == "incomplete" for r in test_rows if r["obsid"] == last))
        later = any(o > last for o in all_obsids)  # the test has ended
        reached = len({r["ObsID"] for r in mine}) >= expected
        state = "complete" if later or (reached and last_there) else "acquiring"
        rows += [{**r, "state": state} for r in test_rows]
        listed = {(r["ObsID"], int(r["CCD"][-1])) for r in mine}
        lo, hi = min(o for o, _ in listed), max(o for o, _ in listed)
        if test in s.obsid_limits:
            lo, hi = s.obsid_limits[test]
        others = set(all_obsids) - {o for o, _ in listed}
        for (obsid, ccd), path in sorted(on_disk.items()):
            if (obsid, ccd) in listed or obsid in others:
                continue
            if not (lo <= obsid <= hi) and _object(path) != test:
                continue
            rows.append(_row(test, task, expected, obsid, ccd, path, path.parent, None, None,
                             ("unlisted", f"{path.name} is on disk but its EXP_LOG row is missing"), state, note))
    return rows


def _object(path: Path) -> str | None:
    try:
        return str(fits.getheader(path, -1).get("OBJECT", "")) or None
    except Exception:  # an unreadable header: not ours to judge here
        return None


def _row(test, task, expected, obsid, ccd, path=None, folder=None, r=None, hk=None, problem=None, state=None,
         note=None) -> dict:
    r = r or {}
    return {"test": test, "task": task.handle, "obsid": obsid, "ccd": ccd, "file": str(path) if path else None,
            "day_folder": str(folder) if folder else None, "date": r.get("date"), "exptime": r.get("exptime"),
            "rdmode": r.get("rdmode"), "serial": r.get(f"sn_ccd{ccd}"), "sn_roe": r.get("sn_roe"),
            "sn_rpsu": r.get("sn_rpsu"), "elvis": r.get("elvis"), "hk_file": str(hk) if hk else None,
            "problem_kind": problem[0] if problem else None, "problem": problem[1] if problem else None,
            "n_expected": expected, "state": state, "note": note}


def arrived(path: Path) -> str | None:
    """The watcher's check of an ELVIS file: a frame must be a whole FITS file; the EXP_LOG and
    HK text files are read as they grow."""
    return fits_complete(path) if path.suffix == ".fits" else None


def run(ctx):
    return pa.Table.from_pylist(find_frames(ctx), schema=SCHEMA)


inventory = Step("inventory", run=run, schema=SCHEMA, doc=__doc__)
