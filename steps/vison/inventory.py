"""Aim mode's frame finding: each test's frames in the day folders' EXP_LOGs (runbook: "Aim
mode", the ``test_specifics`` OBSID limits and vison's ``filterexposures``).

Reads every EXP_LOG of the run's day folders (merged, columns by name from the per-ELVIS-version
maps) and, for each test of the session, lists its frames, one row per ObsID and CCD: the file,
the date, exposure time, readout mode, the CCD's serial as the EXP_LOG gives it, its HK file.
A test is found by name (the EXP_LOG ``test`` column); when the log holds several sequences of
it (a test resubmitted) the last contiguous one is taken, unless ``obsid_limits`` names the
range.  What is not there is recorded, not fatal: a CCD file not written (``missing``), a file
that is not a complete FITS (``incomplete``: being written, or cut), frames on disk whose
EXP_LOG rows are missing (``unlisted``, found by ObsID range or the header's ``OBJECT``), a test
absent from the log (``absent``, ObsID -1); the Task's flags step raises MISSDATA or BADDATA for
them.  An EXP_LOG that does not read is a format error naming the file, and fails the step.
"""

from __future__ import annotations

from pathlib import Path

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
    ("n_expected", pa.int32()),
])


def _last_block(obsids: list[int], all_obsids: list[int]) -> list[int]:
    """The last run of ``obsids`` not interrupted by another ObsID of the log (a resubmitted test)."""
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
    all_obsids = sorted({r["ObsID"] for r in log})
    rows: list[dict] = []
    for test in s.tests:
        task = tasks.resolve(test)
        expected = tasks.structure(test).frames
        mine = [r for r in log if r["test"] == test]
        if test in s.obsid_limits:
            lo, hi = s.obsid_limits[test]
            mine = [r for r in log if lo <= r["ObsID"] <= hi]
        else:
            keep = set(_last_block(sorted({r["ObsID"] for r in mine}), all_obsids))
            mine = [r for r in mine if r["ObsID"] in keep]
        if not mine:
            rows += [_row(test, task, expected, -1, ccd, problem=("absent", f"test {test} is not in the EXP_LOG(s) of "
                                                                  f"{', '.join(str(f) for f in folders)}"))
                     for ccd in elvis.CCDS]
            continue
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
            rows.append(_row(test, task, expected, r["ObsID"], ccd, path, folder, r, hk, problem))
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
                             ("unlisted", f"{path.name} is on disk but its EXP_LOG row is missing")))
    return rows


def _object(path: Path) -> str | None:
    try:
        return str(fits.getheader(path, -1).get("OBJECT", "")) or None
    except Exception:  # an unreadable header: not ours to judge here
        return None


def _row(test, task, expected, obsid, ccd, path=None, folder=None, r=None, hk=None, problem=None) -> dict:
    r = r or {}
    return {"test": test, "task": task.handle, "obsid": obsid, "ccd": ccd, "file": str(path) if path else None,
            "day_folder": str(folder) if folder else None, "date": r.get("date"), "exptime": r.get("exptime"),
            "rdmode": r.get("rdmode"), "serial": r.get(f"sn_ccd{ccd}"), "sn_roe": r.get("sn_roe"),
            "sn_rpsu": r.get("sn_rpsu"), "elvis": r.get("elvis"), "hk_file": str(hk) if hk else None,
            "problem_kind": problem[0] if problem else None, "problem": problem[1] if problem else None,
            "n_expected": expected}


def run(ctx):
    return pa.Table.from_pylist(find_frames(ctx), schema=SCHEMA)


inventory = Step("inventory", run=run, schema=SCHEMA, doc=__doc__)
