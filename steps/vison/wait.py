"""``astroflow vison wait``: vison_run's wait mode (``-W``) on the core watcher.

    astroflow vison wait --config FILE --session D12 --day-folder PATH [--start-obsid N] [--check-only]

The runbook's "Listening/Wait Mode": launched when a session's acquisition starts, the pipeline
processes each test once all its data are acquired.  This is ``astroflow watch vison`` with the
day folder as the data root and ``wait`` set: the watcher looks at the day folder every 120 s,
admits each frame once it is a whole FITS file and runs the pipeline again when new frames
arrive or the EXP_LOG grows; the inventory finds each test's last sequence (a resubmitted
test's, or from ``--start-obsid`` on, vison's ``-O``) and a Task's sub-tasks get their items
once it is complete (:func:`steps.vison.subtasks.ready`).  After 4 h without a new file
(``--idle-stop``) it stops with a status, not a prompt: one line per test of the session with
its state, and how to analyse as found a test that never completed.  Killed or disconnected,
the same command goes on where it was (the admissions and the ledger are on disk).  Every other
flag is ``astroflow watch``'s (``--poll``, ``--workers``, the settings' ``--tests``...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from astroflow import config as run_config
from astroflow import rundir, watch
from astroflow.errors import AstroflowError


def session_status(run_dir: Path) -> list[str]:
    """One line per test of the run's session: its state in the inventory and its ObsIDs."""
    ledger = rundir.Ledger(run_dir / "inventory")
    rows = ledger.read(columns=["test", "obsid", "state", "note"]).to_pylist() if ledger.latest else []
    lines = []
    for test in dict.fromkeys(r["test"] for r in rows):
        mine = [r for r in rows if r["test"] == test and r["obsid"] >= 0]
        state = next((r["state"] for r in rows if r["test"] == test), "absent")
        span = f" ObsIDs {min(r['obsid'] for r in mine)}-{max(r['obsid'] for r in mine)}" if mine else ""
        frames = f", {len({r['obsid'] for r in mine})} frame(s)" if mine else ""
        note = next((f"; {r['note']}" for r in mine if r["note"]), "")
        lines.append(f"  {test}: {state}{span}{frames}{note}")
    return lines


def main(argv: list[str]) -> int:
    """``astroflow vison wait ...``: the watcher's exit code (0 idle with no failure)."""
    ap = argparse.ArgumentParser(prog="astroflow vison wait", description=__doc__.split("\n\n")[1],
                                 add_help=False)
    ap.add_argument("--day-folder", type=Path, help="the day folder being acquired (the data root)")
    ap.add_argument("-h", "--help", action="store_true")
    args, rest = ap.parse_known_args(argv)
    if args.help:
        print(__doc__)
        return watch.main(["vison", "--help"])
    if args.day_folder is None:
        print("astroflow vison wait: --day-folder PATH is required", file=sys.stderr)
        return 2
    code = watch.main(["vison", "--wait", "--data-root", str(args.day_folder), *rest])
    out = _out(rest)
    if code in (0, 1) and out is not None and (out / "inventory").is_dir():
        print(f"vison wait: the session's tests in {out}:", file=sys.stderr)
        lines = session_status(out)
        print("\n".join(lines), file=sys.stderr)
        if any(": acquiring" in line or ": absent" in line for line in lines):
            print(f"  a test that never completed is analysed as found by `astroflow run vison --out {out} --no-wait`",
                  file=sys.stderr)
    return code


def _out(rest: list[str]) -> Path | None:
    """The run directory the watcher used: ``--out`` or the configuration's ``[run] out``."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--out", "--run-dir", dest="out", type=Path)
    ap.add_argument("--config", type=Path)
    args, _ = ap.parse_known_args(rest)
    if args.out is not None:
        return args.out
    try:
        return Path(run_config.read_config_file(args.config)["run"]["out"]) if args.config else None
    except (KeyError, AstroflowError):
        return None
