"""Skyline: times at which unusually many TCEs are in transit.

TEC runbook step 4 (original: ``skyline_spoc.py``, applied in ``ses_mes_stats.py``).  A
systematic (a momentum dump, scattered light, a bad cadence) makes many targets "transit" at
once; the skyline histogram counts, on a 10-minute grid over the data span, how many TCEs are in
transit in each cell, and flags the cells far above the typical count.  The ses_mes step
(runbook step 10) then marks the cadences within 5 minutes of a flagged time as invalid.

* duration of each TCE capped at 5 h; a cell is in transit when its time lies within half a
  duration of a transit centre (the same in-transit test as the federation grid);
* flagged where ``(count - median) / normalised MAD > 2.75`` for one sector, 3.5 for
  multi-sector runs (normalised MAD = MAD x 1.4826, the Gaussian-consistent scale of
  ``astropy.stats.mad_std``).

Differences from the original, on purpose:

* When more than half of the cells share one count the MAD is 0 and the original divides by
  zero, flagging every cell above the median.  The normalised MAD is floored at 1 count here.
* ``ses_mes_stats.py`` ignores the skyline list when it holds a single time (it reads one
  value as a 0-d array and replaces it); ``bad_cadence_mask`` uses every flagged time.
"""

from __future__ import annotations

import numpy as np

from astroflow.filters import MAD_TO_SIGMA

GRID_STEP_DAYS = 10.0 / 1440.0
MAX_DURATION_H = 5.0
SIGMA_SINGLE_SECTOR = 2.75
SIGMA_MULTI_SECTOR = 3.5
BAD_CADENCE_TOL_DAYS = 5.0 / 1440.0


def skyline_counts(epochs, periods, durations_h, grid_times):
    """Number of TCEs in transit in each cell of a regular grid (durations used as given).

    Transit windows are accumulated as +1/-1 steps on the grid, so the cost grows with the
    number of transits, not with TCEs x cells.  TCEs with a non-finite ephemeris count nowhere.
    """
    epochs, periods, durations_h = (np.atleast_1d(np.asarray(a, dtype=float))
                                    for a in (epochs, periods, durations_h))
    n = grid_times.size
    counts = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return counts[:0]
    t0 = grid_times[0]
    step = grid_times[1] - t0 if n > 1 else GRID_STEP_DAYS
    half = durations_h / 24.0 / 2.0
    ok = np.isfinite(epochs) & np.isfinite(periods) & np.isfinite(half) & (periods > 0)

    # A window at least as long as the period covers the whole grid.
    always = ok & (half >= periods / 2.0)
    counts[0] += np.count_nonzero(always)
    counts[n] -= np.count_nonzero(always)

    sel = np.flatnonzero(ok & ~always)
    per, epc, hw = periods[sel], epochs[sel], half[sel]
    k_lo = np.ceil((t0 - hw - epc) / per)
    k_hi = np.floor((grid_times[-1] + hw - epc) / per)
    n_tr = np.maximum(k_hi - k_lo + 1, 0).astype(np.int64)
    row = np.repeat(np.arange(sel.size), n_tr)
    k = k_lo[row] + np.arange(n_tr.sum()) - np.repeat(np.cumsum(n_tr) - n_tr, n_tr)
    centre = epc[row] + k * per[row]
    lo = np.clip(np.ceil((centre - hw[row] - t0) / step), 0, n).astype(np.int64)
    hi = np.clip(np.floor((centre + hw[row] - t0) / step) + 1, 0, n).astype(np.int64)
    keep = hi > lo
    np.add.at(counts, lo[keep], 1)
    np.add.at(counts, hi[keep], -1)
    return np.cumsum(counts)[:n]


def skyline_flags(epochs, periods, durations_h, t_start, t_end, multi_sector=False,
                  threshold=None):
    """Skyline histogram and flagged cells (runbook step 4).

    ``epochs`` (BTJD), ``periods`` (days), ``durations_h`` (hours): one per TCE, with the
    runbook's ephemeris priority applied.  ``t_start``/``t_end``: the data span (BTJD).
    ``threshold`` overrides the sigma level (default 2.75, or 3.5 when ``multi_sector``).

    Returns ``(grid_times, counts, flagged_mask)``; ``grid_times[flagged_mask]`` is the list
    the original writes to ``skyline_data_*.txt``.
    """
    if threshold is None:
        threshold = SIGMA_MULTI_SECTOR if multi_sector else SIGMA_SINGLE_SECTOR
    grid_times = np.arange(t_start, t_end, GRID_STEP_DAYS)
    durations_h = np.minimum(np.asarray(durations_h, dtype=float), MAX_DURATION_H)
    counts = skyline_counts(epochs, periods, durations_h, grid_times)
    if counts.size == 0:
        return grid_times, counts, np.zeros(0, dtype=bool)
    median = np.median(counts)
    # The counts are small integers: their MAD can be far below their real scatter (MAD 1 for
    # counts around 4, where chance overlaps scatter like sqrt(4) = 2), and then every chance
    # overlap of a few transits is flagged and real transits lose their cadences.  The scale
    # never goes below the Poisson scatter of the median count (nor below one count).
    scale = max(np.median(np.abs(counts - median)) * MAD_TO_SIGMA, np.sqrt(median), 1.0)
    flagged = (counts - median) / scale > threshold
    return grid_times, counts, flagged


def bad_cadence_mask(times, flagged_times, tol_days=BAD_CADENCE_TOL_DAYS):
    """True for each time strictly closer than ``tol_days`` (5 min) to a flagged skyline time.

    Used by ses_mes (runbook step 10) to invalidate cadences.  Non-finite times are never
    flagged here (ses_mes drops them on its own).
    """
    times = np.asarray(times, dtype=float)
    flagged = np.sort(np.asarray(flagged_times, dtype=float).ravel())
    flagged = flagged[np.isfinite(flagged)]
    if flagged.size == 0:
        return np.zeros(times.shape, dtype=bool)
    pos = np.searchsorted(flagged, times)
    left = flagged[np.clip(pos - 1, 0, flagged.size - 1)]
    right = flagged[np.clip(pos, 0, flagged.size - 1)]
    nearest = np.minimum(np.abs(times - left), np.abs(times - right))
    return nearest < tol_days
