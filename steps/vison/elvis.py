"""The ELVIS data model: CCD frames, the EXP_LOG, HK files and HK limits (cook-book: "data model").

Frames
    ``EUC_{ObsID}_{DDMMYY}D{HHMMSS}T_ROE{n}_CCD{1..3}.fits``: one 2-D unsigned 16-bit image (the
    last HDU with data, ``ROE1_CCD{n}`` as ELVIS writes it), 0 for lost and 65535 for saturated
    pixels.  The frame holds the four quadrants of a CCD273 (H bottom-left, E top-left, F
    top-right, G bottom-right, as DS9 shows them); :meth:`Frame.quadrant` returns one in the
    canonical readout orientation (the first pixel read at index [0, 0]: serial prescan, image,
    serial overscan along a row; image rows, then parallel overscan).  Sizes come from the header:
    a quadrant is ``NAXIS1 / 2`` by ``NAXIS2 / 2``; prescan 51 columns; image 2048 columns unless
    the header says ``CCDCOLS`` (the simulator's reduced geometry), so that the serial overscan is
    what is left (20, or 29 on flight models; anything else is a format error); image rows
    ``CCDROWS`` (default 2066) minus ``VSTART``, the rest of ``NAXIS2 / 2`` being parallel
    overscan (at most 20 rows).  A frame read out partially (``VEND`` below 2066, as in the
    independent sample) has image rows only.

EXP_LOG
    ``EXP_LOG_*.txt``: tab-separated with a header line, one row per CCD and ObsID, CRLF or LF.
    Columns are read by name; the names each ELVIS version writes, the older versions' aliases and
    the types are the data file ``data/explog_columns.json``; rows come back under the canonical
    (7.5.X) names, so logs of several versions and day folders merge (:func:`read_explogs`).

HK
    ``HK_{ObsID}_{DDMMYY}D{HHMMSS}T_ROE1.txt`` (and the day's ``HK_{DD-MM-YY}_ROE1_NN.txt``):
    tab-separated, ``TimeStamp`` (``DD-MM-YY_HH:MM:SS``) then one column per key
    (``data/hk.json`` lists them per ELVIS version); :func:`hk_stats` gives mean, std, min and
    max per key for a frame.  Limits per key (``data/hk.json``, a performance and a safe set):
    relative to the commanded value in the EXP_LOG, absolute, or identity; :func:`check_hk`.

Files being written (caught mid-acquisition): an EXP_LOG or HK line without its line end and with
fewer fields than the header is the line ELVIS is writing, and is left out; every other problem
raises :class:`ElvisFormatError` naming the file and the problem.

Simplified: only ROE1 (as every CalCamp day folder); HK key lists for ELVIS 7.5.X only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
from astroflow.arrivals import fits_complete
from astropy.io import fits

DATA = Path(__file__).parent / "data"
QUADRANTS = ("E", "F", "G", "H")
CCDS = (1, 2, 3)
PRESCAN = 51
IMAGE_COLS = 2048
IMAGE_ROWS = 2066
OVERSCANS = (20, 29)  # serial overscan: test models, flight models
PARALLEL_OVERSCAN = 20
LOST, SATURATED = 0, 65535
REGIONS = ("prescan", "image", "overscan", "pover")
DEFAULT_ELVIS = "7.5.X"
FILTER_WHEEL_NM = {1: 590, 2: 640, 3: 730, 4: 800, 5: 880, 6: 0}  # header WAVE -> nm, vison's default (ogse.FW)

FRAME_NAME = re.compile(r"^EUC_(?P<obsid>\d+)_(?P<date>\d{6}D\d{6}T)_ROE(?P<roe>\d)_CCD(?P<ccd>[123])\.fits$")
HK_NAME = re.compile(r"^HK_(?P<obsid>\d+)_(?P<date>\d{6}D\d{6}T)_ROE(?P<roe>\d)\.txt$")


class ElvisFormatError(ValueError):
    """An ELVIS file that cannot be read as its format says; the message names the file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def parse_elvis_date(text: str) -> dt.datetime:
    """``DDMMYYDHHMMSST`` (file names, EXP_LOG ``date``, header ``DATE``) as a naive UTC datetime."""
    return dt.datetime.strptime(text, "%d%m%yD%H%M%ST")


