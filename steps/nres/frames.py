"""NRES raw frames as the LCO archive writes them: names, headers, sections, pixels.

A raw NRES composite frame is ``{site}nrs{NN}-{camera}-{YYYYMMDD}-{NNNN}-{type}.fits.fz``:
fpacked, the pixels in the ``SCI`` extension (a compressed image; plain FITS is read too), the
observation described by the primary and extension headers (OBSTYPE, OBJECTS ``f0&f1&f2``,
DAY-OBS, DATE-OBS, EXPTIME, RA/DEC, GAIN, RDNOISE, BIASSEC/TRIMSEC, CCDSUM, CONFMODE, the site's
LATITUDE/LONGITUD/HEIGHT).  Frames are selected by OBSTYPE and OBJECTS, never by the name's type
suffix (the runbook's arc step globbed ``*w00*``, the flats); the suffix only tells which frames
are NRES products at all (``b00 d00 w00 a00 e00``; ``g00``, ``x00`` and the like are ignored).
The detector size is whatever the headers say.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits

from astroflow.arrivals import fits_complete
from astroflow.errors import ItemError
from steps.nres.science.ccd import parse_section

NAME = re.compile(r"^(?P<site>[a-z]{3})nrs(?P<unit>\d{2})-(?P<camera>[a-z]{2}\d{2})-(?P<date>\d{8})-(?P<num>\d{4})"
                  r"-(?P<suffix>[a-z]\d{2})\.fits(?:\.fz)?$")
SUFFIXES = {"b00": "BIAS", "d00": "DARK", "w00": "LAMPFLAT", "a00": "DOUBLE", "e00": "TARGET"}
OBSTYPES = ("BIAS", "DARK", "LAMPFLAT", "DOUBLE", "TARGET")
NEEDS_OBJECTS = ("LAMPFLAT", "DOUBLE", "TARGET")


def is_nres_frame(path: str | Path) -> bool:
    """A raw NRES product by its name (``g00``/``x00`` and other suffixes are not)."""
    m = NAME.match(Path(path).name)
    return bool(m) and m["suffix"] in SUFFIXES


@dataclass(frozen=True)
class Fibers:
    """What each of the three fibers saw (OBJECTS ``f0&f1&f2``; ``none`` when dark)."""

    f0: str
    f1: str
    f2: str

    @classmethod
    def parse(cls, objects: str) -> "Fibers":
        parts = [p.strip() for p in str(objects).split("&")]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"OBJECTS {objects!r} is not f0&f1&f2")
        return cls(*parts)

    @property
    def state(self) -> str:
        """The fiber state a calibration is matched on: which fibers are lit (``110``, ``011``)."""
        return "".join("0" if f == "none" else "1" for f in (self.f0, self.f1, self.f2))

    @property
    def science(self) -> tuple[int, str] | None:
        """(fiber, object) of the star in a TARGET frame: the fiber that is neither ThAr nor dark."""
        for i, f in enumerate((self.f0, self.f1, self.f2)):
            if f not in ("none", "thar", "tung"):
                return i, f
        return None


def header(path: str | Path) -> fits.Header:
    """The primary header updated with the pixel extension's (the archive puts keys in both)."""
    try:
        with fits.open(path) as h:
            head = h[0].header.copy()
            pix = _pixel_hdu(h)
            if pix is not h[0]:
                for card in pix.header.cards:
                    if card.keyword not in ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT",
                                            "EXTNAME", "BSCALE", "BZERO", "ZIMAGE", "TFIELDS") and card.keyword:
                        head[card.keyword] = card.value
                head["NAXIS1"], head["NAXIS2"] = pix.header["NAXIS1"], pix.header["NAXIS2"]
            return head
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise ItemError(f"unreadable FITS file: {exc}", path=path) from None


