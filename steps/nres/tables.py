"""The NRES CSV files as validated tables, read and written in the original formats.

``targets.csv`` (Name, RA, Dec, Vmag, Bmag, gmag, rmag, imag, Jmag, Kmag, ProperMotionRA,
ProperMotionDE, Parallax, RV, Teff, Logg, ZERO: degrees, mas/yr, mas, km/s, K, dex; -99.9 and
NULL mean missing), ``zeros.csv`` (Filename, Navg, Site, Camera, Jdate, Target, Teff, Logg, B-V,
J-K, Flags), ``standards.csv`` (the IDL pipeline's index of calibration files: Type, Filename,
Navg, Site, Camera, JDdata, Flags), ``ccds.csv`` (camera, nx, ny, datsegmin, datsegmax, gain, rdnois, pixsiz) and
``spectrographs.csv`` (Site, MJD, Ord0, grating and camera first guesses...) keep their columns
so existing sites keep working; a malformed row is a named error with the file and the line,
and the other rows are read.  The four-character ``Flags`` a person set by hand ("0100" after
adding a ZERO) are typed: character 2 is the ZERO's *usable* switch, the others are kept as
they were; the same switch is the calibration library's ``is_bad`` when the library is written
out as ``standards.csv`` and ``zeros.csv`` (:func:`from_library`), which is how a site's
existing tools keep reading the masters astroflow makes.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from astropy.time import Time
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from astroflow.atomic import write_text
from astroflow.errors import ItemError

MISSING = (-99.9, "NULL", "", None)


def _missing(value):
    if value is None:
        return None
    text = str(value).strip()
    if text in ("", "NULL", "null", "None"):
        return None
    try:
        if math.isclose(float(text), -99.9):
            return None
    except ValueError:
        pass
    return text


class Target(BaseModel):
    """One row of targets.csv."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(alias="Name")
    ra: float = Field(alias="RA", ge=0, lt=360, description="deg")
    dec: float = Field(alias="Dec", ge=-90, le=90, description="deg")
    vmag: float | None = Field(None, alias="Vmag")
    bmag: float | None = Field(None, alias="Bmag")
    gmag: float | None = Field(None, alias="gmag")
    rmag: float | None = Field(None, alias="rmag")
    imag: float | None = Field(None, alias="imag")
    jmag: float | None = Field(None, alias="Jmag")
    kmag: float | None = Field(None, alias="Kmag")
    pm_ra: float | None = Field(None, alias="ProperMotionRA", description="mas/yr")
    pm_dec: float | None = Field(None, alias="ProperMotionDE", description="mas/yr")
    parallax: float | None = Field(None, alias="Parallax", description="mas")
    rv: float | None = Field(None, alias="RV", description="km/s")
    teff: float | None = Field(None, alias="Teff", description="K")
    logg: float | None = Field(None, alias="Logg", description="dex")
    zero: str | None = Field(None, alias="ZERO", description="the star's ZERO file, if it has one")

    @field_validator("*", mode="before")
    @classmethod
    def _nulls(cls, v):
        return _missing(v)


TARGET_COLUMNS = [f.alias for f in Target.model_fields.values()]