def format_elvis_date(when: dt.datetime) -> str:
    return when.strftime("%d%m%yD%H%M%ST")


# --- frames ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """One quadrant as present in a file, in canonical orientation (all four are alike)."""

    prescan: int
    image_cols: int
    overscan: int
    image_rows: int
    pover: int  # parallel overscan rows present

    @property
    def width(self) -> int:
        return self.prescan + self.image_cols + self.overscan

    @property
    def height(self) -> int:
        return self.image_rows + self.pover

    @property
    def shape(self) -> tuple[int, int]:
        """The whole frame (NAXIS2, NAXIS1)."""
        return 2 * self.height, 2 * self.width

    def region(self, name: str) -> tuple[slice, slice]:
        """(rows, columns) of a region of a canonical quadrant; ``pover`` spans the image columns."""
        image = slice(self.prescan, self.prescan + self.image_cols)
        rows = slice(0, self.image_rows)
        if name == "prescan":
            return rows, slice(0, self.prescan)
        if name == "image":
            return rows, image
        if name == "overscan":
            return rows, slice(self.prescan + self.image_cols, self.width)
        if name == "pover":
            return slice(self.image_rows, self.height), image
        raise ValueError(f"unknown region {name!r}; one of {', '.join(REGIONS)}")


def geometry_from_header(header: fits.Header, path: str | Path) -> Geometry:
    """The quadrant geometry of a frame from NAXIS1/NAXIS2 (and CCDCOLS, CCDROWS, VSTART if present)."""
    try:
        naxis1, naxis2 = int(header["NAXIS1"]), int(header["NAXIS2"])
    except KeyError as exc:
        raise ElvisFormatError(path, f"header lacks {exc.args[0]}") from None
    if naxis1 % 2 or naxis2 % 2:
        raise ElvisFormatError(path, f"frame {naxis1} x {naxis2} does not split into four quadrants")
    width, height = naxis1 // 2, naxis2 // 2
    cols = int(header.get("CCDCOLS", IMAGE_COLS))
    overscan = width - PRESCAN - cols
    if overscan not in OVERSCANS:
        raise ElvisFormatError(path, f"NAXIS1 = {naxis1} is not 2 x ({PRESCAN} prescan + {cols} image + 20 or 29 "
                                     f"overscan) columns")
    vstart = int(header.get("VSTART", 0))
    rows = min(max(int(header.get("CCDROWS", IMAGE_ROWS)) - vstart, 0), height)
    if height - rows > PARALLEL_OVERSCAN:
        raise ElvisFormatError(path, f"NAXIS2 = {naxis2}: {height - rows} rows per quadrant beyond the image, more than "
                                     f"the {PARALLEL_OVERSCAN} of the parallel overscan")
    return Geometry(PRESCAN, cols, overscan, rows, height - rows)


@dataclass(frozen=True)
class Frame:
    """One ELVIS CCD frame: the raw counts (NAXIS2, NAXIS1) uint16 and what the name and header say."""

    path: Path
    obsid: int
    date: dt.datetime
    roe: int
    ccd: int
    header: fits.Header
    data: np.ndarray
    geometry: Geometry

    def quadrant(self, q: str) -> np.ndarray:
        """Quadrant ``q`` (E, F, G, H) in canonical readout orientation (a view of :attr:`data`)."""
        h, w = self.geometry.height, self.geometry.width
        d = self.data
        if q == "H":
            return d[:h, :w]
        if q == "E":
            return d[h:, :w][::-1, :]
        if q == "F":
            return d[h:, w:][::-1, ::-1]
        if q == "G":
            return d[:h, w:][:, ::-1]
        raise ValueError(f"unknown quadrant {q!r}; one of {', '.join(QUADRANTS)}")

    def region(self, q: str, name: str) -> np.ndarray:
        """A region (prescan, image, overscan, pover) of quadrant ``q``, canonical orientation."""
        rows, cols = self.geometry.region(name)
        return self.quadrant(q)[rows, cols]


def hk_name(obsid: int, date: dt.datetime, roe: int = 1) -> str:
    """The name of a frame's HK file."""
    return f"HK_{obsid}_{format_elvis_date(date)}_ROE{roe}.txt"


