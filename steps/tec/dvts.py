"""Reader and binner of SPOC DV time series (`*_dvt.fits[.gz]`): runbook step 3.

Replaces TEC `dvts_bulk_resamp.py` (reading, binning and the cadence/time map;
writing the per-TCE files is the resample step's job).

Layout (spoc-formats.md section 2): HDU 0 header only (NUMTCES, TICID, SECTOR,
...), HDUs `TCE_1` .. `TCE_n` sharing one cadence grid, then `statistics`
(PDCSAP_FLUX, PDCSAP_FLUX_ERR, DEWEIGHTS, QUALITY).

Differences from the original, on purpose:
- QUALITY is binned too (bitwise OR) and a per-bin momentum-dump flag
  (`quality & 32`) is kept.
- A file with no valid cadence at all raises ProductError (the original
  crashed on `min([])`).
- The bin factor is chosen from the cadence (TIMEDEL or the median spacing of
  TIME) unless given.
- The multi-sector cadence map keeps the real quality / momentum-dump /
  PDC-finite values (the original wrote 0 0 1 for every cadence).
"""
from __future__ import annotations

import gzip
import io
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from steps.tec.products import ProductError

__all__ = [
    "DvTimeSeries",
    "read_dvt",
    "bin_factor_for",
    "bin_dvt",
    "cadence_time_map",
    "open_fits",
    "header_value",
    "MOMENTUM_DUMP_BIT",
]

MOMENTUM_DUMP_BIT = 32
TCE_COLUMNS = ("TIME", "CADENCENO", "PHASE", "LC_INIT", "LC_INIT_ERR", "LC_WHITE",
               "LC_DETREND", "MODEL_INIT", "MODEL_WHITE")
STAT_COLUMNS = ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR", "DEWEIGHTS", "QUALITY")
PRIMARY_KEYS = ("TICID", "SECTOR", "PXTABLE", "RA_OBJ", "DEC_OBJ", "PMRA", "PMDEC", "PMTOTAL",
                "TESSMAG", "TEFF", "LOGG", "RADIUS", "NUMTCES")
BOGUS_TIME_MARGIN_D = 30.0  # times this long before the first valid time are gap fillers


