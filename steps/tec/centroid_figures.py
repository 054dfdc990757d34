"""Runbook step 18 [optional], centroid_form_basic.py: per-pixel transit significance figures.

Off unless ``[steps.centroid_figures] enabled = true``; it needs the optional step 8
(``[steps.tpf_resample] enabled = true``).  Fans out over the vetted TCEs; for each sector's
binned pixel data: the median image, the per-pixel depth and its significance
(``steps.tec.science.centroid``), with the target's flux-weighted centre marked.  Writes
``S{ss}/{tic//1000:04d}/tess_bsc_diffImg_{TIC}_{PN}_{s:02d}.pdf``; the report step adds it when
present.  Not used in the ranking (the runbook: "not that useful other than egregious centroid
offsets").
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError, StepFailed
from astroflow.step import FanOut, Resources, StepParams
from steps.tec.science.centroid import pixel_significance
from steps.tec.vetted import tic_where, vetted_tces

SCHEMA = pa.schema([("tic", pa.int64()), ("planet_number", pa.int32()), ("sector", pa.int32()),
                    ("max_significance", pa.float64()), ("peak_offset_px", pa.float64()), ("path", pa.string())])


class CentroidFigureParams(StepParams):
    enabled: bool = False


def tces(ctx) -> list[dict]:
    if not ctx.has_input("tpf_resample"):
        raise StepFailed("centroid_figures needs the pixel data of step 8: set [steps.tpf_resample] enabled = true")
    return [{k: r[k] for k in ("tic", "planet_number", "at_period", "at_epochbtjd", "at_dur")} for r in vetted_tces(ctx)]


def load(ctx, items) -> dict:
    t = ctx.table("tpf_resample", columns=["tic", "sector", "ny", "nx", "time", "flux", "valid"],
                  where=tic_where(items))
    by_tic: dict = {}
    for r in t.to_pylist():
        by_tic.setdefault(r["tic"], []).append(r)
    return by_tic


def one_tce(ctx, item) -> list[dict]:
    tic, pn = item["tic"], item["planet_number"]
    pixels = ctx.state.get(tic)
    if not pixels:
        raise ItemError(f"no binned pixel data for TIC {tic} (see the tpf_resample step's errors)")
    rows = []
    for px in sorted(pixels, key=lambda r: r["sector"]):
        time = np.asarray(px["time"], float)
        cube = np.asarray(px["flux"], float).reshape(time.size, px["ny"], px["nx"])
        try:
            img = pixel_significance(time, cube, px["valid"], item["at_period"], item["at_epochbtjd"], item["at_dur"])
        except ValueError as exc:
            raise ItemError(f"TIC {tic} sector {px['sector']}: {exc}") from exc
        sig = img["significance"]
        med = img["median"]
        yy, xx = np.indices(med.shape)
        w = np.clip(np.nan_to_num(med), 0, None)
        centre = (np.sum(w * yy) / w.sum(), np.sum(w * xx) / w.sum()) if w.sum() > 0 else (np.nan, np.nan)
        if np.isfinite(sig).any():
            pj, pi = np.unravel_index(np.nanargmax(sig), sig.shape)
            offset = float(np.hypot(pj - centre[0], pi - centre[1]))
        else:
            offset = float("nan")
        rel = ctx.settings.tce_dir(tic) / f"tess_bsc_diffImg_{tic:016d}_{pn:02d}_{px['sector']:02d}.pdf"
        plot(ctx.product(rel), img, centre, tic, pn, px["sector"])
        rows.append({"tic": tic, "planet_number": pn, "sector": px["sector"],
                     "max_significance": float(np.nanmax(sig)) if np.isfinite(sig).any() else float("nan"),
                     "peak_offset_px": offset, "path": str(rel)})
    return rows


def plot(path, img: dict, centre, tic: int, pn: int, sector: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 4.2))
    fig.suptitle(f"TIC {tic} planet {pn} sector {sector}: per-pixel transit signal (in-transit cadences: {img['n_in']})")
    for ax, key, title in zip(axes, ("median", "depth", "significance"),
                              ("median flux [e-/s]", "depth (relative)", "depth significance [sigma]")):
        im = ax.imshow(img[key], origin="lower", cmap="viridis" if key == "median" else "RdBu_r")
        ax.plot(centre[1], centre[0], "w+", ms=12, mew=2)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf")
    plt.close(fig)


centroid_figures = FanOut(
    "centroid_figures",
    inputs=("gather", "flux_triage"),
    optional_inputs=("tpf_resample",),
    items=tces,
    setup=load,
    process=one_tce,
    key=("tic", "planet_number"),
    params=CentroidFigureParams,
    schema=SCHEMA,
    shard_size=20,
    resources=Resources(cpu="1", memory="4Gi", heavy=True),
    doc=__doc__,
)
