"""Runbook step 8 [optional], tpf_bulk_resamp.py: target pixel files binned onto the DV bins.

Fans out over the sector's ``*_tp.fits[.gz]`` files (one per TIC); flux and background are
summed over each resample bin (aligned through the bins' first and last cadence numbers),
quality OR-ed (the original summed it, breaking the bits), and saturated pixels marked.  Needs
the resample step first, as the runbook says.  Off unless ``[steps.tpf_resample] enabled = true``.
The pixel cubes are stored flattened with their shape (``ny``, ``nx``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from steps.tec.lightcurve import bin_tpf, read_tpf
from steps.tec.tces import sector_products

F32 = pa.list_(pa.float32())
SCHEMA = pa.schema([
    ("tic", pa.int64()), ("sector", pa.int32()), ("ny", pa.int32()), ("nx", pa.int32()),
    ("crv4p_col", pa.int32()), ("crv4p_row", pa.int32()),
    ("cadence_no", pa.list_(pa.int64())), ("time", pa.list_(pa.float64())), ("flux", F32), ("flux_bkg", F32),
    ("quality", pa.list_(pa.int32())), ("valid", pa.list_(pa.bool_())), ("saturated", pa.list_(pa.int8())),
])


class TpfParams(StepParams):
    enabled: bool = False


def tpf_files(ctx) -> list[dict]:
    s = ctx.settings
    sectors = range(s.dv_sectors[0], s.dv_sectors[1] + 1)
    items = []
    for sector in sectors:
        found = sector_products(ctx, "tp", sector)
        items += [{"tic": tic, "sector": sector, "path": str(p)} for tic, p in found.items()]
    return items


def load_bins(ctx, items) -> dict:
    t = ctx.table("resample", columns=["tic", "planet_number", "cadence_beg", "cadence_end"],
                  where={"tic": sorted({it["tic"] for it in items}), "planet_number": 1})
    return {r["tic"]: r for r in t.to_pylist()}


def one_file(ctx, item) -> dict:
    bins = ctx.state.get(item["tic"])
    if bins is None:
        raise ItemError(f"TIC {item['tic']} has no resampled DV time series to align to", item["path"])
    b = bin_tpf(read_tpf(ctx.uses(item["path"])), bins["cadence_beg"], bins["cadence_end"])
    _, ny, nx = b["flux"].shape
    return {
        "tic": item["tic"], "sector": item["sector"], "ny": ny, "nx": nx,
        "crv4p_col": b["crv4p_col"], "crv4p_row": b["crv4p_row"], "cadence_no": b["cadence_no"],
        "time": b["time"], "flux": b["flux"].ravel(), "flux_bkg": b["flux_bkg"].ravel(),
        "quality": b["quality"], "valid": b["valid"], "saturated": np.asarray(b["saturated"]).ravel(),
    }


tpf_resample = FanOut(
    "tpf_resample",
    inputs=("resample",),
    items=tpf_files,
    setup=load_bins,
    process=one_file,
    key=("tic", "sector"),
    params=TpfParams,
    schema=SCHEMA,
    shard_size=20,
    resources=Resources(cpu="1", memory="4Gi", heavy=True),
    doc=__doc__,
)
