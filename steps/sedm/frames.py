"""Reading SEDM raw frames: what a frame is, from its header as the observatory writes it.

Frames are classified by their header, never by their file name: ``CAM_NAME`` (IFU or RC, the
guider), ``IMGTYPE`` (bias, dome, lamp, standard, science, guider), ``OBJECT`` as the
observatory's scripts write it for the afternoon sets (``Calib: bias 3 of 10``, ``Calib: Hg 1 of
5``: the set's kind, the frame's place and the announced size; words may stand between the kind
and the count), ``ADCSPEED`` (MHz: the bias set is per speed), ``GAIN``, ``EXPTIME``,
``MJD_OBS``/``DATE-OBS``, ``AIRMASS``, and the overscan and prescan columns from
``OSCANX0``/``OSCANX1`` and ``PSCANX0``/``PSCANX1`` (0-based, end exclusive), else columns
2045-2048 (1-based) of a 2048-wide frame.  A header that contradicts itself (a lamp frame whose
OBJECT names no lamp, a calibration set whose ``n of N`` is not a count) is a
:class:`FrameFormatError` naming the key.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from astroflow.errors import ItemError

CALIB = re.compile(r"^\s*calib\s*:\s*(?P<kind>bias|dome|hg|cd|xe)\b(?P<rest>.*?)(?:(?P<n>\d+)\s+of\s+(?P<N>\d+))?\s*$",
                   re.IGNORECASE)
KINDS = {"bias": "bias", "dome": "dome", "hg": "Hg", "cd": "Cd", "xe": "Xe"}
LAMPS = ("Hg", "Cd", "Xe")
IMGTYPES = ("bias", "dome", "lamp", "standard", "science", "guider", "focus", "test", "twilight")
FULL_WIDTH = 2048
DEFAULT_OVERSCAN = (2044, 2048)  # columns 2045-2048, 1-based


class FrameFormatError(ItemError):
    """A raw frame's header does not say what the frame is (the key and value named)."""


@dataclass(frozen=True)
class FrameInfo:
    camera: str  # IFU or RC
    imgtype: str
    kind: str  # bias, dome, Hg, Cd, Xe, standard, science, guider, other
    object: str
    set_index: int  # n of "n of N" (0: not announced)
    set_size: int  # N of "n of N" (0: not announced)
    adcspeed: float
    gain: float
    exptime: float
    mjd_obs: float
    dateobs: str
    airmass: float
    nx: int
    ny: int
    oscan_x0: int
    oscan_x1: int
    pscan_x0: int
    pscan_x1: int

    def record(self) -> dict:
        return asdict(self)


def _num(header, key: str, default=None) -> float:
    value = header.get(key, default)
    if value is None or value == "":
        if default is not None:
            return float(default)
        raise FrameFormatError(f"header has no {key}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FrameFormatError(f"header {key} = {value!r} is not a number") from None


def scan_columns(header) -> tuple[int, int, int, int]:
    """(oscan_x0, oscan_x1, pscan_x0, pscan_x1), 0-based, end exclusive; no prescan: (0, 0)."""
    nx = int(_num(header, "NAXIS1"))
    if "OSCANX0" in header or "OSCANX1" in header:
        o0, o1 = int(_num(header, "OSCANX0")), int(_num(header, "OSCANX1"))
    elif nx == FULL_WIDTH:
        o0, o1 = DEFAULT_OVERSCAN
    else:
        raise FrameFormatError(f"no OSCANX0/OSCANX1 in the header of a {nx}-column frame (only a {FULL_WIDTH}-"
                               "column frame has a known overscan)")
    p0, p1 = (int(_num(header, "PSCANX0", 0)), int(_num(header, "PSCANX1", 0)))
    if not (0 <= o0 < o1 <= nx):
        raise FrameFormatError(f"overscan columns {o0}:{o1} outside the frame's {nx} columns")
    if p1 > p0 and not (0 <= p0 < p1 <= o0):
        raise FrameFormatError(f"prescan columns {p0}:{p1} overlap the overscan {o0}:{o1} or leave the frame")
    return o0, o1, p0, p1


def parse_calib(obj: str) -> tuple[str, int, int] | None:
    """``Calib: Hg 2 of 5`` -> ("Hg", 2, 5); not a calibration OBJECT -> None."""
    m = CALIB.match(obj or "")
    if not m:
        return None
    n, size = (int(m["n"]), int(m["N"])) if m["n"] else (0, 0)
    if m["n"] and not 1 <= n <= size:
        raise FrameFormatError(f"OBJECT {obj!r}: frame {n} of a set of {size}")
    return KINDS[m["kind"].lower()], n, size


def classify(header) -> FrameInfo:
    """What one raw frame is (see the module docstring)."""
    camera = str(header.get("CAM_NAME", "")).strip().upper()
    imgtype = str(header.get("IMGTYPE", "")).strip().lower()
    obj = str(header.get("OBJECT", "")).strip()
    if camera not in ("IFU", "RC"):
        raise FrameFormatError(f"CAM_NAME = {header.get('CAM_NAME')!r}: neither the IFU nor the guider (RC)")
    if not imgtype:
        raise FrameFormatError("header has no IMGTYPE")
    calib = parse_calib(obj)
    kind, n, size = "other", 0, 0
    if camera == "RC":
        kind = "guider"
    elif calib is not None:
        kind, n, size = calib
        expected = "bias" if kind == "bias" else "dome" if kind == "dome" else "lamp"
        if imgtype != expected:
            raise FrameFormatError(f"OBJECT {obj!r} announces a {kind} frame but IMGTYPE is {imgtype!r}")
    elif imgtype in ("bias", "dome", "lamp"):
        raise FrameFormatError(f"IMGTYPE {imgtype!r} but OBJECT {obj!r} names no calibration set "
                               "('Calib: KIND n of N')")
    elif imgtype == "standard" or obj.upper().startswith("STD-"):
        kind = "standard"
    elif imgtype == "science":
        kind = "science"
    nx, ny = int(_num(header, "NAXIS1")), int(_num(header, "NAXIS2"))
    o0, o1, p0, p1 = scan_columns(header) if camera == "IFU" else (nx, nx, 0, 0)
    adc = _num(header, "ADCSPEED") if camera == "IFU" else float("nan")
    return FrameInfo(
        camera=camera, imgtype=imgtype, kind=kind, object=obj, set_index=n, set_size=size, adcspeed=adc,
        gain=_num(header, "GAIN", 1.8), exptime=_num(header, "EXPTIME"), mjd_obs=_num(header, "MJD_OBS"),
        dateobs=str(header.get("DATE-OBS", "")), airmass=_num(header, "AIRMASS", float("nan")), nx=nx, ny=ny,
        oscan_x0=o0, oscan_x1=o1, pscan_x0=p0, pscan_x1=p1)


def set_key(row: dict) -> str:
    """The afternoon set a frame belongs to: ``bias_2.0`` (bias per ADC speed), ``dome``, ``Hg``..."""
    return f"bias_{row['adcspeed']:.1f}" if row["kind"] == "bias" else row["kind"]
