"""The TCEs that TEC runbook steps 12-19 examine, read once from the run (no science here).

Every one of modshift_test.py, sweet_test.py, grab_flxwcent.py, modump_check.py and
rank_tces.py starts from the same selection: TCEs that passed the flux triage (step 11) with a
converged DV all-transit fit (``at_valid``), a converged trapezoid fit (``trp_valid``) and a
positive insolation (``at_effflux > 0``).  Their ephemeris is the DV all-transit fit's.
"""

from __future__ import annotations

import math

import numpy as np

from steps.tec.science.skyline import bad_cadence_mask

DV_FIT = ["at_valid", "trp_valid", "at_effflux", "at_period", "at_epochbtjd", "at_dur", "at_depth",
          "at_rpdrstar", "at_rpdrstar_e", "at_adrstar", "at_snr", "at_rp", "mes"]


def not_vetted_reason(row: dict, triage: dict | None) -> str | None:
    """Why a TCE is left out of steps 12-19 (None when it is examined)."""
    if triage is None:
        return "NoTriage"
    if not triage["passed"]:
        return triage["reason"]
    if row["at_valid"] != 1:
        return "DvFitNotConverged"
    if row["trp_valid"] != 1:
        return "TrapezoidFitNotConverged"
    if not (row["at_effflux"] is not None and math.isfinite(row["at_effflux"]) and row["at_effflux"] > 0):
        return "NoInsolation"
    return None


def triage_rows(ctx) -> dict:
    return {(r["tic"], r["planet_number"]): r
            for r in ctx.rows("flux_triage", columns=["tic", "planet_number", "passed", "reason"])}


def vetted_tces(ctx, extra: list[str] | None = None) -> list[dict]:
    """Triage-passing TCEs with valid DV and trapezoid fits and insolation > 0, sorted by (tic, pn).

    Each dict has tic, planet_number, the DV fit fields of ``DV_FIT`` and the ``extra`` columns.
    """
    cols = ["tic", "planet_number"] + DV_FIT + [c for c in (extra or []) if c not in DV_FIT]
    triage = triage_rows(ctx)
    rows = [r for r in ctx.rows("gather", columns=cols)
            if not_vetted_reason(r, triage.get((r["tic"], r["planet_number"]))) is None]
    return sorted(rows, key=lambda r: (r["tic"], r["planet_number"]))


def tic_where(items: list[dict]) -> dict:
    """``ctx.table(where=...)`` selecting the TICs of ``items`` (only their rows count as read)."""
    return {"tic": sorted({int(it["tic"]) for it in items})}


def skyline_times(ctx) -> np.ndarray:
    sky = ctx.table("skyline", columns=["time"])
    return np.asarray(sky.column("time").to_pylist() if sky.num_columns else [], float)


def pdc_light_curve(row: dict, skyline: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, PDC flux, valid) of one resampled TCE row, skyline cadences invalid (as ses_mes)."""
    time = np.asarray(row["time"], float)
    flux = np.asarray(row["pdc_flux"], float)
    valid = (np.asarray(row["valid"], bool) & np.isfinite(time) & np.isfinite(flux)
             & ~bad_cadence_mask(time, skyline))
    return time, flux, valid
