"""``astroflow nres post|stack|nightly|trace0|trace-refine|make-zero|new-site|reprocess|db|targets``.

The runbook's commands over the core's run: each builds the run's configuration from the
original flags (``--site --camera --nres-instrument --start --end``), and runs the steps it
names; what is fresh is not recomputed, what is stale is (the ledger decides).

    astroflow nres post PATH|GLOB... --out RUN           # replaces post_to_fits_exchange loops
    astroflow nres stack --site cpt --camera fl13 --nres-instrument nres03 --calibration-type BIAS \\
        --start 2017-12-03T08:00:00 --end 2017-12-04T08:00:00 [--nights 18] [--target NAME] --out RUN
    astroflow nres nightly --site cpt --nres-instrument nres03 --out RUN   # last night at the site
    astroflow nres trace0 --filename ref_trace.txt --out RUN               # a hand trace as TRACE
    astroflow nres trace-refine --flat_filename1 F1 --flat_filename2 F2 --out RUN
    astroflow nres make-zero --target NAME --start ISO --end ISO --out RUN
    astroflow nres new-site --site cpt --camera fl13 --nres-instrument nres03 --start D --end D
        --products-root ROOT [--hand-trace FILE] [--zero FILE] [--dry-run]
    astroflow nres reprocess --site S --start D --end D --out RUN [--types TARGET,...]
    astroflow nres db --out RUN                          # sites and processed frames
    astroflow nres targets FILE                          # check targets.csv

Exit codes as ``astroflow --help`` says (0 done, 1 failed items, 2 usage).
"""

from __future__ import annotations

import argparse
import glob as globlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

STACK_UNTIL = {"BIAS": "stack_bias", "DARK": "stack_dark", "FLAT": "stack_flat", "ARC": "wavelength",
               "TEMPLATE": "template"}
SITES = {  # IANA time zone and local restart hour of the LCO sites with NRES (the nightly clock)
    "lsc": ("America/Santiago", 12), "elp": ("America/Chicago", 12), "cpt": ("Africa/Johannesburg", 12),
    "tlv": ("Asia/Jerusalem", 12),
}
REDUCED_TREE = ("bias blaz ccor class config csv dark dble diag expm extr flat plot rv spec tar temp thar trace "
                "trip zero").split()


def _err(msg: str) -> int:
    print(f"astroflow nres: {msg}", file=sys.stderr)
    return 2


def _common(p: argparse.ArgumentParser, site: bool = True) -> None:
    p.add_argument("--out", "--run-dir", dest="out", type=Path, required=True, help="run directory")
    p.add_argument("--config", type=Path, help="run configuration (TOML or YAML)")
    p.add_argument("--data-root", help="raw archive root (default: the run's, or NRES_DATA_ROOT)")
    p.add_argument("--targets", help="targets.csv")
    p.add_argument("--workers", type=int)
    p.add_argument("--no-progress", action="store_true")
    if site:
        p.add_argument("--site")
        p.add_argument("--camera", help="camera (checked against the frames; the index reads it from the headers)")
        p.add_argument("--nres-instrument", "--instrument", dest="instrument")


def _day(text: str) -> str:
    """A DAY-OBS date from an ISO date or time (the runbook's --start 2017-12-03T08:00:00)."""
    return datetime.fromisoformat(text).date().isoformat()


def _run(a, settings: dict, **kw) -> int:
    from astroflow import config as run_config
    from astroflow.cli import _run_and_report
    from astroflow.errors import AstroflowError
    from steps.nres.pipeline import NRES

    file_data = run_config.read_config_file(a.config) if a.config else {}
    if not a.config and (a.out / run_config.RUN_FILE).exists():
        file_data = run_config.load(a.out).model_dump(exclude={"code_version"})
    for key in ("data_root", "targets", "site", "instrument"):
        if getattr(a, key, None):
            settings.setdefault(key, getattr(a, key))
    try:
        cfg = run_config.resolve(NRES, file_data, settings=settings,
                                 runner={"workers": a.workers} if a.workers else {})
    except AstroflowError as exc:
        return _err(str(exc))
    return _run_and_report(NRES, cfg, a.out, progress=not a.no_progress, **kw)


