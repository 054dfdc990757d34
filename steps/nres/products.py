"""NRES calibration products as FITS: traces (a binary table of Legendre coefficients) and
profiles with blaze (image extensions), read back for the steps that use them."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.table import Table

from astroflow.atomic import atomic_path
from steps.nres.science.extract import Profile
from steps.nres.science.trace import TraceSet


def write_traces(path, traces: TraceSet, header: fits.Header) -> None:
    a = traces.to_arrays()
    table = Table({"order": a["order"], "fiber": a["fiber"], "x_min": a["x_min"], "x_max": a["x_max"],
                   "rms": a["rms"], "coeffs": a["coeffs"]})
    header = header.copy()
    header["NX"], header["NY"] = a["nx"], a["ny"]
    hdu = fits.BinTableHDU(table, name="TRACES")
    with atomic_path(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(header=header), hdu]).writeto(tmp)


def read_traces(path) -> TraceSet:
    with fits.open(path) as h:
        t = h["TRACES"].data
        return TraceSet.from_arrays({"order": np.array(t["order"]), "fiber": np.array(t["fiber"]),
                                     "coeffs": np.array(t["coeffs"]), "x_min": np.array(t["x_min"]),
                                     "x_max": np.array(t["x_max"]), "rms": np.array(t["rms"]),
                                     "nx": h[0].header["NX"], "ny": h[0].header["NY"]})


def write_profile(path, profile: Profile, blaze: np.ndarray, blaze_error: np.ndarray, header: fits.Header) -> None:
    header = header.copy()
    header["HALFHGT"] = (profile.k, "stamp half height (px)")
    hdus = [fits.PrimaryHDU(header=header), fits.ImageHDU(profile.profile, name="PROFILE"),
            fits.ImageHDU(profile.rows, name="ROWS"), fits.ImageHDU(blaze.astype(np.float32), name="BLAZE"),
            fits.ImageHDU(blaze_error.astype(np.float32), name="BLAZE_ERROR"),
            fits.BinTableHDU(Table({"order": profile.order, "fiber": profile.fiber}), name="LABELS")]
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def read_profile(path) -> tuple[Profile, np.ndarray, np.ndarray]:
    with fits.open(path) as h:
        labels = h["LABELS"].data
        prof = Profile(np.array(h["ROWS"].data), np.array(h["PROFILE"].data), np.array(labels["order"]),
                       np.array(labels["fiber"]), int(h[0].header["HALFHGT"]))
        return prof, np.array(h["BLAZE"].data, float), np.array(h["BLAZE_ERROR"].data, float)