def frame_name(obsid: int, date: dt.datetime, ccd: int, roe: int = 1) -> str:
    """The name of a CCD frame."""
    return f"EUC_{obsid}_{format_elvis_date(date)}_ROE{roe}_CCD{ccd}.fits"


def parse_frame_name(path: str | Path) -> dict:
    """ObsID, date, ROE and CCD from an ELVIS frame name; a name of another form is an error."""
    m = FRAME_NAME.match(Path(path).name)
    if m is None:
        raise ElvisFormatError(path, "name is not EUC_{ObsID}_{DDMMYY}D{HHMMSS}T_ROE{n}_CCD{1..3}.fits")
    try:
        date = parse_elvis_date(m["date"])
    except ValueError:
        raise ElvisFormatError(path, f"date {m['date']!r} in the name is not a DDMMYYDHHMMSST date") from None
    return {"obsid": int(m["obsid"]), "date": date, "roe": int(m["roe"]), "ccd": int(m["ccd"])}


def read_frame(path: str | Path) -> Frame:
    """Read an ELVIS frame; a truncated, corrupt or misshapen file raises :class:`ElvisFormatError`."""
    path = Path(path)
    meta = parse_frame_name(path)
    problem = fits_complete(path)
    if problem is not None:
        raise ElvisFormatError(path, f"not a complete FITS file: {problem}")
    try:
        with fits.open(path, memmap=False) as hdus:
            image = [(h.header.copy(), np.asarray(h.data)) for h in hdus if h.data is not None][-1:]
    except (OSError, ValueError, TypeError) as exc:
        raise ElvisFormatError(path, f"FITS does not read: {exc}") from None
    if not image:
        raise ElvisFormatError(path, "no HDU holds an image")
    header, data = image[0]
    if data.ndim != 2:
        raise ElvisFormatError(path, f"image has {data.ndim} dimensions, not 2")
    if data.dtype != np.uint16:
        if data.dtype.kind not in "iuf" or (data.size and (data.min() < LOST or data.max() > SATURATED)):
            raise ElvisFormatError(path, f"image is {data.dtype.name}, not unsigned 16-bit counts")
        data = data.astype(np.uint16)
    return Frame(path, meta["obsid"], meta["date"], meta["roe"], meta["ccd"], header, data,
                 geometry_from_header(header, path))


# --- text files (EXP_LOG, HK) ----------------------------------------------------------------------
def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header fields and (line number, fields) of a tab-separated file; drops blank lines and the
    unfinished last line of a file being written."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ElvisFormatError(path, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ElvisFormatError(path, f"not text (byte {exc.start} is not UTF-8)") from None
    lines = text.split("\n")
    unfinished = lines.pop() if lines else ""
    lines = [ln.rstrip("\r") for ln in lines]
    if not lines or not lines[0].strip():
        raise ElvisFormatError(path, "empty file or no header line")
    header = lines[0].split("\t")
    rows = [(i + 1, ln.split("\t")) for i, ln in enumerate(lines[1:], start=1) if ln.strip()]
    if unfinished.strip():
        fields = unfinished.rstrip("\r").split("\t")
        if len(fields) >= len(header):  # complete but for its line end
            rows.append((len(lines) + 1, fields))
    for number, fields in rows:
        if len(fields) != len(header):
            raise ElvisFormatError(path, f"line {number} has {len(fields)} fields, the header {len(header)}")
    return header, rows


# --- EXP_LOG -------------------------------------------------------------------------------------------
@cache
def explog_maps() -> dict:
    """The column maps per ELVIS version (``data/explog_columns.json``)."""
    return json.loads((DATA / "explog_columns.json").read_text())


_CASTS = {"int": (int, pa.int64()), "float": (float, pa.float64()), "str": (str, pa.string())}


def _explog_version(path: Path, header: list[str], elvis: str | None) -> str:
    versions = explog_maps()["columns"]
    if elvis is not None:
        if elvis not in versions:
            raise ValueError(f"no EXP_LOG column map for ELVIS {elvis!r}; known: {', '.join(versions)}")
        expected = versions[elvis]
        if header != expected:
            missing = [c for c in expected if c not in header]
            extra = [c for c in header if c not in expected]
            detail = f"missing {missing}, unexpected {extra}" if missing or extra else "columns in another order"
            raise ElvisFormatError(path, f"header is not ELVIS {elvis}'s EXP_LOG: {detail}")
        return elvis
    for version in reversed(list(versions)):  # newest first
        if header == versions[version]:
            return version
    raise ElvisFormatError(path, f"header matches no ELVIS version's EXP_LOG columns ({', '.join(versions)}); "
                                 f"it starts {header[:6]}")