def post(argv: list[str]) -> int:
    """Admit raw frames into a run and reduce them (post_to_fits_exchange)."""
    p = argparse.ArgumentParser(prog="astroflow nres post", description="Admit raw frames into a run and reduce them "
                                "(the runbook's post_to_fits_exchange loops).")
    p.add_argument("paths", nargs="+", help="files or glob patterns")
    _common(p)
    a = p.parse_args(argv)
    from astroflow.arrivals import admit

    files = sorted({f for pat in a.paths for f in (globlib.glob(pat) or [pat]) if Path(f).is_file()})
    if not files:
        return _err(f"no such file(s): {' '.join(a.paths)}")
    a.out.mkdir(parents=True, exist_ok=True)
    admit(a.out, files)
    days = sorted({Path(f).parent.parent.name for f in files})
    settings = {"start": _day(f"{days[0][:4]}-{days[0][4:6]}-{days[0][6:]}")}
    last = datetime.strptime(days[-1], "%Y%m%d").date() + timedelta(days=1)
    settings["end"] = last.isoformat()
    return _run(a, settings)


def stack(argv: list[str]) -> int:
    """Stack one calibration type over a window of nights (nres_stack_calibrations)."""
    p = argparse.ArgumentParser(prog="astroflow nres stack", description="Stack calibrations of a type over a window "
                                "(nres_stack_calibrations).")
    _common(p)
    p.add_argument("--calibration-type", required=True, choices=sorted(STACK_UNTIL))
    p.add_argument("--start", required=True)
    p.add_argument("--end")
    p.add_argument("--nights", type=int, help="the window is this many DAY-OBS from --start (the runbook's 18-day loop)")
    p.add_argument("--target", help="TEMPLATE: the standard star")
    a = p.parse_args(argv)
    start = _day(a.start)
    end = (datetime.fromisoformat(start) + timedelta(days=a.nights)).date().isoformat() if a.nights else \
        (_day(a.end) if a.end else None)
    settings = {"start": start, "end": end or (datetime.fromisoformat(start) + timedelta(days=1)).date().isoformat()}
    if a.target:
        settings["templates"] = [a.target]
    return _run(a, settings, until=STACK_UNTIL[a.calibration_type])


def nightly(argv: list[str]) -> int:
    """Reduce and stack last night at a site (the periodic tasks)."""
    p = argparse.ArgumentParser(prog="astroflow nres nightly", description="Reduce and stack last night at a site "
                                "(the periodic make_stacked_calibrations_for_one_night and refine_trace_from_last_night).")
    _common(p)
    p.add_argument("--now", help="the time to count from (ISO, UTC; default now)")
    a = p.parse_args(argv)
    from astroflow.arrivals import last_night

    if a.site not in SITES:
        return _err(f"unknown site {a.site!r}; known: {', '.join(SITES)}")
    now = datetime.fromisoformat(a.now).replace(tzinfo=timezone.utc) if a.now else datetime.now(timezone.utc)
    tz, hour = SITES[a.site]
    return _run(a, {"night": last_night(now, tz, hour), "start": None, "end": None})


def make_zero(argv: list[str]) -> int:
    """Make a ZERO radial-velocity template from a standard's exposures."""
    p = argparse.ArgumentParser(prog="astroflow nres make-zero", description="A ZERO from a standard's exposures.")
    _common(p)
    p.add_argument("--target", required=True)
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    a = p.parse_args(argv)
    return _run(a, {"start": _day(a.start), "end": _day(a.end) if _day(a.end) > _day(a.start) else
                    (datetime.fromisoformat(_day(a.start)) + timedelta(days=1)).date().isoformat(),
                    "templates": [a.target]}, until="template")


def reprocess(argv: list[str]) -> int:
    """Reduce a range again with the current calibrations."""
    p = argparse.ArgumentParser(prog="astroflow nres reprocess", description="Reduce a range again with the current "
                                "calibrations: the frames' products are new commits, the old ones superseded.")
    _common(p)
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--types", default="TARGET", help="observation types to redo, comma-separated")
    a = p.parse_args(argv)
    first = {"BIAS": "reduce_bias", "DARK": "reduce_dark", "LAMPFLAT": "reduce_flat", "DOUBLE": "reduce_arc",
             "TARGET": "reduce_target"}
    types = [t.strip().upper() for t in a.types.split(",") if t.strip()]
    bad = [t for t in types if t not in first]
    if bad:
        return _err(f"unknown observation type(s) {bad}; choose from {', '.join(first)}")
    from steps.nres.pipeline import NRES

    order = [s.name for s in NRES.steps]
    start = min(order.index(first[t]) for t in types)
    return _run(a, {"start": _day(a.start), "end": _day(a.end)}, force=True, start=order[start])


