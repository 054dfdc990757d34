"""Readers of the catalogue tables: TEV TOI CSV (runbook step 11) and the
NASA Exoplanet Archive known-planet table (step 6).

`read_toi_csv` replaces the TOI parsing of TEC `federate_toiWtce.py` and the
runbook's `sedcsvfix` sed edit: a real RFC-4180 reader (quoted commas, doubled
quotes, even line breaks inside quotes) and columns looked up by name, with
the preamble found by looking for the header row.  `read_known_planets`
replaces the online query of `federate_knownPWtce.py` with an offline file.

Differences from the original, on purpose: the disposition is kept whole
("APC", not "AP"); epochs given in BJD (> 2,400,000) are converted to BTJD.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from steps.tec.products import ProductError

__all__ = ["read_toi_csv", "read_known_planets", "TOI_COLUMNS", "KNOWN_PLANET_COLUMNS"]

BTJD_OFFSET = 2457000.0
NAN = float("nan")
SINGLE_TRANSIT_PERIOD_D = 1000.0  # federate_toiWtce's stand-in for a NaN period

# field -> accepted header names (compared lower-case, spaces collapsed).
TOI_COLUMNS = {
    "tic": ("tic", "tic id", "ticid", "tic_id"),
    "toi": ("full toi id", "toi", "toi id", "toi_id", "full toi"),
    "disposition": ("toi disposition", "disposition", "tess disposition", "tfopwg disposition"),
    "ra": ("tic right ascension", "right ascension", "ra", "ra (deg)", "ra value"),
    "dec": ("tic declination", "declination", "dec", "dec (deg)", "dec value"),
    "epoch": ("orbital epoch value", "epoch value", "orbital epoch", "epoch", "epoc", "epoch (btjd)",
              "epoch (bjd)", "transit epoch (bjd)", "orbital epoch (btjd) value"),
    "period": ("orbital period value", "orbital period (days) value", "period value", "orbital period",
               "period", "period (days)", "transit period (days)"),
    "duration": ("transit duration value", "transit duration (hours) value", "transit duration",
                 "duration", "duration (hours)", "transit duration (hours)"),
    "depth": ("transit depth value", "transit depth (ppm) value", "transit depth", "depth",
              "depth (ppm)", "transit depth (ppm)"),
}
TOI_REQUIRED = ("tic", "toi", "epoch", "period")

KNOWN_PLANET_COLUMNS = {
    "name": ("pl_name",),
    "hostname": ("hostname", "pl_hostname"),
    "tic": ("tic_id",),
    "ra": ("ra", "rastr"),
    "dec": ("dec", "decstr"),
    "period": ("pl_orbper",),
    "epoch": ("pl_tranmid",),
    "duration": ("pl_trandur",),
}
KNOWN_REQUIRED = ("name", "period", "epoch")


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("\ufeff", "").strip().lower())


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ProductError(path, "file does not exist") from exc
    except OSError as exc:
        raise ProductError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise ProductError(path, "file is empty")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _locate(header: list[str], aliases: dict) -> dict:
    names = [_norm(h) for h in header]
    idx = {}
    for field, options in aliases.items():
        for opt in options:
            if opt in names:
                idx[field] = names.index(opt)
                break
    return idx


def _float(path, line, cell: str, column: str) -> float:
    s = cell.strip()
    if s == "" or s.lower() in ("nan", "null", "none", "--"):
        return NAN
    try:
        return float(s)
    except ValueError:
        raise ProductError(path, f"line {line}: column {column!r} value {cell!r} is not a number")


def _btjd(x: float) -> float:
    return x - BTJD_OFFSET if math.isfinite(x) and x > 2400000.0 else x


def read_toi_csv(path) -> list[dict]:
    """Read a TEV TOI catalogue CSV (`csv-file-toi-catalog*.csv`).

    Lines before the header row (4 preamble lines in current TEV exports,
    none in 2019 "toi-plus" files) are skipped; the header row is the first
    row naming a TIC and a TOI column.  Returns one dict per TOI: tic (int),
    toi (float, e.g. 1234.01), disposition (full string), ra, dec (deg),
    epoch_btjd, period (d; NaN -> 1000 as in federate_toiWtce), duration_h,
    depth_ppm (NaN when the column is absent or blank).

    Raises ProductError when the file is empty, has no header row with the
    required columns (tic, toi, epoch, period), or a row has a bad TIC/TOI or
    number, naming the line."""
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = None
    idx: dict = {}
    try:
        for row in reader:
            found = _locate(row, TOI_COLUMNS)
            if "tic" in found and "toi" in found:
                header, idx = row, found
                header_line = reader.line_num
                break
            if reader.line_num > 50:
                break
        if header is None:
            raise ProductError(path, "no header row naming a TIC column and a TOI column in the first 50 lines "
                                     f"(expected e.g. {TOI_COLUMNS['tic'][1]!r} and {TOI_COLUMNS['toi'][0]!r})")
        missing = [f for f in TOI_REQUIRED if f not in idx]
        if missing:
            raise ProductError(path, "header row (line {}) lacks required column(s) {}; looked for names {}".format(
                header_line, ", ".join(missing), "; ".join(f"{f}: {TOI_COLUMNS[f]}" for f in missing)))
        need = max(idx[f] for f in TOI_REQUIRED)
        out = []
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= need:
                raise ProductError(path, f"line {line}: {len(row)} fields, header has {len(header)} "
                                         "(broken quoting?)")

            def cell(field):
                i = idx.get(field)
                return row[i] if i is not None and i < len(row) else ""

            try:
                tic = int(float(cell("tic").strip()))
            except ValueError:
                raise ProductError(path, f"line {line}: TIC {cell('tic')!r} is not an integer")
            toi = _float(path, line, cell("toi"), "toi")
            if not math.isfinite(toi):
                raise ProductError(path, f"line {line}: TOI is blank")
            period = _float(path, line, cell("period"), "period")
            out.append(dict(
                tic=tic,
                toi=toi,
                disposition=cell("disposition").strip(),
                ra=_float(path, line, cell("ra"), "ra"),
                dec=_float(path, line, cell("dec"), "dec"),
                epoch_btjd=_btjd(_float(path, line, cell("epoch"), "epoch")),
                period=period if math.isfinite(period) else SINGLE_TRANSIT_PERIOD_D,
                duration_h=_float(path, line, cell("duration"), "duration"),
                depth_ppm=_float(path, line, cell("depth"), "depth"),
            ))
    except csv.Error as exc:
        raise ProductError(path, f"line {reader.line_num}: malformed CSV: {exc}") from exc
    if not out:
        raise ProductError(path, "header row found but no TOI rows follow it")
    return out


def _angle(path, line, s: str, hours: bool) -> float:
    s = s.strip()
    if s == "":
        return NAN
    try:
        return float(s)
    except ValueError:
        pass
    parts = re.findall(r"[-+]?\d+(?:\.\d*)?", s)
    if len(parts) != 3:
        raise ProductError(path, f"line {line}: angle {s!r} is neither decimal degrees nor sexagesimal")
    if hours and re.search(r"[d\u00b0]", s):
        hours = False  # written in degrees, e.g. 104d53m33.7s
    sign = -1.0 if s.lstrip().startswith("-") else 1.0
    a, b, c = (abs(float(p)) for p in parts)
    val = sign * (a + b / 60.0 + c / 3600.0)
    return val * 15.0 if hours else val


def read_known_planets(path) -> list[dict]:
    """Read a NASA Exoplanet Archive CSV of known transiting planets (offline
    input of federate_knownPWtce).

    Leading `#` lines are skipped; columns by name: pl_name, hostname,
    tic_id ("TIC 123"), ra, dec (decimal degrees or sexagesimal strings such
    as 07h00m54.2s / -59d41m06s), pl_orbper (d), pl_tranmid (BJD -> BTJD),
    pl_trandur (h).  Returns dicts: name, hostname, tic (-1 when absent),
    ra, dec (deg), period, epoch_btjd, duration_h.  Raises ProductError on an
    empty file, missing required columns (pl_name, pl_orbper, pl_tranmid) or
    a bad row."""
    path = Path(path)
    text = _read_text(path)
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.lstrip().startswith("#")]
    skipped = len(text.splitlines()) - len(lines)
    reader = csv.reader(io.StringIO("".join(lines), newline=""))
    try:
        header = next((r for r in reader if r and any(c.strip() for c in r)), None)
        if header is None:
            raise ProductError(path, "no header row after the # comment lines")
        idx = _locate(header, KNOWN_PLANET_COLUMNS)
        missing = [f for f in KNOWN_REQUIRED if f not in idx]
        if missing:
            raise ProductError(path, "header row lacks required column(s) {} (has {})".format(
                ", ".join(KNOWN_PLANET_COLUMNS[f][0] for f in missing), ", ".join(header)))
        out = []
        for row in reader:
            line = reader.line_num + skipped
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise ProductError(path, f"line {line}: {len(row)} fields, header has {len(header)}")

            def cell(field):
                i = idx.get(field)
                return row[i] if i is not None else ""

            tic_s = re.sub(r"(?i)^\s*tic\s*", "", cell("tic")).strip()
            try:
                tic = int(tic_s) if tic_s else -1
            except ValueError:
                raise ProductError(path, f"line {line}: tic_id {cell('tic')!r} is not 'TIC <number>'")
            out.append(dict(
                name=cell("name").strip(),
                hostname=cell("hostname").strip(),
                tic=tic,
                ra=_angle(path, line, cell("ra"), hours=True),
                dec=_angle(path, line, cell("dec"), hours=False),
                period=_float(path, line, cell("period"), "pl_orbper"),
                epoch_btjd=_btjd(_float(path, line, cell("epoch"), "pl_tranmid")),
                duration_h=_float(path, line, cell("duration"), "pl_trandur"),
            ))
    except csv.Error as exc:
        raise ProductError(path, f"malformed CSV: {exc}") from exc
    if not out:
        raise ProductError(path, "header row found but no planet rows follow it")
    return out
