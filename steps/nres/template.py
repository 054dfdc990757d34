"""Runbook "Making new radial velocity standards (ZERO files)" and ``--calibration-type TEMPLATE``.

A ZERO is the coadd of a standard star's spectra shifted to rest: the runbook asks for five
consecutive high-S/N exposures (fewer at S/N ~50 will do).  Per star named in ``templates`` (or,
when none is named, every target observed ``template_min_frames`` times in one night) and
night: its extracted spectra above ``template_min_snr``, each shifted by the velocity the star
showed (its catalogue RV and the exposure's barycentric correction, Wright & Eastman 2014),
combined order by order with inverse-variance weights (:func:`make_zero`).  The ZERO is written to
``zero/`` and registered as a calibration (matching the target; TEFF and LOGG as attributes), where
``classify`` finds it: the library is the zeros.csv of the runbook (a ZERO marked bad is the
hand-set Flags "0100" turned off).
"""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.nres.calibrations import reduced_path
from steps.nres.science.rv import make_zero, observed_velocity
from steps.nres.spectra import barycentre, read_spectrum, target

SCHEMA = pa.schema([
    ("target", pa.string()), ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()),
    ("day_obs", pa.string()), ("n_frames", pa.int32()), ("teff", pa.float64()), ("logg", pa.float64()),
    ("jdate", pa.float64()), ("path", pa.string()),
])


def template_sets(ctx) -> list[dict]:
    s = ctx.settings
    rows = ctx.table("extract", columns=["filename", "object", "site", "instrument", "camera", "day_obs", "snr"]).to_pylist()
    sets: dict[tuple, list[str]] = {}
    for r in rows:
        if r["snr"] >= s.template_min_snr:
            sets.setdefault((r["object"], r["site"], r["instrument"], r["camera"], r["day_obs"]), []).append(r["filename"])
    named = set(s.templates)
    return [{"target": k[0], "site": k[1], "instrument": k[2], "camera": k[3], "day_obs": k[4], "frames": sorted(v)}
            for k, v in sorted(sets.items())
            if (k[0] in named if named else len(v) >= s.template_min_frames)]


def coadd(ctx, star, frames: list[str]) -> dict:
    """The ZERO of ``star`` from the extracted spectra of ``frames`` (file names), each shifted to
    rest with its observed velocity: :func:`make_zero`'s arrays, the orders, the star's name and
    the mean BJD_TDB ``jdate``."""
    waves, fluxes, uncs, vels, times = [], [], [], [], []
    for name in frames:
        frame = ctx.row("index", filename=name)
        spec = read_spectrum(ctx.run_dir / ctx.row("extract", filename=name)["path"])
        bc = barycentre(frame, star)
        waves.append(spec["wavelength"])
        fluxes.append(spec["normflux"])
        uncs.append(spec["normuncertainty"])
        vels.append(float(observed_velocity(star.rv * 1000.0, bc["barycorr"])))
        times.append(bc["bjd_tdb"])
    return {**make_zero(waves, fluxes, uncs, vels), "order": spec["order"], "name": star.name,
            "jdate": float(np.mean(times))}


def make_template(ctx, item) -> dict:
    star = target(ctx, item["target"])
    if star.rv is None:
        raise ItemError(f"target {star.name} has no catalogue RV in targets.csv: it cannot be a standard")
    zero = coadd(ctx, star, item["frames"])
    jdate = zero["jdate"]
    at = Time(jdate, format="jd").to_datetime(timezone=timezone.utc)
    name = f"zero_{star.name}_{item['site']}{item['instrument']}_{item['day_obs']}.fits"
    path = ctx.register_calibration("ZERO", reduced_path(item, "ZERO", name), at,
                                    {"target": star.name, "teff": star.teff, "logg": star.logg,
                                     **{k: item[k] for k in ("site", "instrument", "camera")}},
                                    frames=item["frames"])
    head = fits.Header()
    head["OBJECT"], head["NAVG"], head["JDATE"] = star.name, len(item["frames"]), jdate
    head["TEFF"], head["LOGG"] = star.teff or -99.9, star.logg or -99.9
    ctx.stamp_fits(head)
    table = Table({"order": zero["order"], "wavelength": zero["wavelength"], "flux": zero["flux"],
                   "uncertainty": zero["uncertainty"]})
    with atomic_path(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(header=head), fits.BinTableHDU(table, name="ZERO")]).writeto(tmp)
    return {**{k: item[k] for k in ("target", "site", "instrument", "camera", "day_obs")},
            "n_frames": len(item["frames"]), "teff": star.teff, "logg": star.logg, "jdate": jdate,
            "path": str(path.relative_to(ctx.run_dir))}


def read_zero(path) -> dict:
    with fits.open(path) as h:
        t = h["ZERO"].data
        return {"wavelength": np.array(t["wavelength"], float), "flux": np.array(t["flux"], float),
                "order": np.array(t["order"]), "name": h[0].header["OBJECT"]}


def measured_without(ctx, path, filename: str) -> list[str] | None:
    """The other exposures of the ZERO at ``path`` when the frame ``filename`` is one of them (and
    not its only one), else None: a frame measured against a ZERO that holds it is correlated with
    its own noise, pulled towards the catalogue velocity with an RVERR too small."""
    members = [Path(f).name for f in ctx.library().get(path).frames]
    return [m for m in members if m != filename] if filename in members and len(members) > 1 else None


def zero_for(ctx, path, filename: str) -> dict:
    """The ZERO at ``path`` to measure the frame ``filename`` against: the file, or, for one of its
    own exposures, the coadd of the others (:func:`measured_without`)."""
    zero = read_zero(path)
    others = measured_without(ctx, path, filename)
    return zero if others is None else coadd(ctx, target(ctx, zero["name"]), others)


template = FanOut("template", inputs=("extract", "index"), items=template_sets, process=make_template,
                  key=("target", "site", "instrument", "camera", "day_obs"), schema=SCHEMA, shard_size=1,
                  resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