def trace0(argv: list[str]) -> int:
    """A hand trace file (ref_trace.txt) as a camera's TRACE (run_nres_trace0)."""
    p = argparse.ArgumentParser(prog="astroflow nres trace0", description="A hand trace file (the IDL pipeline's "
                                "ref_trace.txt) as the TRACE calibration of a camera (run_nres_trace0).")
    _common(p)
    p.add_argument("--filename", type=Path, required=True)
    p.add_argument("--date", required=True, help="DAY-OBS it is valid from (YYYY-MM-DD)")
    p.add_argument("--nx", type=int, default=4096)
    p.add_argument("--ny", type=int, default=4096)
    p.add_argument("--binning", default="1 1")
    p.add_argument("--mode", default="default")
    a = p.parse_args(argv)
    from steps.nres.science.trace import read_hand_trace, trace_from_hand

    if not a.filename.is_file():
        return _err(f"{a.filename}: no such file")
    traces = trace_from_hand(read_hand_trace(a.filename.read_text()), a.nx, a.ny)
    return _register_trace(a, traces, [a.filename.name])


def trace_refine(argv: list[str]) -> int:
    """Refine the camera's TRACE on two flats (run_nres_trace_refine)."""
    p = argparse.ArgumentParser(prog="astroflow nres trace-refine", description="Refine the camera's TRACE on two "
                                "flats with fibers 0,1 and 1,2 lit (run_nres_trace_refine).")
    _common(p)
    p.add_argument("--flat_filename1", "--flat-filename1", dest="flat1", type=Path, required=True)
    p.add_argument("--flat_filename2", "--flat-filename2", dest="flat2", type=Path, required=True)
    p.add_argument("--date", required=True, help="DAY-OBS the refined trace is valid from (YYYY-MM-DD)")
    p.add_argument("--binning", default="1 1")
    p.add_argument("--mode", default="default")
    a = p.parse_args(argv)
    import numpy as np
    from astropy.io import fits

    from steps.nres.frames import Fibers, header, pixels
    from steps.nres.products import read_traces
    from steps.nres.science.ccd import overscan_correct
    from steps.nres.science.trace import refine_two_flats

    images, lit = [], []
    for f in (a.flat1, a.flat2):
        if not f.is_file():
            return _err(f"{f}: no such file")
        head = header(f)
        image, _ = overscan_correct(pixels(f), head["BIASSEC"], head["TRIMSEC"])
        images.append(image)
        lit.append([i for i, c in enumerate(Fibers.parse(head["OBJECTS"]).state) if c == "1"])
    lib, attrs, at = _library_and_attrs(a)
    current = read_traces(Path(lib.select(_types()["TRACE"], at, attrs).record.path))
    traces = refine_two_flats(images[0], lit[0], images[1], lit[1], current)
    del np, fits
    return _register_trace(a, traces, [a.flat1.name, a.flat2.name])


def _types():
    from steps.nres.calibrations import CALIBRATIONS

    return CALIBRATIONS


def _library_and_attrs(a):
    from astroflow import config as run_config
    from astroflow.calib import Library
    from steps.nres.db import MIGRATIONS

    db_url = run_config.load(a.out).run.db_url if (a.out / run_config.RUN_FILE).exists() else None
    lib = Library.for_run(a.out, db_url, migrations=MIGRATIONS)
    attrs = {"site": a.site, "instrument": a.instrument, "camera": a.camera, "binning": a.binning, "mode": a.mode}
    missing = [k for k, v in attrs.items() if not v]
    if missing:
        raise SystemExit(_err(f"give --{' --'.join(m.replace('_', '-') for m in missing)}"))
    at = datetime.fromisoformat(a.date).replace(tzinfo=timezone.utc)
    return lib, attrs, at


def _register_trace(a, traces, frames: list[str]) -> int:
    from astropy.io import fits

    from steps.nres.calibrations import reduced_path
    from steps.nres.products import write_traces

    lib, attrs, at = _library_and_attrs(a)
    day = at.strftime("%Y%m%d")
    rel = reduced_path(attrs, "TRACE", f"{a.site}{a.instrument}_{a.camera}_trace_{day}_hand.fits")
    path = a.out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    head = fits.Header()
    head["OBSTYPE"], head["DAY-OBS"], head["ORIGIN"] = "TRACE", day, "hand trace"
    write_traces(path, traces, head)
    cid = lib.register("TRACE", path, at, attrs, frames=frames)
    print(json.dumps({"trace": str(path), "calibration_id": cid, "traces": len(traces), "orders": traces.n_orders}))
    return 0