def open_fits(path):
    """Open a FITS file (gzip or plain) with every HDU loaded, or raise
    ProductError naming the file.  A gzip stream is inflated here first,
    because astropy silently drops the HDUs of a truncated .gz file; a
    "File may have been truncated" warning is an error too."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ProductError(path, "file does not exist") from exc
    except OSError as exc:
        raise ProductError(path, f"file is not readable: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise ProductError(path, f"gzip stream is truncated or corrupt: {exc}") from exc
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False)
            for h in hdul:
                _ = h.data  # force the read so truncation shows here
        for w in caught:
            if "truncated" in str(w.message):
                raise ProductError(path, f"truncated FITS file: {w.message}")
        return hdul
    except ProductError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, EOFError...
        raise ProductError(path, f"not a readable FITS file (truncated or corrupt?): {exc}") from exc


def header_value(header, key, default=-1):
    """A header value, or `default` (-1, TEC's "undefined") when missing or not a scalar."""
    v = header.get(key, default)
    if v is None or not np.isscalar(v) or isinstance(v, fits.card.Undefined):
        return default
    return v


@dataclass
class DvTimeSeries:
    """Contents of one DV time-series file.

    header: the primary keys TEC keeps (PRIMARY_KEYS; missing -> -1).
    tces: one dict per TCE_n (n = 1..NUMTCES) of column name -> numpy array.
    tce_headers: one dict per TCE_n of its header (TPERIOD, TEPOCH, ...).
    statistics: column name -> numpy array of the statistics extension.
    timedel: cadence length in days (NaN when it cannot be told).
    """

    path: Path
    header: dict
    tces: list
    tce_headers: list
    statistics: dict
    timedel: float = float("nan")
    extra: dict = field(default_factory=dict)

    @property
    def tic(self) -> int:
        return int(self.header["TICID"])

    @property
    def sector(self) -> int:
        return int(self.header["SECTOR"])


def _columns(hdu, names, path, extname):
    cols = {c.upper(): c for c in hdu.columns.names}
    out = {}
    for n in names:
        if n not in cols:
            raise ProductError(path, f"extension {extname} has no column {n} (has {', '.join(hdu.columns.names)})")
        out[n] = np.asarray(hdu.data[cols[n]])
    for upper, real in cols.items():
        if upper not in out:
            out[upper] = np.asarray(hdu.data[real])
    return out


def read_dvt(path) -> DvTimeSeries:
    """Read a DV time-series FITS file (dvts_bulk_resamp.py's input).

    Raises ProductError when the file is unreadable, a TCE_n or the
    statistics extension (name matched ignoring case) is missing, a required
    column is missing, or the tables do not share one cadence grid."""
    path = Path(path)
    with open_fits(path) as hdul:
        prim = hdul[0].header
        by_name = {}
        for h in hdul[1:]:
            by_name.setdefault(str(h.name).upper(), h)
        ntce = header_value(prim, "NUMTCES", -1)
        if ntce is None or int(ntce) < 0:
            ntce = sum(1 for k in by_name if k.startswith("TCE_"))
        ntce = int(ntce)
        header = {k: header_value(prim, k) for k in PRIMARY_KEYS}
        header["NUMTCES"] = ntce
        if "STATISTICS" not in by_name:
            raise ProductError(path, "no STATISTICS extension (expected after the TCE_n tables)")
        tces, tce_headers = [], []
        for n in range(1, ntce + 1):
            name = f"TCE_{n}"
            if name not in by_name:
                raise ProductError(path, f"NUMTCES={ntce} but extension {name} is missing")
            hdu = by_name[name]
            if not isinstance(hdu, fits.BinTableHDU):
                raise ProductError(path, f"extension {name} is not a binary table")
            tces.append(_columns(hdu, TCE_COLUMNS, path, name))
            tce_headers.append({k: hdu.header[k] for k in hdu.header if k and np.isscalar(hdu.header[k])})
        stats = _columns(by_name["STATISTICS"], STAT_COLUMNS, path, "STATISTICS")
        timedel = np.nan
        for h in [prim] + [by_name[k].header for k in by_name]:
            if "TIMEDEL" in h:
                timedel = float(h["TIMEDEL"])
                break
    if ntce == 0:
        raise ProductError(path, "file holds no TCE_n extension")
    nrow = len(stats["QUALITY"])
    for n, t in enumerate(tces, 1):
        if len(t["TIME"]) != nrow:
            raise ProductError(path, f"TCE_{n} has {len(t['TIME'])} rows but STATISTICS has {nrow}")
    if not np.isfinite(timedel):
        t = tces[0]["TIME"].astype(float)
        good = np.isfinite(t) & (t > 1.0)
        if good.sum() > 2:
            timedel = float(np.median(np.diff(t[good]) / np.maximum(np.diff(tces[0]["CADENCENO"][good]), 1)))
    if header["TICID"] == -1:
        raise ProductError(path, "primary header has no TICID")
    return DvTimeSeries(path, header, tces, tce_headers, stats, timedel)


def bin_factor_for(timedel_days: float, kind: str = "dvts") -> int:
    """Bin factor by cadence: DV series 5 / 3 / 1 for 2-min / 200-s / 10-min
    (dvts_bulk_resamp); light-curve centroids 31 / 19 / 7 (grab_flxwcent)."""
    table = {"dvts": (5, 3, 1), "centroid": (31, 19, 7)}[kind]
    sec = timedel_days * 86400.0
    if not np.isfinite(sec) or sec <= 0:
        raise ValueError("cadence length unknown: give the bin factor explicitly")
    if sec < 150.0:
        return table[0]
    if sec < 400.0:
        return table[1]
    return table[2]


def _bogus_time_mask(time, lc_init, pdc):
    """True where TIME is a gap filler (more than 30 d before the first valid time)."""
    ok = np.isfinite(time) & np.isfinite(lc_init) & np.isfinite(pdc)
    if not ok.any():
        return None
    return time < np.min(time[ok]) - BOGUS_TIME_MARGIN_D


def bin_dvt(dvt: DvTimeSeries, factor: int | None = None) -> list[dict]:
    """Bin every TCE of a DV time series (dvts_bulk_resamp.dvts_resamp).

    Per TCE: blank bogus times, trim to a multiple of `factor`, bin by means
    (PDC flux by sum), cadence begin/end per bin, quality bitwise OR,
    valid = time, lc_init and PDC flux finite, leading invalid bins dropped.

    Returns one dict per TCE: tic, planet_number, sector, factor, cadence_no,
    cadence_beg, cadence_end, time, lc_init, lc_init_err, lc_white,
    lc_detrend, model_init, model_white, phase, pdc_flux, pdc_flux_err,
    deweights, quality, momentum_dump, valid (numpy arrays for the per-bin
    columns; lc_detrend stays centred on 0 as in the file)."""
    if factor is None:
        factor = bin_factor_for(dvt.timedel, "dvts")
    factor = int(factor)
    if factor < 1:
        raise ValueError("bin factor must be >= 1")
    st = dvt.statistics
    pdc_raw = st["PDCSAP_FLUX"].astype(float)
    out = []
    for n, t in enumerate(dvt.tces, 1):
        time = t["TIME"].astype(float).copy()
        lc_init = t["LC_INIT"].astype(float)
        bogus = _bogus_time_mask(time, lc_init, pdc_raw)
        if bogus is None:
            raise ProductError(dvt.path, f"TCE_{n}: no cadence has finite TIME, LC_INIT and PDCSAP_FLUX")
        time[bogus] = np.nan
        nbin = len(time) // factor
        if nbin == 0:
            raise ProductError(dvt.path, f"TCE_{n}: {len(time)} cadences, fewer than one bin of {factor}")
        m = nbin * factor

        def shape(a, dtype=float):
            return np.asarray(a[:m], dtype=dtype).reshape(nbin, factor)

        cad = shape(t["CADENCENO"], np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rec = dict(
                cadence_no=np.round(cad.mean(axis=1)).astype(np.int64),
                cadence_beg=cad.min(axis=1),
                cadence_end=cad.max(axis=1),
                time=shape(time).mean(axis=1),
                lc_init=shape(lc_init).mean(axis=1),
                lc_init_err=shape(t["LC_INIT_ERR"]).mean(axis=1),
                lc_white=shape(t["LC_WHITE"]).mean(axis=1),
                lc_detrend=shape(t["LC_DETREND"]).mean(axis=1),
                model_init=shape(t["MODEL_INIT"]).mean(axis=1),
                model_white=shape(t["MODEL_WHITE"]).mean(axis=1),
                phase=shape(t["PHASE"]).mean(axis=1),
                pdc_flux=shape(pdc_raw).sum(axis=1),
                pdc_flux_err=shape(st["PDCSAP_FLUX_ERR"]).mean(axis=1),
                deweights=shape(st["DEWEIGHTS"]).mean(axis=1),
                quality=np.bitwise_or.reduce(shape(st["QUALITY"], np.int64), axis=1),
            )
        rec["momentum_dump"] = (rec["quality"] & MOMENTUM_DUMP_BIT) != 0
        valid = np.isfinite(rec["time"]) & np.isfinite(rec["lc_init"]) & np.isfinite(rec["pdc_flux"])
        if not valid.any():
            raise ProductError(dvt.path, f"TCE_{n}: no valid bin of {factor} cadences (time, LC_INIT, PDC all finite)")
        first = int(np.argmax(valid))
        rec = {k: v[first:] for k, v in rec.items()}
        rec["valid"] = valid[first:]
        out.append(dict(tic=dvt.tic, planet_number=n, sector=dvt.sector, factor=factor, **rec))
    return out


def cadence_time_map(dvts, multi_sector: bool = False) -> dict:
    """The run's cadence -> time map (dvts_bulk_resamp's cadnoVtimemap.txt).

    Single sector: the cadences of the one file with the largest
    data span + 2 x good fraction (good = QUALITY == 0 and PDC finite), as the
    original picks it.  Multi-sector: the union of all files' cadences (a later
    file's values win for a cadence seen twice).  Bogus near-zero times are NaN.

    Returns numpy arrays: cadence, time, quality, momentum_dump (0/1),
    pdc_finite (0/1), sorted by cadence."""
    dvts = list(dvts)
    if not dvts:
        raise ValueError("cadence_time_map needs at least one DvTimeSeries")

    def one(d: DvTimeSeries):
        t0 = d.tces[0]
        time = t0["TIME"].astype(float).copy()
        pdc = d.statistics["PDCSAP_FLUX"].astype(float)
        bogus = _bogus_time_mask(time, t0["LC_INIT"].astype(float), pdc)
        if bogus is not None:
            time[bogus] = np.nan
        q = d.statistics["QUALITY"].astype(np.int64)
        return t0["CADENCENO"].astype(np.int64), time, q, np.isfinite(pdc)

    if not multi_sector:
        best, best_score = None, -np.inf
        for d in dvts:
            cad, time, q, pfin = one(d)
            ok = np.isfinite(time) & np.isfinite(d.tces[0]["LC_INIT"]) & pfin
            span = float(np.ptp(time[ok])) if ok.any() else 0.0
            frac = float(np.mean((q == 0) & pfin)) if len(q) else 0.0
            if span + 2.0 * frac > best_score:
                best, best_score = (cad, time, q, pfin), span + 2.0 * frac
        cad, time, q, pfin = best
    else:
        table = {}
        for d in dvts:
            for row in zip(*one(d)):
                table[int(row[0])] = row
        keys = sorted(table)
        cad = np.array(keys, dtype=np.int64)
        time = np.array([table[k][1] for k in keys], dtype=float)
        q = np.array([table[k][2] for k in keys], dtype=np.int64)
        pfin = np.array([table[k][3] for k in keys], dtype=bool)
    order = np.argsort(cad, kind="stable")
    return dict(
        cadence=cad[order],
        time=time[order],
        quality=q[order],
        momentum_dump=((q[order] & MOMENTUM_DUMP_BIT) != 0).astype(np.int8),
        pdc_finite=pfin[order].astype(np.int8),
    )
