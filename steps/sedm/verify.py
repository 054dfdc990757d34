"""Runbook, "Verification": "The automated pipeline generates verification plots as each image is
processed ... the acquisition finder chart is shown in the upper right and the IFU spaxel plot is
in the upper left.  The PSF extraction results are shown in the lower left in three plots showing
the Data, Model, and Residual.  Finally, in the lower right, is shown some form of the extracted
spectrum.  For a standard star, it will show the calibration check plot comparing the reference
spectrum to the observed spectrum."

One item per spectrum (``spectra``): ``verify_forcepsf_auto_lstep1__crr_b_ifu{date}_{HH_MM_SS}_
{OBJECT}.png`` in the night directory (a redex adds its tag, as the spectrum's name does).

* upper left, the IFU: each spaxel coloured by the cube summed over the PSF band (4000-8000 A),
  the extraction region outlined, the fitted centroid (x) and, for science targets, where the
  guider WCS put the target (+); the title says the quality and the position's source;
* upper right, the acquisition: the stacked guider frames of the exposure (science) with the
  target's pixel marked, or what the guider step said when there is none;
* lower left, the PSF at the band: data, the fitted Moffat plus background, and the residual
  over the extraction region, on one colour scale;
* lower right, the spectrum: flux-calibrated (erg/s/cm2/A) when a fluxcal was applied, with the
  classification; for a standard, the reference spectrum from the standards folder beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.step import FanOut, Resources
from steps.sedm.cube import read_cube
from steps.sedm.extract import guider_frames, read_spectrum
from steps.sedm.science import guider, psf
from steps.sedm.fluxcal import read_reference, reference_path, star_name
from steps.sedm.writer import guard, night_dir

SCHEMA = pa.schema([("filename", pa.string()), ("object", pa.string()), ("png_path", pa.string())])
BAND = (4000.0, 8000.0)


def spectra_made(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.rows("spectra", columns=["filename"])]


def verify_name(spectrum_file: str) -> str:
    """``spec_forcepsf_...fits`` -> ``verify_forcepsf_...png``."""
    stem = Path(spectrum_file).name.removesuffix(".fits")
    return "verify_" + stem.removeprefix("spec_") + ".png"


def _ifu(ax, x, y, image, region, centroid, target, title):
    side = psf.pitch_of(x, y)
    sc = ax.scatter(x, y, c=image, s=(72 * side / 2.2) ** 2 / 12, marker="h", cmap="viridis",
                    vmin=np.nanpercentile(image, 2), vmax=np.nanpercentile(image, 99.5))
    ax.scatter(x[region], y[region], s=(72 * side / 2.2) ** 2 / 12, marker="h", facecolors="none",
               edgecolors="white", linewidths=0.4)
    ax.plot(*centroid, "x", color="red", ms=10, mew=2, label="centroid")
    if np.all(np.isfinite(target)):
        ax.plot(*target, "+", color="orange", ms=12, mew=2, label="guider WCS")
    ax.legend(loc="lower right", fontsize="x-small")
    ax.set_xlabel("east [arcsec]")
    ax.set_ylabel("north [arcsec]")
    ax.set_aspect("equal")
    ax.invert_xaxis()
    ax.set_title(title, fontsize="small")
    return sc


def _acquisition(ax, ctx, nrow, ext_row):
    frames = guider_frames(ctx, nrow, 60.0) if nrow["kind"] == "science" else []
    if not frames:
        why = "standard star: no guider image" if nrow["kind"] != "science" else "no guider frames"
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    images, headers = [], []
    for r in frames:
        with fits.open(ctx.uses(r["path"])) as h:
            images.append(np.array(h[0].data, dtype=float))
            headers.append(h[0].header)
    stacked = guider.stack(images) if len({im.shape for im in images}) == 1 else images[0]
    lo, hi = np.nanpercentile(stacked, (5, 99.7))
    ax.imshow(stacked, origin="lower", cmap="gray", vmin=lo, vmax=hi)
    wcs = guider.celestial_wcs(headers[0])
    head = fits.getheader(nrow["path"])
    if wcs is not None and "OBJRA" in head:
        try:
            px = wcs.all_world2pix([[guider.parse_ra(head["OBJRA"]), guider.parse_dec(head["OBJDEC"])]], 0)[0]
            ax.plot(*px, "o", ms=14, mfc="none", mec="red")
        except (ValueError, TypeError):
            pass
    ax.set_title(f"acquisition: {len(frames)} guider frames; {ext_row['guider_message'] or 'WCS ok'}"[:70],
                 fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])


def _psf_panels(axes, x, y, image, region, spec):
    cut = psf.pitch_of(x, y)
    side = psf.lenslet_side(cut)
    head = spec["header"]
    profile = psf.moffat(x, y, head["XCENTR"], head["YCENTR"], head["PSFFWHM"], head["PSFBETA"], side)
    design = np.column_stack([profile[region], np.ones(region.size)])
    coef = np.linalg.lstsq(design, image[region], rcond=None)[0]
    model = design @ coef
    data = image[region]
    lo, hi = np.nanpercentile(data, (2, 99.5))
    for ax, values, name in zip(axes, (data, model, data - model), ("Data", "Model", "Residual")):
        ax.scatter(x[region], y[region], c=values, s=18, marker="h", cmap="viridis", vmin=lo, vmax=hi)
        ax.set_aspect("equal")
        ax.invert_xaxis()
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])


def _spectrum(ax, ctx, srow):
    final = read_spectrum(ctx.run_dir / srow["fits_path"])
    lam, flux = final["wavelength"], final["flux"]
    ax.plot(lam, flux, lw=0.8, color="k", label="observed")
    unit = "erg/s/cm$^2$/A" if srow["fluxcal_file"] else "e-/s/A (not flux-calibrated)"
    if srow["kind"] == "standard" and srow["fluxcal_file"]:
        path = reference_path(ctx.settings, star_name(srow["object"]))
        if path.is_file():
            ref = read_reference(path)
            keep = (ref[0] >= lam[0]) & (ref[0] <= lam[-1])
            ax.plot(ref[0][keep], ref[1][keep], lw=0.8, color="tab:red", label="reference")
    label = f"{srow['type'] or 'unclassified'}"
    if srow["type"]:
        label += f"  z={srow['z']:.3f}  rlap={srow['rlap']:.1f}"
    ax.set_title(f"{srow['object']}: {label}", fontsize="small")
    ax.set_xlabel("wavelength [A]")
    ax.set_ylabel(unit)
    ax.legend(fontsize="x-small")


def verify_one(ctx, item: dict) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    srow = ctx.row("spectra", filename=item["filename"])
    nrow = ctx.row("night", filename=item["filename"])
    erow = ctx.row("extract", filename=item["filename"])
    cube = read_cube(Path(erow["cube_path"]) if Path(erow["cube_path"]).is_absolute()
                     else ctx.run_dir / erow["cube_path"])
    spec = read_spectrum(ctx.run_dir / erow["spectrum_path"])
    with fits.open(ctx.run_dir / erow["spectrum_path"]) as h:
        region = np.array(h["REGION"].data["spaxel"], dtype=int)
    band = (cube["wavelength"] >= BAND[0]) & (cube["wavelength"] <= BAND[1])
    image = np.nansum(cube["flux"][band], axis=0)
    x, y = cube["x"], cube["y"]

    fig = plt.figure(figsize=(12, 9))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.1, 1))
    ax_ifu = fig.add_subplot(grid[0, 0])
    title = (f"quality {srow['quality']}; position: {erow['position_source']}"
             + (f"; redo {srow['redo_tag']}" if srow["redo_tag"] else ""))
    _ifu(ax_ifu, x, y, image, region, (erow["centroid_x"], erow["centroid_y"]), (erow["target_x"], erow["target_y"]),
         title)
    _acquisition(fig.add_subplot(grid[0, 1]), ctx, nrow, erow)
    inner = grid[1, 0].subgridspec(1, 3, wspace=0.05)
    _psf_panels([fig.add_subplot(inner[0, k]) for k in range(3)], x, y, image, region, spec)
    _spectrum(fig.add_subplot(grid[1, 1]), ctx, srow)
    fig.suptitle(Path(srow["fits_path"]).name, fontsize="small")
    rel = night_dir(ctx.settings) / verify_name(srow["fits_path"])
    path = guard(ctx.product(rel), ctx.settings.raw_roots())
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=72)
    plt.close(fig)
    return {"filename": item["filename"], "object": srow["object"], "png_path": str(rel)}


verify = FanOut("verify", inputs=("night", "extract", "spectra"), items=spectra_made, process=verify_one,
                key=("filename",), schema=SCHEMA, shard_size=4, resources=Resources(cpu="1", memory="1Gi"),
                doc=__doc__)