def new_site(argv: list[str]) -> int:
    """The new-site procedure as one resumable run (--dry-run: the plan)."""
    p = argparse.ArgumentParser(prog="astroflow nres new-site", description="The runbook's new-site procedure as one "
                                "resumable run: the reduced tree, the tables, then biases, darks, trace, flats, arcs "
                                "(TRIPLE), ZERO, standard star, science.")
    _common(p)
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--products-root", type=Path, required=True, help="where the reduced tree goes (never under the raw root)")
    p.add_argument("--hand-trace", type=Path, help="a ref_trace.txt to start from instead of the blind trace")
    p.add_argument("--zero", type=Path, help="a ZERO file copied from another site (its row goes into zeros.csv)")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    a = p.parse_args(argv)
    import os

    missing = [f for f in ("site", "camera", "instrument", "data_root") if not getattr(a, f)]
    if missing:
        return _err(f"new-site needs --{' --'.join(m.replace('_', '-') for m in missing)}")
    raw, products = Path(os.path.abspath(a.data_root)), Path(os.path.abspath(a.products_root))
    if products == raw or raw in products.parents:
        return _err(f"the products root {products} lies inside the raw data root {raw}: raw data is read-only")
    from steps.nres.pipeline import NRES

    plan = [f"create {products / 'reduced' / a.site / a.instrument}/{{{','.join(REDUCED_TREE)}}}",
            f"seed the tables from the package defaults (never another site's): sites row {a.site}/{a.instrument}/"
            f"{a.camera}", *([f"trace0 {a.hand_trace}"] if a.hand_trace else []),
            *([f"zeros.csv: add {a.zero} with flags 0100 (usable)"] if a.zero else []),
            f"run nres {_day(a.start)} .. {_day(a.end)}: " + " -> ".join(s.name for s in NRES.steps)]
    if a.dry_run:
        print("\n".join(plan))
        return 0
    tree = products / "reduced" / a.site / a.instrument
    for d in REDUCED_TREE:
        (tree / d).mkdir(parents=True, exist_ok=True)
    _seed_site(a)
    return _run(a, {"start": _day(a.start), "end": _day(a.end)})


def _seed_site(a) -> None:
    from steps.nres import db

    lib, _, _ = _library_and_attrs(argparse.Namespace(**{**vars(a), "binning": "1 1", "mode": "default",
                                                          "date": _day(a.start)}))
    tz, hour = SITES.get(a.site, ("UTC", 12))
    db.add_site(lib, a.site, a.instrument, a.camera, tz, hour)


def db(argv: list[str]) -> int:
    """NRES's tables in the library's database: sites, processed frames."""
    p = argparse.ArgumentParser(prog="astroflow nres db", description="NRES's tables: sites and processed frames.")
    p.add_argument("--out", "--run-dir", dest="out", type=Path, required=True)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from astroflow import config as run_config
    from astroflow.calib import Library
    from steps.nres import db as tables

    if not (a.out / run_config.RUN_FILE).exists():
        return _err(f"{a.out}: not a run directory")
    lib = Library.for_run(a.out, run_config.load(a.out).run.db_url, migrations=tables.MIGRATIONS)
    content = tables.dump(lib)
    if a.json:
        print(json.dumps(content, default=str, indent=1))
    else:
        for name, rows in content.items():
            print(f"{name}: {len(rows)} row(s)")
            for r in rows[:20]:
                print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    return 0


def targets(argv: list[str]) -> int:
    """Check a targets.csv: print its rows, name each malformed one."""
    p = argparse.ArgumentParser(prog="astroflow nres targets", description="Check a targets.csv: every row valid.")
    p.add_argument("file", type=Path)
    a = p.parse_args(argv)
    from steps.nres.tables import read_targets

    if not a.file.is_file():
        return _err(f"{a.file}: no such file")
    found, problems = read_targets(a.file)
    for t in found.values():
        print(f"{t.name:<16} RA {t.ra:9.4f} Dec {t.dec:+9.4f} RV {t.rv if t.rv is not None else 'NULL'} "
              f"Teff {t.teff or 'NULL'} ZERO {t.zero or 'NULL'}")
    for pr in problems:
        print(pr, file=sys.stderr)
    return 1 if problems else 0