def read_explog(path: str | Path, elvis: str | None = None) -> pa.Table:
    """One EXP_LOG as a table under the canonical column names, plus ``explog`` (the file) and
    ``elvis`` (the version whose map its header matched; ``elvis=None`` finds it, and a header
    several versions share, as 6.5.X to 7.5.X do, reads as the newest)."""
    path = Path(path)
    header, rows = _rows(path)
    version = _explog_version(path, header, elvis)
    maps = explog_maps()
    names = [maps["aliases"].get(c, c) for c in header]
    columns = {}
    for i, name in enumerate(names):
        cast, kind = _CASTS[maps["types"].get(name, "str")]
        values = []
        for number, fields in rows:
            try:
                values.append(cast(fields[i].strip()))
            except ValueError:
                raise ElvisFormatError(path, f"line {number}, column {header[i]}: {fields[i]!r} is not "
                                             f"{maps['types'][name]}") from None
        columns[name] = pa.array(values, kind)
    columns["explog"] = pa.array([str(path)] * len(rows), pa.string())
    columns["elvis"] = pa.array([version] * len(rows), pa.string())
    table = pa.table(columns)
    _no_duplicates(table)
    return table


def _no_duplicates(table: pa.Table) -> None:
    seen: dict[tuple[int, str], str] = {}
    for obsid, ccd, src in zip(table["ObsID"].to_pylist(), table["CCD"].to_pylist(), table["explog"].to_pylist()):
        if (obsid, ccd) in seen:
            raise ElvisFormatError(src, f"ObsID {obsid} {ccd} is listed twice (also in {seen[obsid, ccd]})")
        seen[obsid, ccd] = src


