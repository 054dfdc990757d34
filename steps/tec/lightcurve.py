"""Readers of SPOC light curves and target pixel files: runbook steps 15 and 9.

`read_flux_weighted_centroids` replaces TEC `grab_flxwcent.py` (reading and
binning; writing the per-TCE file is the step's job).  `read_tpf` and
`bin_tpf` replace `tpf_bulk_resamp.py` (optional tpf_resample step).

Differences from the original, on purpose:
- grab_flxwcent marked every bin with QUALITY == 0 valid even when its
  centroid was NaN; here valid = QUALITY == 0 AND time and both centroids
  finite.  Centroid medians ignore NaN cadences inside a bin.
- Missing PDC_TOT / PDC_NOI / PDC_COR give NaN (the original tolerated only a
  missing PDC_TOT).
- tpf_bulk_resamp summed QUALITY (breaking the bits); here it is OR-ed.  Its
  bins are taken from the DV bins' cadence begin/end numbers directly (any
  cadence number in [begin, end] belongs to the bin), not by index arithmetic.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from astroflow.filters import mad_std
from steps.tec.dvts import bin_factor_for, header_value, open_fits
from steps.tec.products import ProductError

__all__ = ["read_flux_weighted_centroids", "read_tpf", "bin_tpf", "saturated_pixels"]

LC_PRIMARY_KEYS = ("TICID", "SECTOR", "CAMERA", "CCD", "PXTABLE", "RA_OBJ", "DEC_OBJ", "PMRA", "PMDEC",
                   "PMTOTAL", "TESSMAG", "TEFF", "LOGG", "RADIUS")


def _table_columns(hdu, names, path):
    if not hasattr(hdu, "columns"):
        raise ProductError(path, f"HDU 1 ({hdu.name}) is not a binary table")
    cols = {c.upper(): c for c in hdu.columns.names}
    out = {}
    for n in names:
        if n not in cols:
            raise ProductError(path, f"HDU 1 ({hdu.name}) has no column {n}")
        out[n] = np.asarray(hdu.data[cols[n]])
    return out


def _float_key(header, key) -> float:
    v = header_value(header, key, None)
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def read_flux_weighted_centroids(path, resamp: int | None = None) -> dict:
    """Flux-weighted centroids and PDC goodness of one light curve (grab_flxwcent).

    Reads HDU 1 columns TIME, MOM_CENTR1 (column), MOM_CENTR2 (row), QUALITY
    and HDU 1 header PDC_TOT, PDC_NOI, PDC_COR.  Bins `resamp` cadences (31 /
    19 / 7 for 2-min / 200-s / 10-min, chosen from TIMEDEL when None) after
    trimming to a multiple: time mean, centroids median, QUALITY bitwise OR.

    Returns: tic, sector, camera, ccd, resamp, pdc_tot, pdc_noi, pdc_cor,
    pdc_stats (array [tot, noi, cor]), time, flxw_centr1, flxw_centr2,
    quality, valid (numpy arrays per bin).  Raises ProductError when the file
    is unreadable, a column is missing, or no bin is valid."""
    path = Path(path)
    with open_fits(path) as hdul:
        if len(hdul) < 2:
            raise ProductError(path, "no LIGHTCURVE extension (HDU 1)")
        prim, hdu = hdul[0].header, hdul[1]
        cols = _table_columns(hdu, ("TIME", "MOM_CENTR1", "MOM_CENTR2", "QUALITY"), path)
        stats = [_float_key(hdu.header, k) for k in ("PDC_TOT", "PDC_NOI", "PDC_COR")]
        timedel = _float_key(hdu.header, "TIMEDEL")
        meta = {name: header_value(prim, key) for name, key in
                (("tic", "TICID"), ("sector", "SECTOR"), ("camera", "CAMERA"), ("ccd", "CCD"))}
    time = cols["TIME"].astype(float)
    if resamp is None:
        if not np.isfinite(timedel):
            good = np.isfinite(time)
            timedel = float(np.median(np.diff(time[good]))) if good.sum() > 2 else np.nan
        try:
            resamp = bin_factor_for(timedel, "centroid")
        except ValueError as exc:
            raise ProductError(path, "cannot tell the cadence (no TIMEDEL, too few finite times)") from exc
    resamp = int(resamp)
    nbin = len(time) // resamp
    if nbin == 0:
        raise ProductError(path, f"{len(time)} cadences, fewer than one bin of {resamp}")
    m = nbin * resamp

    def shape(a, dtype=float):
        return np.asarray(a[:m], dtype=dtype).reshape(nbin, resamp)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        btime = np.nanmean(shape(time), axis=1)
        c1 = np.nanmedian(shape(cols["MOM_CENTR1"]), axis=1)
        c2 = np.nanmedian(shape(cols["MOM_CENTR2"]), axis=1)
    quality = np.bitwise_or.reduce(shape(cols["QUALITY"], np.int64), axis=1)
    valid = (quality == 0) & np.isfinite(btime) & np.isfinite(c1) & np.isfinite(c2)
    if not valid.any():
        raise ProductError(path, "no valid centroid bin (QUALITY == 0 with finite TIME, MOM_CENTR1, MOM_CENTR2)")
    return dict(
        **meta,
        resamp=resamp,
        pdc_tot=stats[0],
        pdc_noi=stats[1],
        pdc_cor=stats[2],
        pdc_stats=np.array(stats, dtype=float),
        time=btime,
        flxw_centr1=c1,
        flxw_centr2=c2,
        quality=quality,
        valid=valid,
    )


def read_tpf(path) -> dict:
    """Read a target pixel file (tpf_bulk_resamp's input).

    Returns: header (LC_PRIMARY_KEYS, missing -> -1), crv4p_col (1CRV4P, CCD
    column of the first stamp pixel), crv4p_row (2CRV4P), crpx4_1, crpx4_2,
    cadenceno, time, flux and flux_bkg (n_cad, rows, cols) in e-/s, quality."""
    path = Path(path)
    with open_fits(path) as hdul:
        if len(hdul) < 2:
            raise ProductError(path, "no PIXELS extension (HDU 1)")
        prim, hdu = hdul[0].header, hdul[1]
        cols = _table_columns(hdu, ("CADENCENO", "TIME", "FLUX", "FLUX_BKG", "QUALITY"), path)
        h1 = hdu.header
        out = dict(
            header={k: header_value(prim, k) for k in LC_PRIMARY_KEYS},
            crv4p_col=int(header_value(h1, "1CRV4P")),
            crv4p_row=int(header_value(h1, "2CRV4P")),
            crpx4_1=float(header_value(h1, "1CRPX4")),
            crpx4_2=float(header_value(h1, "2CRPX4")),
        )
    flux = np.asarray(cols["FLUX"], dtype=float)
    if flux.ndim != 3:
        raise ProductError(path, f"FLUX column has shape {flux.shape}, expected (cadences, rows, cols)")
    out.update(
        cadenceno=cols["CADENCENO"].astype(np.int64),
        time=cols["TIME"].astype(float),
        flux=flux,
        flux_bkg=np.asarray(cols["FLUX_BKG"], dtype=float),
        quality=cols["QUALITY"].astype(np.int64),
    )
    return out


def saturated_pixels(flux_binned: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tpf_bulk_resamp's saturation rule per pixel over the valid bins:
    saturated when median > 1000 and log10(MAD(diff) / median) < -3.5, MAD
    normalised to a Gaussian sigma (statsmodels robust.mad).  Returns
    (saturated 0/1 image, median image)."""
    f = flux_binned[valid]
    _, ny, nx = flux_binned.shape
    if len(f) < 3:
        return np.zeros((ny, nx), dtype=np.int8), np.full((ny, nx), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.median(f, axis=0)
        d = np.diff(f, axis=0)
        mad = mad_std(d, axis=0)
        sat = (med > 1000.0) & (np.log10(mad / med) < -3.5)
    return sat.astype(np.int8), med


def bin_tpf(tpf: dict, cadence_beg, cadence_end) -> dict:
    """Bin a target pixel file onto the DV bins (tpf_bulk_resamp.tpf_resamp).

    Each bin sums flux and background over the TPF cadences whose CADENCENO
    lies in [cadence_beg, cadence_end]; time is the mean, quality the bitwise
    OR.  A bin is valid when its time is finite, it has all its cadences and
    every pixel of flux and background is finite.  Returns cadence_no, time,
    flux, flux_bkg, quality, valid, saturated (image 0/1), median_image, plus
    the header values of `read_tpf`."""
    beg = np.asarray(cadence_beg, dtype=np.int64)
    end = np.asarray(cadence_end, dtype=np.int64)
    cad = tpf["cadenceno"]
    order = np.argsort(cad, kind="stable")
    cad_s = cad[order]
    lo = np.searchsorted(cad_s, beg, side="left")
    hi = np.searchsorted(cad_s, end, side="right")
    nb = len(beg)
    _, ny, nx = tpf["flux"].shape
    flux = np.full((nb, ny, nx), np.nan)
    bkg = np.full((nb, ny, nx), np.nan)
    time = np.full(nb, np.nan)
    quality = np.zeros(nb, dtype=np.int64)
    complete = np.zeros(nb, dtype=bool)
    for i in range(nb):
        idx = order[lo[i]:hi[i]]
        if len(idx) == 0:
            continue
        flux[i] = tpf["flux"][idx].sum(axis=0)
        bkg[i] = tpf["flux_bkg"][idx].sum(axis=0)
        time[i] = tpf["time"][idx].mean()
        quality[i] = np.bitwise_or.reduce(tpf["quality"][idx])
        complete[i] = len(idx) == end[i] - beg[i] + 1
    valid = complete & np.isfinite(time) & np.isfinite(flux).all(axis=(1, 2)) & np.isfinite(bkg).all(axis=(1, 2))
    sat, med = saturated_pixels(flux, valid)
    return dict(
        header=tpf["header"],
        crv4p_col=tpf["crv4p_col"],
        crv4p_row=tpf["crv4p_row"],
        crpx4_1=tpf["crpx4_1"],
        crpx4_2=tpf["crpx4_2"],
        cadence_no=(beg + end) // 2,
        time=time,
        flux=flux,
        flux_bkg=bkg,
        quality=quality,
        valid=valid,
        saturated=sat,
        median_image=med,
    )
