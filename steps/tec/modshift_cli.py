"""``astroflow tec modshift INFILE --period P --epoch E [--json]``.

The command-line replacement of the ``modshift`` program that TESS-ExoClass
step 13 (modshift_test.py) runs per TCE: it reads the same input file
(whitespace-separated ``time flux model`` rows, relative flux about 0) and
prints the same 17 numbers, as a table or as one JSON object. It writes no
files and loads only the native extension, which also reads the file (no
numpy, so the process starts in a few tens of milliseconds).

Exit codes: 0 results printed; 1 no result (the model has no transit the data
can test; TEC retries at half the period); 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="astroflow tec modshift",
        description="Model-shift test (TEC step 13) on a 'time flux model' file.",
    )
    p.add_argument("infile", help="whitespace-separated rows: time (days) flux model (relative flux about 0)")
    p.add_argument("--period", type=float, required=True, help="period (days)")
    p.add_argument("--epoch", type=float, required=True, help="epoch of a transit (same time system as the file)")
    p.add_argument("--json", action="store_true", help="print one JSON object (NaN phases as null)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from steps.tec.science.modshift import run_modshift_file

    try:
        result, n_points = run_modshift_file(args.infile, args.period, args.epoch)
    except ValueError as exc:
        print(f"astroflow tec modshift: {exc}", file=sys.stderr)
        return 2
    if not result.valid:
        print(
            f"astroflow tec modshift: {args.infile}: no result, the model has no transit points the data can test "
            f"at period {args.period:g} (TEC retries at half the period)",
            file=sys.stderr,
        )
        return 1
    values = result.as_dict()
    if args.json:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}
        print(json.dumps(clean, allow_nan=False))
    else:
        print(f"modshift {args.infile}  period {args.period:g}  epoch {args.epoch:g}  "
              f"{n_points} points, {result.n_in_transit} in transit, {n_points - result.n_used} outliers")
        for k, v in values.items():
            print(f"  {k:<14s} {v:>14.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