def read_targets(path: str | Path) -> tuple[dict[str, Target], list[str]]:
    """(targets by name, problems): each malformed row is a problem naming the file and line."""
    targets, problems = {}, []
    text = Path(path).read_text()
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("Name", "RA", "Dec") if c not in (reader.fieldnames or [])]
    if missing:
        raise ItemError(f"targets.csv lacks the column(s) {', '.join(missing)}", path=path)
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):  # too many or too few fields
            n = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
            problems.append(f"{path}:{line}: row {row.get('Name')!r} has {n} fields where the header has "
                            f"{len(reader.fieldnames)}")
            continue
        try:
            t = Target.model_validate({k.strip(): v for k, v in row.items() if k is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            problems.append(f"{path}:{line}: row {row.get('Name')!r}: {'.'.join(map(str, err['loc']))}: {err['msg']}")
            continue
        targets[t.name] = t
    return targets, problems


def _cell(v) -> str:
    if v is None:
        return "NULL"
    return f"{v:g}" if isinstance(v, float) else str(v)


def write_targets(path: str | Path, targets: list[Target]) -> Path:
    """targets.csv in the original format (missing magnitudes as -99.9, a missing ZERO as NULL)."""
    out = io.StringIO()
    out.write(",".join(TARGET_COLUMNS) + "\n")
    for t in targets:
        row = t.model_dump(by_alias=True)
        cells = []
        for c in TARGET_COLUMNS:
            v = row[c]
            cells.append("-99.9" if v is None and c.endswith("mag") else _cell(v))
        out.write(",".join(cells) + "\n")
    return write_text(path, out.getvalue())


class _IndexRow(BaseModel):
    """What a row of zeros.csv and of standards.csv both hold: a file (relative to the site's
    reduced directory), the exposures in it, where it was taken, and the four Flags characters."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    filename: str = Field(alias="Filename")
    navg: int = Field(alias="Navg", ge=0)
    site: str = Field(alias="Site")
    camera: str = Field(alias="Camera")
    flags: str = Field("0100", alias="Flags", pattern=r"^[01]{4}$")

    @property
    def usable(self) -> bool:
        """The hand-set switch ("0100") that lets the pipeline use this file."""
        return self.flags[1] == "1"


class Zero(_IndexRow):
    """One row of zeros.csv: a radial-velocity template (ZERO) file."""

    jdate: float = Field(alias="Jdate")
    target: str = Field(alias="Target")
    teff: float = Field(alias="Teff")
    logg: float = Field(alias="Logg")
    bmv: float = Field(alias="B-V")
    jmk: float = Field(alias="J-K")


class Standard(_IndexRow):
    """One row of standards.csv: a calibration file (BIAS, DARK, FLAT, DOUBLE, TRIPLE, TRACE...)."""

    type: str = Field(alias="Type")
    jdate: float = Field(alias="JDdata")


ZERO_COLUMNS = ["Filename", "Navg", "Site", "Camera", "Jdate", "Target", "Teff", "Logg", "B-V", "J-K", "Flags"]
STANDARD_COLUMNS = ["Type", "Filename", "Navg", "Site", "Camera", "JDdata", "Flags"]


def _read_rows(path: str | Path, model):
    rows = []
    for line, row in enumerate(csv.DictReader(io.StringIO(Path(path).read_text())), start=2):
        try:
            rows.append(model.model_validate({k.strip(): v.strip().strip('"') for k, v in row.items() if k}))
        except ValidationError as exc:
            raise ItemError(f"line {line}: {exc.errors()[0]['msg']}", path=path) from None
    return rows


def _write_rows(path: str | Path, rows, columns) -> Path:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    w.writerow(columns)
    for r in sorted(rows, key=lambda r: (r.jdate, r.filename)):
        row = r.model_dump(by_alias=True)
        w.writerow([row[c] for c in columns])
    return write_text(path, out.getvalue())


def read_zeros(path: str | Path) -> list[Zero]:
    return _read_rows(path, Zero)


def write_zeros(path: str | Path, zeros: list[Zero]) -> Path:
    return _write_rows(path, zeros, ZERO_COLUMNS)


def read_standards(path: str | Path) -> list[Standard]:
    return _read_rows(path, Standard)


def write_standards(path: str | Path, standards: list[Standard]) -> Path:
    return _write_rows(path, standards, STANDARD_COLUMNS)


def _colour(a: float | None, b: float | None) -> float:
    return round(a - b, 3) if a is not None and b is not None else -99.9


def from_library(calibrations, site_dir: Path, targets: dict[str, Target]) -> tuple[list[Standard], list[Zero]]:
    """The rows of standards.csv and zeros.csv for the calibrations (library records) of one site
    and instrument whose files lie under ``site_dir`` (``reduced/{site}/{instrument}``): file names
    relative to it, JD of the observation, Flags "0100" for a usable calibration and "0000" for
    one marked bad; B-V and J-K of a ZERO's star from targets.csv (-99.9 when unknown)."""
    standards, zeros = [], []
    for c in calibrations:
        name = str(Path(c.path).relative_to(site_dir))
        a = c.attributes
        common = {"filename": name, "navg": len(c.frames), "site": a["site"], "camera": a["camera"],
                  "jdate": round(float(Time(c.dateobs).jd), 6), "flags": "0000" if c.is_bad else "0100"}
        if c.type == "ZERO":
            star = targets.get(a["target"])
            zeros.append(Zero(**common, target=a["target"], teff=a.get("teff") or -99.9,
                              logg=a.get("logg") or -99.9, bmv=_colour(star and star.bmag, star and star.vmag),
                              jmk=_colour(star and star.jmag, star and star.kmag)))
        else:
            standards.append(Standard(type=c.type, **common))
    return standards, zeros
