"""Runbook: the per-frame summary plots (banzai-nres's ``...-summary.pdf``).

Per science frame with a ``-1d.fits`` (the ``rv`` step): one page with what an astronomer checks
first: the frame's numbers (object, site, time, S/N, ThAr drift, RV +- RVERR, BARYCORR, BJD_TDB,
the template, TEFF/LOGG and the calibrations the extraction and the velocity used), the normalised
spectrum around Mg b, Na D and H-alpha where an order covers them (else three orders from the
middle), and the cross-correlation summed over orders around its peak.  Written beside the
spectra as ``reduced/{site}/{instrument}/plot/{day_obs}/{frame}-summary.pdf``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.step import FanOut, Resources

SCHEMA = pa.schema([("filename", pa.string()), ("path", pa.string())])
FEATURES = (("Mg b", 5172.7), ("Na D", 5892.9), ("H-alpha", 6564.6))  # vacuum, A


def frames(ctx) -> list[dict]:
    return ctx.table("rv", columns=["filename"]).to_pylist()


def feature_orders(wavelength: np.ndarray) -> list[tuple[str, int]]:
    """Rows of ``wavelength`` (n_orders, nx) to show: the order holding each feature nearest its
    centre; where fewer than three features fall on the detector, middle orders fill up."""
    finite = np.isfinite(wavelength).any(axis=1)
    lo = np.where(finite, np.nanmin(np.where(np.isfinite(wavelength), wavelength, np.inf), axis=1), np.nan)
    hi = np.where(finite, np.nanmax(np.where(np.isfinite(wavelength), wavelength, -np.inf), axis=1), np.nan)
    picks: list[tuple[str, int]] = []
    for name, lam in FEATURES:
        inside = np.flatnonzero((lo < lam) & (hi > lam))
        if inside.size:
            centre = np.abs(0.5 * (lo[inside] + hi[inside]) - lam)
            picks.append((name, int(inside[np.argmin(centre)])))
    middle = [i for i in np.argsort(np.abs(np.arange(len(lo)) - len(lo) / 2)) if finite[i]]
    for i in middle:
        if len(picks) >= 3:
            break
        if all(i != p for _, p in picks):
            picks.append((f"order row {i}", int(i)))
    return picks


def summed_ccf(ccf) -> tuple[np.ndarray, np.ndarray] | None:
    """The CCF extension's cross-correlations summed over orders, or None without one."""
    if ccf is None or len(ccf) == 0:
        return None
    v = np.asarray(ccf["v"][0], float)
    return v, np.nansum(np.asarray(ccf["xcor"], float), axis=0)


def draw(path, head: fits.Header, spectrum, ccf) -> None:
    """The summary page of one frame (``spectrum``, ``ccf``: the -1d.fits tables)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.5, 11))
    fig.suptitle(f"{head.get('OBJECT', '?')}  {head.get('SITE', '')} {head.get('INSTRUME', '')}  "
                 f"{head.get('DATEOBS', '')}", fontsize=12)
    lines = [f"S/N {head.get('SNR', np.nan):.1f}    ThAr drift {head.get('DRIFT', np.nan):.1f} m/s",
             f"RV {head.get('RV', np.nan):.1f} +- {head.get('RVERR', np.nan):.1f} m/s    "
             f"BARYCORR {head.get('BARYCORR', np.nan):.2f} m/s    BJD_TDB {head.get('TCORR', np.nan):.6f}",
             f"template {head.get('CLASSIFY', '') or 'none'}    TEFF {head.get('TEFF', np.nan):.0f} K    "
             f"LOGG {head.get('LOGG', np.nan):.2f}",
             "calibrations: " + ", ".join(str(head[k]) for k in head if str(k).startswith("CAL"))]
    fig.text(0.08, 0.945, "\n".join(lines), fontsize=8, va="top", family="monospace", wrap=True)
    wave, norm = np.asarray(spectrum["wavelength"], float), np.asarray(spectrum["normflux"], float)
    for k, (name, row) in enumerate(feature_orders(wave)):
        ax = fig.add_axes([0.1, 0.62 - 0.17 * k, 0.85, 0.13])
        ax.plot(wave[row], norm[row], "k-", lw=0.5)
        ax.set_ylim(0, 1.3)
        ax.set_title(f"{name}: order {int(spectrum['order'][row])}", fontsize=8)
        ax.set_ylabel("normalised flux", fontsize=7)
        ax.tick_params(labelsize=7)
    ax.set_xlabel("vacuum wavelength [A]", fontsize=8)
    ax = fig.add_axes([0.1, 0.06, 0.85, 0.16])
    summed = summed_ccf(ccf)
    if summed is None:
        ax.text(0.5, 0.5, "no cross-correlation (no RV measured)", ha="center", transform=ax.transAxes)
    else:
        v, x = summed
        peak = v[np.nanargmax(x)]
        near = np.abs(v - peak) < 60.0
        ax.plot(v[near], x[near], "b-", lw=1)
        ax.axvline(peak, color="r", ls=":", lw=1)
        ax.set_xlabel("velocity against the template [km/s]", fontsize=8)
        ax.set_ylabel("CCF summed over orders", fontsize=7)
        ax.tick_params(labelsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf")
    plt.close(fig)


def summarize(ctx, item) -> dict:
    row = ctx.row("rv", filename=item["filename"])
    with fits.open(ctx.run_dir / row["path"]) as h:
        ccf = h["CCF"].data if "CCF" in h else None
        draw_args = (h[0].header, h["SPECTRUM"].data, ccf)
        rel = row["path"].replace("/rv/", "/plot/").replace("-1d.fits", "-summary.pdf")
        draw(ctx.product(rel), *draw_args)
    return {"filename": item["filename"], "path": rel}


summary = FanOut("summary", inputs=("rv",), items=frames, process=summarize, key=("filename",), schema=SCHEMA,
                 shard_size=4, resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
