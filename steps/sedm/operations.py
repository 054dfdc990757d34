"""``astroflow sedm night --date YYYYMMDD --config FILE [--out RUN] [flags of astroflow run]``:
rerun a past night (runbook: the night's "automatically performed" steps, done again).

The night's deadline has passed, so every afternoon set is used as it was taken; the run goes to
``runs/sedm-{date}`` unless ``--out`` says otherwise, and a rerun of a finished night recomputes
only what changed.  ``--date`` also takes ``last-night`` and ``tonight`` (UT).  The night as it
is taken is ``astroflow sedm watch --config FILE --out RUN``: the core's watcher with SEDM's
defaults (tonight's UT date; stopping after 2 h without a new frame, never before the
calibration deadline).
"""

from __future__ import annotations

import argparse
import sys


def night(argv: list[str]) -> int:
    """``astroflow sedm night --date YYYYMMDD``: rerun a past night (``astroflow run sedm``)."""
    from astroflow.arrivals import resolve_partition
    from astroflow.cli import main

    ap = argparse.ArgumentParser(prog="astroflow sedm night", add_help=False)
    ap.add_argument("--date")
    ap.add_argument("--out")
    args, rest = ap.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(__doc__)
        return 0
    if not args.date:
        print(f"astroflow sedm night: --date YYYYMMDD is required\n\n{__doc__}", file=sys.stderr)
        return 2
    date = resolve_partition(args.date, "UTC", 12)
    return main(["run", "sedm", "--date", date, "--out", args.out or f"runs/sedm-{date}", *rest])
