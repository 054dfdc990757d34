"""``astroflow calib``: list and show calibrations, explain an item's calibrations, mark them bad.

    astroflow calib list [--type TYPE] [--bad | --good] [--attr NAME=VALUE ...]
    astroflow calib show PATH|ID
    astroflow calib explain RUN STEP:ITEM         (or RUN PRODUCT, a product path relative to RUN)
    astroflow calib mark-bad PATH|ID --reason TEXT [--dry-run] [--user NAME]
    astroflow calib mark-good PATH|ID [--user NAME]

Every command takes ``--db URL`` or ``--run RUN`` (that run's library: ``$ASTROFLOW_DB_URL``, else
``RUN/calibrations.db``) and ``--json``.  ``explain`` reads the run's ledger (the calibrations each
item recorded), redoes each look-up to list the candidates it rejected and why, and says whether
the same look-up would choose differently today.  ``mark-bad --dry-run`` lists the items that used
a calibration, which a re-run would recompute, and changes nothing.

Exit status: 0 done; 2 a usage error, nothing found, or a library that cannot be opened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from astroflow import rundir
from astroflow.calib.library import ENV_URL, CalibrationNotFound, Library
from astroflow.calib.records import Calibration, iso
from astroflow.calib.policy import CalibType, NoCalibration
from astroflow.errors import AstroflowError, ConfigError

MAX_REJECTED_SHOWN = 20  # per calibration in explain's text output (--json has them all)


def main(argv: list[str], out: TextIO | None = None) -> int:
    """Run ``astroflow calib ARGV`` and return the exit status."""
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.command(args, out)
    except AstroflowError as exc:
        print(f"astroflow calib: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="URL", help="the library's database URL (sqlite:///PATH, postgresql+psycopg://...)")
    where.add_argument("--run", metavar="RUN", type=Path,
                       help=f"the library of this run (${ENV_URL}, else RUN/calibrations.db)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(prog="astroflow calib", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    sub = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    ls = sub.add_parser("list", parents=[common], help="calibrations, by type and time")
    ls.add_argument("--type", help="only this type")
    state = ls.add_mutually_exclusive_group()
    state.add_argument("--bad", dest="bad", action="store_const", const=True, help="only those marked bad")
    state.add_argument("--good", dest="bad", action="store_const", const=False, help="only those not marked bad")
    ls.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE", help="only those with this attribute")
    ls.set_defaults(command=_list)

    show = sub.add_parser("show", parents=[common], help="one calibration, the items that used it, its history")
    show.add_argument("target", metavar="PATH|ID")
    show.set_defaults(command=_show)

    explain = sub.add_parser("explain", parents=[common], help="why an item of a run used its calibrations")
    explain.add_argument("run_dir", metavar="RUN", type=Path)
    explain.add_argument("item", metavar="STEP:ITEM|PRODUCT")
    explain.set_defaults(command=_explain)

    bad = sub.add_parser("mark-bad", parents=[common], help="never select a calibration again; list what used it")
    bad.add_argument("target", metavar="PATH|ID")
    bad.add_argument("--reason", required=True, help="why it is bad (kept in its history)")
    bad.add_argument("--dry-run", action="store_true", help="only list the items that used it")
    bad.add_argument("--user", help="who marks it (default: the login name)")
    bad.set_defaults(command=_mark_bad)

    good = sub.add_parser("mark-good", parents=[common], help="clear a calibration's bad flag")
    good.add_argument("target", metavar="PATH|ID")
    good.add_argument("--user", help="who marks it (default: the login name)")
    good.set_defaults(command=_mark_good)
    return parser


def _library(args: argparse.Namespace, run_dir: Path | None = None) -> Library:
    if args.db:
        return Library(args.db)
    run = args.run or run_dir
    if run is not None:
        return Library.for_run(run, _run_db_url(run))
    if os.environ.get(ENV_URL):
        return Library(os.environ[ENV_URL])
    raise ConfigError(f"which library? give --db URL or --run RUN (or set ${ENV_URL})")


def _run_db_url(run: Path) -> str | None:
    """The ``[run] db_url`` a run was configured with (None: the run's default library)."""
    from astroflow import config

    try:
        return config.load(run).run.db_url
    except ConfigError:
        return None


def _target(text: str) -> int | str:
    """An id (all digits) or a path."""
    return int(text) if text.isdigit() else text


def _emit(args: argparse.Namespace, out: TextIO, data, lines: list[str]) -> None:
    print(json.dumps(data, indent=2) if args.json else "\n".join(lines), file=out)


def _line(cal: Calibration) -> str:
    attrs = " ".join(f"{k}={v}" for k, v in sorted(cal.attributes.items()))
    flags = "BAD" if cal.is_bad else ("master" if cal.is_master else "frame")
    return f"#{cal.id:<5} {cal.type:<12} {iso(cal.dateobs):<25} {flags:<6} {cal.path}  {attrs}"


# commands -----------------------------------------------------------------------------------


def _list(args, out) -> int:
    attributes = {}
    for pair in args.attr:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--attr {pair!r}: expected NAME=VALUE")
        attributes[name] = value
    found = _library(args).list(args.type, bad=args.bad, **attributes)
    _emit(args, out, [c.as_dict() for c in found], [_line(c) for c in found] or ["(no calibrations)"])
    return 0


def _show(args, out) -> int:
    lib = _library(args)
    cal = lib.get(_target(args.target))
    uses, events = lib.uses_of(cal.id), lib.events(cal.id)
    data = {"calibration": cal.as_dict(), "uses": uses, "events": events}
    lines = [f"{k + ':':<13} {json.dumps(v) if k == 'attributes' else v}"
             for k, v in cal.as_dict().items() if k not in ("frames", "provenance")]
    prov = ", ".join(f"{k}={v}" for k, v in vars(cal.provenance).items() if v is not None)
    lines.append(f"{'provenance:':<13} {prov or '(none)'}")
    lines.append(f"{'frames:':<13} {len(cal.frames)}" + "".join(f"\n  {f}" for f in cal.frames))
    lines.append(f"used by {len(uses)} item(s):")
    lines += [f"  {u['run']}  {u['step']}:{u['item']}{'  (fallback)' if u['fallback'] else ''}" for u in uses]
    lines.append("history:")
    lines += [f"  {e['time']}  {e['action']:<9} {e['user'] or '-'}: {e['reason'] or ''}" for e in events]
    _emit(args, out, data, lines)
    return 0


def _mark_bad(args, out) -> int:
    lib = _library(args)
    cal = lib.get(_target(args.target))
    uses = lib.uses_of(cal.id)
    if not args.dry_run:
        cal = lib.mark_bad(cal.id, args.reason, user=args.user)
    verb = "would mark" if args.dry_run else "marked"
    note = "  (dry run: nothing changed)" if args.dry_run else ""
    lines = [f"{verb} #{cal.id} {cal.path} bad: {args.reason}{note}"]
    if uses:
        lines.append(f"{len(uses)} item(s) used it and {'would be' if args.dry_run else 'are to be'} recomputed:")
        lines += [f"  {u['run']}  {u['step']}:{u['item']}" for u in uses]
    else:
        lines.append("no item used it")
    data = {"calibration": cal.as_dict(), "dry_run": args.dry_run, "reason": args.reason,
            "items": [{k: u[k] for k in ("run", "step", "item", "unit")} for u in uses]}
    _emit(args, out, data, lines)
    return 0


def _mark_good(args, out) -> int:
    cal = _library(args).mark_good(_target(args.target), user=args.user)
    _emit(args, out, {"calibration": cal.as_dict()}, [f"#{cal.id} {cal.path} is good"])
    return 0


def _explain(args, out) -> int:
    from astroflow import config

    run = args.run_dir
    pipeline = config.load(run).pipeline  # also checks that RUN is a run directory
    lib = _library(args, run)
    found = _ledger_items(run, args.item)
    items = []
    for step, manifest, item in found:
        records = manifest.get("calibrations", {}).get(item, [])
        items.append({"step": step, "item": item, "unit": manifest.get("unit"),
                      "calibrations": [_redo(lib, rec) for rec in records]})
    data = {"run": str(run), "pipeline": pipeline, "library": lib.url, "items": items}
    _emit(args, out, data, _explain_lines(data))
    return 0


# explain ------------------------------------------------------------------------------------


def _ledger_items(run: Path, target: str) -> list[tuple[str, dict, str]]:
    """(step, manifest, item id) for ``STEP:ITEM`` or a product path, from the latest manifest
    (in ledger order) that has the item or lists the product."""
    step, sep, item = target.partition(":")
    if sep and (run / step / rundir.MANIFESTS).is_dir():
        latest = None
        for m in rundir.manifests(run / step):
            if item in m.get("calibrations", {}) or item in m.get("items", ()) or item in m.get("ok", ()):
                latest = m
        if latest is None:
            raise CalibrationNotFound(f"{run / step}: no item {item!r} in the ledger")
        return [(step, latest, item)]
    product = Path(target)
    if product.is_absolute():
        try:
            product = product.resolve().relative_to(run.resolve())
        except ValueError:
            raise CalibrationNotFound(f"{target}: not inside the run directory {run}") from None
    rel = product.as_posix()
    found = []
    for step_dir in sorted(p for p in run.iterdir() if (p / rundir.MANIFESTS).is_dir()):
        latest = None
        for m in rundir.manifests(step_dir):
            if rel in m.get("files", []):
                latest = m
        if latest is not None:
            found += [(step_dir.name, latest, i) for i in _items_of_product(latest, rel)]
    if not found:
        raise CalibrationNotFound(f"{run}: {target!r} is neither STEP:ITEM of a step there nor a product "
                                  f"a manifest lists")
    return found


def _items_of_product(manifest: dict, rel: str) -> list[str]:
    """The items of a unit a product belongs to: those whose id occurs in its path (the longest
    such ids), else every item of the unit that used calibrations (manifests list files per unit)."""
    ids = list(manifest.get("calibrations", {}))
    named = [i for i in ids if i and i in rel]
    named = [i for i in named if not any(i != j and i in j for j in named)]
    return named or ids


def _redo(lib: Library, rec: dict) -> dict:
    """A recorded choice, the same look-up redone today, and the candidates it rejects."""
    result = {"recorded": rec, "now_bad": None, "missing": False, "today": None, "differs": None,
              "rejected": [], "today_error": None}
    try:
        current = lib.get(int(rec["id"]))
        result["now_bad"] = current.bad_reason if current.is_bad else None
    except CalibrationNotFound:
        result["missing"] = True
    if not isinstance(rec.get("policy"), dict) or "at" not in rec:
        result["today_error"] = "the record lacks the policy or the observation time; the look-up cannot be redone"
        return result
    ctype = CalibType.from_record(rec["policy"])
    at = datetime.fromisoformat(rec["at"])
    try:
        choice = lib.select(ctype, at, rec.get("attributes", {}))
    except NoCalibration as exc:
        result["differs"] = True
        result["today_error"] = "no calibration qualifies now (each candidate's criterion is under rejected)"
        rejected = exc.rejected
    else:
        result["today"] = {"id": choice.record.id, "path": choice.record.path, "reason": choice.reason,
                           "fallback": choice.fallback}
        result["differs"] = choice.record.id != rec["id"]
        rejected = choice.rejected
    result["rejected"] = [{"id": c.id, "path": c.path, "dateobs": iso(c.dateobs), "why": why} for c, why in rejected]
    return result


def _explain_lines(data: dict) -> list[str]:
    lines = [f"run {data['run']} ({data['pipeline']}), library {data['library']}"]
    for it in data["items"]:
        lines.append(f"{it['step']}:{it['item']} (unit {it['unit']})")
        if not it["calibrations"]:
            lines.append("  used no calibrations")
        for c in it["calibrations"]:
            rec = c["recorded"]
            policy = rec.get("policy")
            lines.append(f"  {rec['type']}: #{rec['id']} {rec['path']} ({rec['dateobs']})")
            lines.append(f"    why:      {rec['reason']}")
            if isinstance(policy, dict):
                lines.append(f"    policy:   {CalibType.from_record(policy).describe()}")
            rejected = c["rejected"]
            for n, r in enumerate(rejected[:MAX_REJECTED_SHOWN]):
                label = "rejected: " if n == 0 else " " * 10
                lines.append(f"    {label}#{r['id']} {r['path']} ({r['dateobs']}): {r['why']}")
            if len(rejected) > MAX_REJECTED_SHOWN:
                lines.append(f"              ... and {len(rejected) - MAX_REJECTED_SHOWN} more (--json lists them all)")
            if not rejected and c["today_error"] is None:
                lines.append("    rejected: none (the only candidate)")
            if c["missing"]:
                lines.append("    now:      no longer in the library")
            elif c["now_bad"] is not None:
                lines.append(f"    now:      marked bad: {c['now_bad']}")
            if c["today"] is None:
                lines.append(f"    today:    {c['today_error']}")
            elif c["differs"]:
                lines.append(f"    today:    would choose #{c['today']['id']} {c['today']['path']} instead "
                             f"({c['today']['reason']})")
            else:
                lines.append("    today:    the same choice")
    return lines
