"""Runbook step 9, ses_mes_stats.py (``seq 0 19 | parallel ... -w {} -n 20``): per-TCE statistics.

Fans out over TCEs.  For each: PDC flux on the 10-minute grid with skyline and non-finite
cadences invalid, the alternative detrending, AR(4) gap fill and the Kepler-TPS wavelet SES/MES,
the mean-noise variants, CHASES, and the same for an injected reference signal (``_r``).  The
transits, and a secondary eclipse that DV's weak-secondary test finds significant (its MES above
DV's own threshold), are kept out of the trend and of the noise estimate.  The noise is seeded
per TCE, so a shard gives the same numbers wherever and however often it runs.
Replaces the ``tess_sesmes_*.h5d`` files and the fluxts_conditioning.py hand fix.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from astroflow.units import with_units
from steps.tec.science.sesmes import ses_mes_stats
from steps.tec.science.skyline import bad_cadence_mask
from steps.tec.tces import tce_rows

CAD_PER_HR = 6.0  # every cadence is binned to 10 minutes by the resample step

SCALARS = ["valid_alt_det", "valid_ses", "new_mes", "new_ntran", "ses2mes", "mn_mes", "mn_ses2mn_mes",
           "chases_sumry", "new_mes_r", "ses2mes_r", "mn_mes_r", "mn_ses2mn_mes_r", "chases_sumry_r", "cdpp_ppm"]
INTS = {"valid_alt_det", "valid_ses", "new_ntran"}
ARRAYS = ["transit_times", "transit_ses", "transit_peak_times", "transit_chases"]
SCHEMA = with_units(pa.schema(
    [("tic", pa.int64()), ("planet_number", pa.int32())]
    + [(k, pa.int32() if k in INTS else pa.float64()) for k in SCALARS]
    + [("time", pa.list_(pa.float64())), ("alt_detrend", pa.list_(pa.float32()))]
    + [(k, pa.list_(pa.float64())) for k in ARRAYS]
), {
    "tic": (None, "TESS Input Catalog id"),
    "planet_number": (None, "DV planet (TCE) number on the TIC"),
    "valid_alt_det": (None, "1 when the alternative detrending ran (enough valid bins, P > 0.3 d, T/P < 0.2)"),
    "valid_ses": (None, "1 when the SES/MES statistic could be computed"),
    "new_mes": ("", "multiple-event statistic of the TEC detrending (sigma)"),
    "new_ntran": (None, "transits that contribute to new_mes"),
    "ses2mes": ("", "largest single-event statistic over new_mes"),
    "mn_mes": ("", "MES with the mean noise"),
    "mn_ses2mn_mes": ("", "largest SES over MES, both with the mean noise"),
    "chases_sumry": ("", "CHASES summary: median per-transit uniqueness of the SES peak"),
    "new_mes_r": ("", "new_mes of the injected reference signal"),
    "ses2mes_r": ("", "ses2mes of the injected reference signal"),
    "mn_mes_r": ("", "mn_mes of the injected reference signal"),
    "mn_ses2mn_mes_r": ("", "mn_ses2mn_mes of the injected reference signal"),
    "chases_sumry_r": ("", "chases_sumry of the injected reference signal"),
    "cdpp_ppm": ("ppm", "combined differential photometric precision at the search duration"),
    "time": ("d", "BTJD (BJD - 2457000) of each 10-minute bin"),
    "alt_detrend": ("", "relative flux of the TEC detrending (1 = out of transit)"),
    "transit_times": ("d", "BTJD of each predicted transit"),
    "transit_ses": ("", "single-event statistic of each transit (sigma)"),
    "transit_peak_times": ("d", "BTJD of each transit's SES peak"),
    "transit_chases": ("", "CHASES of each transit"),
})


WEAK_SECONDARY = ["ws_phase_d", "ws_mes", "ws_threshold"]
DV_SECONDARY_THRESHOLD = 7.1  # DV's weak-secondary detection threshold when the XML gives none


def significant_secondary_phase(row: dict) -> float | None:
    """Phase (days after transit) of DV's weak secondary when its MES passes DV's own threshold."""
    phase, mes, thresh = (row.get(k) for k in WEAK_SECONDARY)
    if thresh is None or not np.isfinite(thresh):
        thresh = DV_SECONDARY_THRESHOLD
    if phase is None or mes is None or not (np.isfinite(phase) and np.isfinite(mes)) or mes <= thresh:
        return None
    return float(phase)


def tces(ctx) -> list[dict]:
    keys = ("tic", "planet_number", "period", "epoch", "duration", "eph_depth_ppm", "pulsedur", "mes")
    return [{**{k: r[k] for k in keys}, "secondary_phase_d": significant_secondary_phase(r)}
            for r in tce_rows(ctx, extra=WEAK_SECONDARY)]


def load_shard(ctx, items) -> dict:
    """Binned light curves of the shard's TCEs and the skyline times, read once per shard."""
    lcs = ctx.table("resample", columns=["tic", "planet_number", "time", "pdc_flux", "valid"],
                    where={"tic": sorted({it["tic"] for it in items})})
    skyline = ctx.table("skyline", columns=["time"])
    return {
        "lc": {(r["tic"], r["planet_number"]): r for r in lcs.to_pylist()},
        "skyline": np.asarray(skyline.column("time").to_pylist() if skyline.num_columns else [], float),
    }


def one_tce(ctx, item) -> dict:
    key = (item["tic"], item["planet_number"])
    lc = ctx.state["lc"].get(key)
    if lc is None:
        raise ItemError(f"no resampled light curve for TIC {key[0]} planet {key[1]} (see the resample step's errors)")
    time = np.asarray(lc["time"], float)
    valid = np.asarray(lc["valid"], bool) & ~bad_cadence_mask(time, ctx.state["skyline"])
    out = ses_mes_stats(
        time, np.asarray(lc["pdc_flux"], float), valid,
        period=item["period"], epoch=item["epoch"], duration_h=item["duration"],
        depth_ppm=item["eph_depth_ppm"], pulse_dur_h=item["pulsedur"], cad_per_hr=CAD_PER_HR,
        rng=np.random.default_rng([ctx.settings.seed, item["tic"], item["planet_number"]]),
        tce_mes=item["mes"], secondary_phase_d=item.get("secondary_phase_d"),
    )
    row = {"tic": item["tic"], "planet_number": item["planet_number"], "time": time}
    row.update({k: out[k] for k in SCALARS + ["alt_detrend"] + ARRAYS})
    return row


ses_mes = FanOut(
    "ses_mes",
    inputs=("gather", "resample", "skyline"),
    items=tces,
    setup=load_shard,
    process=one_tce,
    key=("tic", "planet_number"),
    schema=SCHEMA,
    shard_size=25,
    resources=Resources(cpu="1", memory="2Gi"),
    doc=__doc__,
)
