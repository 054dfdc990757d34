"""Runbook step 1, gather_tce_fromdvxml.py: DV results XML -> one row per TCE.

Fans out over the sector's ``*_dvr.xml[.gz]`` files (one per TIC); a truncated or malformed file
is recorded with its name and the rest go on.  The TCE table is the Parquet dataset
``RUN/gather/`` (it replaces ``{run}_tce.h5``); logg comes from log10SurfaceGravity, unlike the
original.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from astroflow.units import with_units
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

UNITS = {  # ../shared/reference/spoc-formats.md, the DV XML fields
    "tic": (None, "TESS Input Catalog id"), "planet_number": (None, "DV planet (TCE) number"),
    "ra": ("deg", "right ascension (ICRS)"), "dec": ("deg", "declination (ICRS)"),
    "teff": ("K", "stellar effective temperature"), "teff_e": ("K", "uncertainty of teff"),
    "ld1": ("", "limb-darkening coefficient 1"), "ld2": ("", "limb-darkening coefficient 2"),
    "ld3": ("", "limb-darkening coefficient 3"), "ld4": ("", "limb-darkening coefficient 4"),
    "feh": ("dex", "[Fe/H]"), "logg": ("dex(cm / s2)", "log10 of the surface gravity"),
    "rstar": ("solRad", "stellar radius"), "rstar_e": ("solRad", "uncertainty of rstar"),
    "tmag": ("mag", "TESS magnitude"),
    "pmra": ("mas / yr", "proper motion in RA (the XML gives no unit; the TIC's)"),
    "pmdec": ("mas / yr", "proper motion in Dec (the XML gives no unit; the TIC's)"),
    "row": ("pix", "target row on the CCD (first difference image)"),
    "col": ("pix", "target column on the CCD (first difference image)"),
    "data_start": (None, "first cadence number searched"), "data_end": (None, "last cadence number searched"),
    "at_snr": ("", "all-transit fit SNR"), "at_epochbtjd": ("d", "all-transit fit epoch, BTJD"),
    "at_epochbtjd_e": ("d", "uncertainty of at_epochbtjd"), "at_rp": ("earthRad", "planet radius"),
    "at_rp_e": ("earthRad", "uncertainty of at_rp"), "at_imp": ("", "impact parameter"),
    "at_dur": ("h", "transit duration"), "at_depth": ("ppm", "transit depth"),
    "at_depth_e": ("ppm", "uncertainty of at_depth (never filled by DV)"),
    "at_period": ("d", "orbital period"), "at_period_e": ("d", "uncertainty of at_period"),
    "at_rpdrstar": ("", "Rp / R*"), "at_rpdrstar_e": ("", "uncertainty of at_rpdrstar"), "at_adrstar": ("", "a / R*"),
    "at_eqtemp": ("K", "planet equilibrium temperature"),
    "at_effflux": (None, "insolation, in units of the Earth's"),
    "tce_epoch": ("d", "TPS epoch, BTJD"), "mes": ("", "TPS multiple-event statistic (sigma)"),
    "maxsesinmes": ("", "largest single-event statistic in the MES (sigma)"), "tce_period": ("d", "TPS period"),
    "pulsedur": ("h", "TPS trial pulse duration"), "trp_snr": ("", "trapezoid fit SNR"),
    "trp_epochbtjd": ("d", "trapezoid fit epoch, BTJD"), "trp_dur": ("h", "trapezoid fit duration"),
    "trp_depth": ("ppm", "trapezoid fit depth"),
    "cent_oot_offset": ("arcsec", "difference-image centroid offset from the out-of-transit centroid"),
    "cent_oot_offset_e": ("arcsec", "uncertainty of cent_oot_offset (< 0: not computed)"),
    "cent_tic_offset": ("arcsec", "difference-image centroid offset from the TIC position"),
    "cent_tic_offset_e": ("arcsec", "uncertainty of cent_tic_offset (< 0: not computed)"),
    "ws_phase_d": ("d", "phase of DV's weak secondary after the transit"),
    "ws_mes": ("", "MES of DV's weak secondary"), "ws_threshold": ("", "DV's weak-secondary detection threshold"),
    "eph_period": ("d", "period used downstream (TPS or fit)"), "eph_epoch": ("d", "epoch used downstream, BTJD"),
    "eph_duration_h": ("h", "duration used downstream"), "eph_depth_ppm": ("ppm", "depth used downstream"),
}

SCHEMA = with_units(pa.schema(
    [("tic", pa.int64()), ("planet_number", pa.int32())]
    + [(f, pa.int64()) for f in INT_FIELDS if f != "tic"]
    + [(f, pa.string()) for f in STR_FIELDS]
    + [(f, pa.list_(pa.int64())) for f in LIST_FIELDS]
    + [(f, pa.float64()) for f in FLOAT_FIELDS]
), {k: v for k, v in UNITS.items() if k in INT_FIELDS + FLOAT_FIELDS + ("planet_number",)})


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
