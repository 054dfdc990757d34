"""Reading the extracted spectra and the targets the RV steps need (shared by template and rv)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits

from astroflow.errors import ItemError
from steps.nres.science.barycentric import barycentric_correction
from steps.nres.tables import Target, read_targets


def read_spectrum(path: Path) -> dict:
    """The SPECTRUM table of a ``-spec.fits`` as (n_orders, nx) arrays, and its header."""
    with fits.open(path) as h:
        t = h["SPECTRUM"].data
        out = {k: np.array(t[k], float) for k in ("wavelength", "flux", "uncertainty", "normflux", "normuncertainty")}
        out["order"] = np.array(t["order"])
        out["mask"] = np.array(t["mask"])
        out["header"] = h[0].header.copy()
        out["table"] = h["SPECTRUM"].data.copy()
    return out


def target(ctx, name: str) -> Target:
    """The targets.csv row of a star; a missing or malformed row fails the item with the reason."""
    if ctx.settings.targets is None:
        raise ItemError("no targets.csv given (settings.targets): the star's coordinates and motion are unknown")
    found, problems = read_targets(ctx.uses(ctx.settings.targets))
    if name not in found:
        bad = [p for p in problems if f"row {name!r}" in p]
        why = f"its row is malformed ({bad[0]})" if bad else "it has no row"
        raise ItemError(f"target {name}: {why} in targets.csv", path=ctx.settings.targets)
    return found[name]


def barycentre(frame: dict, t: Target) -> dict:
    """Barycentric correction (m/s) and BJD_TDB of a frame (index row) at the exposure midpoint,
    for the site in its header.  The direction is the header's RA/DEC, the star's position of date
    as the telescope pointed (banzai-nres's convention, the BARYCORR the archive's users compare
    with); the catalogue position is used only when the header has none."""
    utc = datetime.fromisoformat(frame["dateobs"]).astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    if frame.get("ra") and frame.get("dec"):
        ra, dec = frame["ra"], frame["dec"]
    else:
        ra, dec = t.ra, t.dec
    return barycentric_correction(utc, frame["exptime"], ra, dec, frame["latitude"], frame["longitude"],
                                  frame["height"])