def find_explogs(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ElvisFormatError(folder, "day folder does not exist")
    return sorted(folder.glob("EXP_LOG_*.txt"))


def read_explogs(folders: Iterable[str | Path], elvis: str | None = None) -> pa.Table:
    """The EXP_LOGs of day folders merged (their columns the canonical names; ordered by ObsID
    and CCD); an ObsID and CCD in two logs is an error naming both."""
    tables = []
    for folder in folders:
        logs = find_explogs(folder)
        if not logs:
            raise ElvisFormatError(folder, "no EXP_LOG_*.txt in the day folder")
        tables.extend(read_explog(p, elvis) for p in logs)
    if not tables:
        raise ValueError("no day folder given")
    names = list(dict.fromkeys(n for t in tables for n in t.column_names))
    merged = pa.concat_tables([_with_columns(t, names) for t in tables])
    _no_duplicates(merged)
    return merged.sort_by([("ObsID", "ascending"), ("CCD", "ascending")])


def _with_columns(table: pa.Table, names: list[str]) -> pa.Table:
    """``table`` with every column of ``names`` (nulls where its version has none), in that order."""
    types = {n: _CASTS[explog_maps()["types"].get(n, "str")][1] for n in names}
    return pa.table({n: table[n] if n in table.column_names else pa.nulls(len(table), types[n]) for n in names})


# --- HK ------------------------------------------------------------------------------------------------
@cache
def hk_data(elvis: str = DEFAULT_ELVIS) -> dict:
    versions = json.loads((DATA / "hk.json").read_text())["versions"]
    if elvis not in versions:
        raise ValueError(f"no HK keys and limits for ELVIS {elvis!r}; known: {', '.join(versions)}")
    return versions[elvis]


@dataclass(frozen=True)
class HKSeries:
    """An HK file's readings: ``times`` (datetime64[s]) and ``values`` (readings x keys)."""

    path: Path
    keys: tuple[str, ...]
    times: np.ndarray
    values: np.ndarray

    def column(self, key: str) -> np.ndarray:
        return self.values[:, self.keys.index(key)]


def read_hk(path: str | Path, elvis: str = DEFAULT_ELVIS) -> HKSeries:
    """Read an HK file; every key of the version must be there and every value a number."""
    path = Path(path)
    header, rows = _rows(path)
    if header[0] != "TimeStamp":
        raise ElvisFormatError(path, f"first column is {header[0]!r}, not TimeStamp")
    keys = tuple(header[1:])
    missing = [k for k in hk_data(elvis)["keys"] if k not in keys]
    if missing:
        raise ElvisFormatError(path, f"HK keys of ELVIS {elvis} missing: {missing}")
    times, values = [], []
    for number, fields in rows:
        try:
            times.append(dt.datetime.strptime(fields[0].strip(), "%d-%m-%y_%H:%M:%S"))
        except ValueError:
            raise ElvisFormatError(path, f"line {number}: TimeStamp {fields[0]!r} is not DD-MM-YY_HH:MM:SS") from None
        try:
            values.append([float(v) for v in fields[1:]])
        except ValueError:
            bad = next(k for k, v in zip(keys, fields[1:]) if not _is_number(v))
            raise ElvisFormatError(path, f"line {number}, key {bad}: not a number") from None
    return HKSeries(path, keys, np.array(times, dtype="datetime64[s]"),
                    np.array(values, dtype=np.float64).reshape(len(rows), len(keys)))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def hk_stats(series: HKSeries) -> dict[str, dict[str, float]]:
    """Mean, std, min and max of each key over a frame's readings."""
    if not len(series.values):
        raise ElvisFormatError(series.path, "no HK readings")
    v = series.values
    return {k: {"mean": float(m), "std": float(s), "min": float(lo), "max": float(hi)}
            for k, m, s, lo, hi in zip(series.keys, v.mean(0), v.std(0), v.min(0), v.max(0))}


# --- HK limits -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HKViolation:
    """One HK key outside its limit in one frame."""

    key: str
    limits: str  # performance | safe
    kind: str  # R (relative to commanded) | A (absolute) | I (identity)
    low: float  # for I: the required value
    high: float
    commanded: float | None
    min: float
    max: float

    @property
    def ccd_temperature(self) -> bool:
        """A CCD temperature key (CCDTEMP_OOL rather than HK_OOL)."""
        return re.fullmatch(r"CCD\d_TEMP_[TB]", self.key) is not None

    def __str__(self) -> str:
        if self.kind == "I":
            return f"{self.key} = {self.min:g}..{self.max:g}, not {self.low:g} ({self.limits})"
        ref = f" of commanded {self.commanded:g}" if self.kind == "R" else ""
        return f"{self.key} {self.min:g}..{self.max:g} outside [{self.low:g}, {self.high:g}]{ref} ({self.limits})"


def hk_limits(limits: str = "performance", elvis: str = DEFAULT_ELVIS) -> dict[str, list]:
    sets = hk_data(elvis)["limits"]
    if limits not in sets:
        raise ValueError(f"unknown HK limit set {limits!r}; one of {', '.join(sets)}")
    return sets[limits]


def check_hk(stats: Mapping[str, Mapping[str, float]], commanded: Mapping[str, float], *,
             limits: str = "performance", elvis: str = DEFAULT_ELVIS) -> list[HKViolation]:
    """The keys of one frame's HK statistics outside their limits.  ``commanded`` is the frame's
    EXP_LOG row (canonical names): relative limits apply to HK minus its commanded column."""
    table = hk_limits(limits, elvis)
    links = hk_data(elvis)["commanded"]
    missing = [k for k in table if k not in stats]
    if missing:
        raise ValueError(f"HK statistics lack keys with limits: {missing}")
    out = []
    for key, (kind, *bounds) in table.items():
        lo_v, hi_v = stats[key]["min"], stats[key]["max"]
        ref = None
        if kind == "I":
            bad = lo_v != bounds[0] or hi_v != bounds[0]
            bounds = [bounds[0], bounds[0]]
        else:
            low, high = bounds
            if kind == "R":
                ref = float(commanded[links[key]])
                low, high = ref + low, ref + high
            bad = lo_v < low or hi_v > high
            bounds = [low, high]
        if bad:
            out.append(HKViolation(key, limits, kind, bounds[0], bounds[1], ref, lo_v, hi_v))
    return out
