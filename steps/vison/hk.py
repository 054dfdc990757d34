"""HK per frame against its limits (runbook: the Tasks' HK checks, vison's ``check_HK``).

One item per test: for each of the test's ObsIDs, the frame's HK file
(``HK_{ObsID}_{DDMMYY}D{HHMMSS}T_ROE1.txt``) summarised as mean, std, min and max per key, and
each key with a limit checked in the configured set (``performance`` or ``safe``; relative to
the EXP_LOG's commanded value, absolute, or identity).  A key out of limits has ``ool`` true and
the limit it broke; the Task's flags step raises HK_OOL, or CCDTEMP_OOL for a CCD temperature.
A missing or unreadable HK file is a row with ``problem`` (MISSDATA, BADDATA), not a failure.
Writes ``RUN/<session>/<TEST>/hk/``.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import elvis
from steps.vison.products import write_part
from steps.vison.subtasks import ready

SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("key", pa.string()), ("mean", pa.float64()), ("std", pa.float64()),
    ("min", pa.float64()), ("max", pa.float64()), ("ool", pa.bool_()), ("limit", pa.string()),
    ("problem_kind", pa.string()), ("problem", pa.string()),
])


def test_items(ctx) -> list[dict]:
    return [{"test": t} for t in ready(ctx, ctx.settings.tests)]


def frame_hk(ctx, item) -> list[dict]:
    test = item["test"]
    frames = ctx.lookup("inventory", test=test).to_pylist()
    by_obsid: dict[int, dict] = {}
    for f in frames:
        if f["obsid"] >= 0 and f["problem_kind"] != "unlisted":
            by_obsid.setdefault(f["obsid"], f)
    rows: list[dict] = []
    log_rows = _explog_rows(ctx, by_obsid)
    for obsid, f in sorted(by_obsid.items()):
        if f["hk_file"] is None:
            rows.append(_problem(test, obsid, "missing", f"HK file of ObsID {obsid} is not in {f['day_folder']}"))
            continue
        try:
            series = elvis.read_hk(ctx.uses(f["hk_file"]), f["elvis"] or elvis.DEFAULT_ELVIS)
            stats = elvis.hk_stats(series)
            violations = {v.key: v for v in elvis.check_hk(stats, log_rows[obsid], limits=ctx.settings.hk_limits,
                                                           elvis=f["elvis"] or elvis.DEFAULT_ELVIS)}
        except elvis.ElvisFormatError as exc:
            ctx.log.warning("vison hk: %s", exc)
            rows.append(_problem(test, obsid, "unreadable", str(exc)))
            continue
        for key, st in stats.items():
            v = violations.get(key)
            rows.append({"test": test, "obsid": obsid, "key": key, **st, "ool": v is not None,
                         "limit": str(v) if v else None, "problem_kind": None, "problem": None})
    write_part(ctx, "hk", test, "hk", [r for r in rows if r["key"] is not None])
    return rows


def _explog_rows(ctx, by_obsid: dict[int, dict]) -> dict[int, dict]:
    """The EXP_LOG row of each ObsID (the commanded values relative HK limits refer to)."""
    folders = sorted({f["day_folder"] for f in by_obsid.values() if f["day_folder"]})
    if not folders:
        return {}
    for folder in folders:
        for path in ctx.glob(folder, "EXP_LOG_*.txt"):
            ctx.uses(path)
    log = elvis.read_explogs(folders, ctx.settings.elvis).to_pylist()
    return {r["ObsID"]: r for r in log if r["ObsID"] in by_obsid}


def _problem(test: str, obsid: int, kind: str, text: str) -> dict:
    return {"test": test, "obsid": obsid, "key": None, "mean": None, "std": None, "min": None, "max": None,
            "ool": None, "limit": None, "problem_kind": kind, "problem": text}


hk = FanOut("hk", inputs=("inventory",), items=test_items, process=frame_hk, key=("test",), schema=SCHEMA,
            shard_size=1, doc=__doc__)
