"""The NRES CSV files as validated tables, read and written in the original formats.

``targets.csv`` (Name, RA, Dec, Vmag, Bmag, gmag, rmag, imag, Jmag, Kmag, ProperMotionRA,
ProperMotionDE, Parallax, RV, Teff, Logg, ZERO: degrees, mas/yr, mas, km/s, K, dex; -99.9 and
NULL mean missing), ``zeros.csv`` (Filename, Navg, Site, Camera, Jdate, Target, Teff, Logg, B-V,
J-K, Flags), ``ccds.csv`` (camera, nx, ny, datsegmin, datsegmax, gain, rdnois, pixsiz) and
``spectrographs.csv`` (Site, MJD, Ord0, grating and camera first guesses...) keep their columns
so existing sites keep working; a malformed row is a named error with the file and the line,
and the other rows are read.  The four-character ``Flags`` a person set by hand ("0100" after
adding a ZERO) are typed: character 2 is the ZERO's *usable* switch, the others are kept as
they were.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

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


class Zero(BaseModel):
    """One row of zeros.csv: a radial-velocity template (ZERO) file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    filename: str = Field(alias="Filename")
    navg: int = Field(alias="Navg", ge=0)
    site: str = Field(alias="Site")
    camera: str = Field(alias="Camera")
    jdate: float = Field(alias="Jdate")
    target: str = Field(alias="Target")
    teff: float = Field(alias="Teff")
    logg: float = Field(alias="Logg")
    bmv: float = Field(alias="B-V")
    jmk: float = Field(alias="J-K")
    flags: str = Field("0100", alias="Flags", pattern=r"^[01]{4}$")

    @property
    def usable(self) -> bool:
        """The hand-set switch ("0100") that lets the pipeline use this ZERO."""
        return self.flags[1] == "1"


ZERO_COLUMNS = [f.alias for f in Zero.model_fields.values()]


def read_zeros(path: str | Path) -> list[Zero]:
    rows = []
    for line, row in enumerate(csv.DictReader(io.StringIO(Path(path).read_text())), start=2):
        try:
            rows.append(Zero.model_validate({k.strip(): v.strip().strip('"') for k, v in row.items() if k}))
        except ValidationError as exc:
            raise ItemError(f"line {line}: {exc.errors()[0]['msg']}", path=path) from None
    return rows


def write_zeros(path: str | Path, zeros: list[Zero]) -> Path:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    w.writerow(ZERO_COLUMNS)
    for z in sorted(zeros, key=lambda z: z.jdate):
        w.writerow(list(z.model_dump(by_alias=True).values()))
    return write_text(path, out.getvalue())