def pixels(path: str | Path) -> np.ndarray:
    """The raw pixels as float32 (the whole frame, overscan included)."""
    try:
        with fits.open(path) as h:
            data = _pixel_hdu(h).data
            if data is None:
                raise ValueError("no pixel data")
            return np.asarray(data, dtype=np.float32)
    except (OSError, ValueError, IndexError, KeyError, TypeError, EOFError) as exc:
        raise ItemError(f"cannot read the pixels (truncated or corrupt file?): {exc}", path=path) from None


def _pixel_hdu(h: fits.HDUList):
    for hdu in h:
        if hdu.name == "SCI" or (hdu.is_image and hdu.header.get("NAXIS", 0) == 2):
            return hdu
    raise ValueError("no image extension")


def md5(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(str(text).strip().replace("Z", ""))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def record(path: str | Path) -> dict:
    """The index row of one raw frame; a frame the pipeline cannot use fails with the reason."""
    path = Path(path)
    m = NAME.match(path.name)
    incomplete = fits_complete(path)
    if incomplete:
        raise ItemError(f"incomplete FITS file: {incomplete}", path=path)
    head = header(path)
    obstype = str(head.get("OBSTYPE", "")).strip().upper()
    if obstype not in OBSTYPES:
        raise ItemError(f"OBSTYPE {obstype or '(missing)'!r} is not one of {', '.join(OBSTYPES)}", path=path)
    objects = str(head.get("OBJECTS", "")).strip()
    fibers = None
    if obstype in NEEDS_OBJECTS:
        if not objects:
            raise ItemError(f"a {obstype} frame without OBJECTS (which fibers saw what?)", path=path)
        try:
            fibers = Fibers.parse(objects)
        except ValueError as exc:
            raise ItemError(str(exc), path=path) from None
    for key in ("DATE-OBS", "DAY-OBS", "BIASSEC", "TRIMSEC"):
        if key not in head:
            raise ItemError(f"header keyword {key} is missing", path=path)
    ny, nx = int(head["NAXIS2"]), int(head["NAXIS1"])
    try:
        for key in ("BIASSEC", "TRIMSEC"):
            rows, cols = parse_section(head[key])
            if rows.stop > ny or cols.stop > nx:
                raise ValueError(f"{key} {head[key]} lies outside the {nx} x {ny} frame")
    except ValueError as exc:
        raise ItemError(f"wrong dimensions: {exc}", path=path) from None
    science = fibers.science if fibers else None
    return {
        "path": str(path.absolute()),
        "filename": path.name,
        "site": str(head.get("SITEID", m["site"] if m else "")).strip(),
        "instrument": str(head.get("TELESCOP", f"nres{m['unit']}" if m else "")).strip(),
        "camera": str(head.get("INSTRUME", m["camera"] if m else "")).strip(),
        "day_obs": str(head["DAY-OBS"]).strip().replace("-", ""),
        "dateobs": parse_time(head["DATE-OBS"]).isoformat(),
        "obstype": obstype,
        "objects": objects,
        "fiber_state": fibers.state if fibers else "000",
        "object": science[1] if science else str(head.get("OBJECT", "")).strip(),
        "science_fiber": science[0] if science else -1,
        "exptime": float(head.get("EXPTIME", 0.0)),
        "binning": str(head.get("CCDSUM", "1 1")).strip(),
        "mode": str(head.get("CONFMODE", "default")).strip(),
        "ccd_temp": float(head.get("CCDSTEMP", head.get("CCDATEMP", np.nan))),
        "gain": float(head.get("GAIN", 1.0)),
        "read_noise": float(head.get("RDNOISE", np.nan)),
        "biassec": str(head["BIASSEC"]).strip(),
        "trimsec": str(head["TRIMSEC"]).strip(),
        "latitude": float(head.get("LATITUDE", np.nan)),
        "longitude": float(head.get("LONGITUD", np.nan)),
        "height": float(head.get("HEIGHT", np.nan)),
        "ra": str(head.get("RA", "")).strip(),
        "dec": str(head.get("DEC", "")).strip(),
        "nx": nx,
        "ny": ny,
        "md5": md5(path),
    }
