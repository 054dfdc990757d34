"""Runbook step 1, gather_tce_fromdvxml.py: DV results XML -> one row per TCE.

Fans out over the sector's ``*_dvr.xml[.gz]`` files (one per TIC); a truncated or malformed file
is recorded with its name and the rest go on.  The TCE table is the Parquet dataset
``RUN/gather/`` (it replaces ``{run}_tce.h5``); logg comes from log10SurfaceGravity, unlike the
original.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.tec.dvxml import parse_dv_xml
from steps.tec.tces import product_items

INT_FIELDS = ("tic", "n_planets", "sector", "camera", "ccd", "pix_pos_valid", "data_start", "data_end",
              "at_valid", "ntran", "trp_valid")
STR_FIELDS = ("source_file", "eph_source")
LIST_FIELDS = ("sectors_observed", "all_sectors", "all_cadstart", "all_cadend")
FLOAT_FIELDS = (
    "toi_id", "ra", "dec", "teff", "teff_e", "ld1", "ld2", "ld3", "ld4", "feh", "logg", "rstar", "rstar_e",
    "tmag", "pmra", "pmdec", "row", "col", "at_snr", "at_epochbtjd", "at_epochbtjd_e", "at_rp", "at_rp_e",
    "at_imp", "at_dur", "at_depth", "at_depth_e", "at_period", "at_period_e", "at_rpdrstar", "at_rpdrstar_e",
    "at_adrstar", "at_eqtemp", "at_effflux", "ghostcoreval", "ghostcoresig", "ghosthaloval", "ghosthalosig",
    "modchi2", "chi2", "tce_epoch", "mes", "maxsesinmes", "tce_period", "robstat", "pulsedur", "trp_snr",
    "trp_epochbtjd", "trp_dur", "trp_depth", "cent_oot_offset", "cent_oot_offset_e", "cent_tic_offset",
    "cent_tic_offset_e", "oe_signif", "ws_phase_d", "ws_mes", "ws_threshold", "eph_period", "eph_epoch",
    "eph_duration_h", "eph_depth_ppm",
)

SCHEMA = pa.schema(
    [("tic", pa.int64()), ("planet_number", pa.int32())]
    + [(f, pa.int64()) for f in INT_FIELDS if f != "tic"]
    + [(f, pa.string()) for f in STR_FIELDS]
    + [(f, pa.list_(pa.int64())) for f in LIST_FIELDS]
    + [(f, pa.float64()) for f in FLOAT_FIELDS]
)


def one_file(ctx, item) -> list[dict]:
    return [{k: r.get(k) for k in SCHEMA.names} for r in parse_dv_xml(ctx.uses(item["path"]))]


gather = FanOut(
    "gather",
    items=lambda ctx: product_items(ctx, "dvr_xml"),
    process=one_file,
    key=("tic",),
    schema=SCHEMA,
    shard_size=400,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
