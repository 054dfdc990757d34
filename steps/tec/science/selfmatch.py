"""Self-match: TCEs whose ephemeris matches a TCE on another target.

TEC runbook step 7 (original: ``selfMatch_spoc.py``).  A signal seen on two different TICs is
usually one star's signal leaking into the other's aperture (or a shared systematic).  For each
TCE (the reference) the candidates are the TCEs on other TICs whose period matches with
Coughlin significance > 3 (``sigma = sqrt(2) erfcinv(|D - round(D)|)``, ``D = (P1 - P2)/P1``,
P1 the smaller period, so harmonics match too); each candidate is federated against the
reference (``federation.federate``, durations capped at 5 h) and the sky separation of the two
targets is kept as log10(arcsec).  ``rank_tces`` flags a TCE when ``n_fed > 1``, or
``n_fed == 1`` and the log separation is below 3.3 (``self_match_flag``).

Differences from the original, on purpose:

* The original computes the separation only for its single best match, and only when that
  match is federated; a TCE with one federated candidate that is not its best match gets
  separation -99, which always satisfies the ranking's "< 3.3".  Here ``min_log_sep`` is the
  smallest separation among the federated matches (NaN when there are none).
* ``n_fed`` applies the full federation rule (the original's count dropped the 1:1-period
  class 3-4 matches, see ``federation``).
* Positions come from the TCE table (DV XML RA/Dec) instead of MAST queries per pair.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from .federation import _columns, _n_rows, angular_separation_arcsec, federate

SIGMA_THRESHOLD = 3.0
MAX_DURATION_H = 5.0
LOG_SEP_FLAG = 3.3
_BLOCK = 1024


def period_match_pairs(periods, tics, sigma_threshold=SIGMA_THRESHOLD):
    """All ordered pairs (i, j), different TICs, with period significance > ``sigma_threshold``.

    ``sqrt(2) erfcinv(x) > s`` is the same as ``x < erfc(s / sqrt(2))``, so no inverse function
    is evaluated; rows are processed in blocks to keep memory bounded for large runs.
    """
    periods = np.asarray(periods, dtype=float)
    tics = np.asarray(tics)
    x_max = erfc(sigma_threshold / np.sqrt(2.0))
    out_i, out_j = [], []
    for start in range(0, periods.size, _BLOCK):
        p1 = periods[start:start + _BLOCK, None]
        small = np.minimum(p1, periods[None, :])
        big = np.maximum(p1, periods[None, :])
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (small - big) / small
            hit = np.abs(d - np.round(d)) < x_max
        hit &= tics[start:start + _BLOCK, None] != tics[None, :]
        i, j = np.nonzero(hit)
        out_i.append(i + start)
        out_j.append(j)
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)


def self_match(tces, t_start, t_end, sigma_threshold=SIGMA_THRESHOLD):
    """Runbook step 7 over a whole TCE table.

    ``tces`` rows (list of dicts, mapping of columns or pyarrow Table): tic, planet_number,
    period (d), epoch (BTJD), duration (h), ra, dec (deg), with the ephemeris priority applied.
    ``t_start``/``t_end``: data span, scalar or one per TCE (the reference's span is used).

    Returns one record per TCE: ``tic, planet_number, n_compared, n_fed, min_log_sep``
    (log10 arcsec over the federated matches, NaN if none), ``best_tic, best_planet_number,
    best_stat, best_class, best_period_ratio, best_federated`` (highest stat among the compared;
    best_tic 0 and stat -1 when none), ``matched_tics, matched_planet_numbers`` (the federated
    matches) and ``flagged`` (the ranking rule).
    """
    c = _columns(tces, ["tic", "planet_number", "period", "epoch", "duration"],
                 optional=["ra", "dec"])
    n = _n_rows(c)
    tic = c["tic"].astype(np.int64)
    pn = c["planet_number"].astype(np.int64)
    period = c["period"].astype(float)
    epoch = c["epoch"].astype(float)
    duration = np.minimum(c["duration"].astype(float), MAX_DURATION_H)
    ra = c["ra"].astype(float) if c["ra"] is not None else np.full(n, np.nan)
    dec = c["dec"].astype(float) if c["dec"] is not None else np.full(n, np.nan)
    t_start = np.broadcast_to(np.asarray(t_start, dtype=float), (n,))
    t_end = np.broadcast_to(np.asarray(t_end, dtype=float), (n,))

    i, j = period_match_pairs(period, tic, sigma_threshold)
    stat, cls, ratio, fed = federate(period[j], epoch[j], duration[j], period[i], epoch[i],
                                     t_start[i], t_end[i])
    with np.errstate(divide="ignore"):
        log_sep = np.log10(angular_separation_arcsec(ra[i], dec[i], ra[j], dec[j]))

    n_compared = np.bincount(i, minlength=n)
    n_fed = np.bincount(i[fed], minlength=n)
    fed_sep = np.where(np.isfinite(log_sep), log_sep, np.inf)
    best_sep = np.full(n, np.inf)
    np.minimum.at(best_sep, i[fed], fed_sep[fed])
    min_log_sep = np.where(np.isfinite(best_sep), best_sep, np.nan)

    order = np.lexsort((pn[j], tic[j], -stat, i))
    first = np.ones(order.size, bool)
    first[1:] = i[order][1:] != i[order][:-1]
    best = np.full(n, -1, np.int64)
    best[i[order[first]]] = order[first]

    fed_idx = np.flatnonzero(fed)
    fed_idx = fed_idx[np.lexsort((pn[j[fed_idx]], tic[j[fed_idx]], i[fed_idx]))]
    splits = np.searchsorted(i[fed_idx], np.arange(n + 1))

    records = []
    for k in range(n):
        b = best[k]
        these = fed_idx[splits[k]:splits[k + 1]]
        rec = {
            "tic": int(tic[k]),
            "planet_number": int(pn[k]),
            "n_compared": int(n_compared[k]),
            "n_fed": int(n_fed[k]),
            "min_log_sep": float(min_log_sep[k]),
            "best_tic": int(tic[j[b]]) if b >= 0 else 0,
            "best_planet_number": int(pn[j[b]]) if b >= 0 else 0,
            "best_stat": float(stat[b]) if b >= 0 else -1.0,
            "best_class": int(cls[b]) if b >= 0 else -1,
            "best_period_ratio": float(ratio[b]) if b >= 0 else float("nan"),
            "best_federated": bool(fed[b]) if b >= 0 else False,
            "matched_tics": [int(x) for x in tic[j[these]]],
            "matched_planet_numbers": [int(x) for x in pn[j[these]]],
        }
        rec["flagged"] = bool(self_match_flag(rec["n_fed"], rec["min_log_sep"]))
        records.append(rec)
    return records


def self_match_flag(n_fed, min_log_sep, max_log_sep=LOG_SEP_FLAG):
    """Ranking rule (step 19): more than one federated match, or one closer than 10**3.3 arcsec.

    A single match with unknown separation (NaN) is flagged, as a missing position cannot clear
    it.
    """
    n_fed = np.asarray(n_fed)
    sep = np.asarray(min_log_sep, dtype=float)
    close = ~(sep >= max_log_sep)   # NaN counts as close
    return (n_fed > 1) | ((n_fed == 1) & close)
