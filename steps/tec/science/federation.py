"""Ephemeris matching (federation) of TCEs with reference signals.

TEC runbook steps 5 (the algorithm), 6 (``federate_knownPWtce``: known planets) and 11
(``federate_toiWtce``: TOIs); the original lives in TEC's ``toidb_federate.py``
(``timeseries.makeEphemVector`` and ``federateFunction``) and the two driver scripts.

The algorithm is that of Mullally et al. 2015 (ApJS 217, 31), sec. 4.1.  On a 10-minute time
grid over the data span:

* the *reference* (known planet, TOI, or the TCE being self-matched) contributes one cadence
  per transit: the centre of each run of in-transit cells of a 1-hour window;
* the *candidate* (a TCE) contributes all its in-transit cells for a window of twice its
  duration, capped at a quarter of its period, floored at 1 h (0.5 h if P < 1 d);
* ``stat = N(ref centres inside candidate windows) / N(candidate transits)
  - N(ref centres outside candidate windows) / N(ref centres)``
  (both denominators floored at 1);
* ``stat = -1`` when the candidate period is outside ``[P_ref/3, 3 P_ref]`` or when the
  reference period is below 0.11 d;
* classes: 1 if stat >= 0.8; 2 if in [0.4, 0.8); 3 if in [0.15, 0.4); 4 if in [-0.5, 0.15)
  and ``|1 - P_ref/P_cand| < 0.006``; 0 otherwise;
* federated if (``|1 - ratio| < 0.006`` and class 1-4) or (class 1-2 and ratio > 0.45),
  with ``ratio = P_ref / P_cand``.

The original builds both 0/1 vectors on the full grid for every comparison.  Here the same
quantities are computed from the transit centres directly (the reference centre cells and a
phase test of those cells against the candidate windows), vectorised over all compared pairs,
so a sector's ~1,500 TCEs against thousands of catalogue entries takes milliseconds.

Differences from the original, on purpose:

* The original's 0.5 h duration floor, once set by one candidate with P < 1 d, stays set for
  every later candidate of the same call (a variable that is never reset).  Here the floor is
  decided per candidate.
* The original counts, for ``nFed``, only class 1-2 matches: its 1:1 period flag for all
  candidates is never assigned (a statement without effect).  ``federate`` applies the same
  federation rule to every pair, so counts built on it are right.
* Ties in the best match are broken deterministically (lowest planet number), where the
  original took whatever order ``argsort`` gave.
* Candidate transits are counted as windows; if a candidate's window were longer than its
  period (only possible for P below about 2-4 h) the original would count merged runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import erfcinv

GRID_STEP_DAYS = 10.0 / 1440.0   # 10-minute federation grid
REF_WINDOW_H = 1.0               # reference transit window whose centre cell is used
MIN_PERIOD_MULT = 1.0 / 3.0
MAX_PERIOD_MULT = 3.0
MIN_REF_PERIOD_DAYS = 0.11
PERIOD_MATCH_TOL = 0.006
DUR_FLOOR_H = 1.0
DUR_FLOOR_SHORT_H = 0.5          # floor when the candidate period is below 1 d
CONE_RADIUS_ARCSEC = 180.0

_MAX_TRANSITS_PER_CHUNK = 2_000_000


# ---------------------------------------------------------------------------------------------
# The federation statistic
# ---------------------------------------------------------------------------------------------

def _grid_size(t_start, t_end):
    """Number of cells of ``np.arange(t_start, t_end, 10 min)`` (at least 1)."""
    return np.maximum(np.ceil((t_end - t_start) / GRID_STEP_DAYS), 1).astype(np.int64)


def _expand_transits(period, epoch, lo_time, hi_time):
    """All transit centres ``epoch + k*period`` with centre in [lo_time, hi_time], per row.

    Returns (row index, centre time) for every transit, as flat arrays.
    """
    k_lo = np.ceil((lo_time - epoch) / period)
    k_hi = np.floor((hi_time - epoch) / period)
    counts = np.maximum(k_hi - k_lo + 1, 0).astype(np.int64)
    row = np.repeat(np.arange(len(period)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    k = k_lo[row] + (np.arange(counts.sum()) - first)
    return row, epoch[row] + k * period[row]


def _candidate_window_h(period, duration_h):
    """Candidate window: 2x duration, capped at P/4, floored at 1 h (0.5 h if P < 1 d)."""
    width = 2.0 * np.asarray(duration_h, dtype=float)
    width = np.where(width / 24.0 / period > 0.25, 0.25 * period * 24.0, width)
    floor = np.where(period < 1.0, DUR_FLOOR_SHORT_H, DUR_FLOOR_H)
    return np.maximum(width, floor)


def _raw_stats(ref_period, ref_epoch, cand_period, cand_epoch, cand_width_h, t0, n_cells):
    """The federation statistic for pairs whose periods are all admissible (no -1 cases)."""
    npair = len(ref_period)
    t_last = t0 + (n_cells - 1) * GRID_STEP_DAYS

    # Reference: the centre cell of each (possibly truncated) 1-hour in-transit run.
    h_ref = REF_WINDOW_H / 24.0 / 2.0
    row, centre = _expand_transits(ref_period, ref_epoch, t0 - h_ref - GRID_STEP_DAYS,
                                   t_last + h_ref + GRID_STEP_DAYS)
    lo = np.maximum(np.ceil((centre - h_ref - t0[row]) / GRID_STEP_DAYS), 0)
    hi = np.minimum(np.floor((centre + h_ref - t0[row]) / GRID_STEP_DAYS), n_cells[row] - 1)
    ok = lo <= hi
    row, lo, hi = row[ok], lo[ok], hi[ok]
    cell_time = t0[row] + np.floor((lo + hi) / 2.0) * GRID_STEP_DAYS
    n_ref = np.bincount(row, minlength=npair)

    # Is each reference centre cell inside a candidate window?
    half = cand_width_h[row] / 24.0 / 2.0
    per = cand_period[row]
    phase = np.mod(cell_time - cand_epoch[row], per)
    phase = np.where(phase > 0.5 * per, phase - per, phase)
    inside = np.abs(phase) <= half
    n_in = np.bincount(row, weights=inside, minlength=npair)

    # Number of candidate transits whose window holds at least one grid cell.
    h_c = cand_width_h / 24.0 / 2.0
    n_cand = (np.floor((t_last + h_c - cand_epoch) / cand_period)
              - np.ceil((t0 - h_c - cand_epoch) / cand_period) + 1)
    n_cand = np.maximum(n_cand, 1.0)

    return n_in / n_cand - (n_ref - n_in) / np.maximum(n_ref, 1)


def classify(stat, period_ratio):
    """Match class (1-4, 0 for none) and federation flag from stat and P_ref/P_cand."""
    stat = np.asarray(stat, dtype=float)
    ratio = np.asarray(period_ratio, dtype=float)
    one_to_one = np.abs(1.0 - ratio) < PERIOD_MATCH_TOL
    cls = np.zeros(stat.shape, dtype=np.int64)
    cls[stat >= 0.8] = 1
    cls[(stat >= 0.4) & (stat < 0.8)] = 2
    cls[(stat >= 0.15) & (stat < 0.4)] = 3
    cls[(stat >= -0.5) & (stat < 0.15) & one_to_one] = 4
    federated = ((one_to_one & (cls >= 1) & (cls <= 4))
                 | ((cls >= 1) & (cls <= 2) & (ratio > 0.45)))
    return cls, federated


def federate(cand_period, cand_epoch, cand_dur_h, ref_period, ref_epoch, t_start, t_end):
    """Mullally et al. 2015 ephemeris match of candidate(s) against reference(s).

    All arguments broadcast against each other (periods and epochs in days/BTJD, the
    candidate duration in hours, ``t_start``/``t_end`` the data span in BTJD); each element is
    one candidate-reference pair.  Returns ``(stat, cls, period_ratio, federated)`` with
    ``period_ratio = ref_period / cand_period``; scalars in, scalars out.  Pairs with a
    non-finite input get ``stat = -1`` and class 0.
    """
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in
                                   (cand_period, cand_epoch, cand_dur_h, ref_period,
                                    ref_epoch, t_start, t_end)])
    scalar = arrays[0].ndim == 0
    cp, ce, cd, rp, re, ts, te = [a.ravel() for a in arrays]

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rp / cp
    stat = np.full(cp.shape, -1.0)
    usable = (np.isfinite(cp) & np.isfinite(ce) & np.isfinite(cd) & np.isfinite(rp)
              & np.isfinite(re) & np.isfinite(ts) & np.isfinite(te) & (cp > 0) & (rp > 0)
              & (cp >= MIN_PERIOD_MULT * rp) & (cp <= MAX_PERIOD_MULT * rp)
              & (rp >= MIN_REF_PERIOD_DAYS) & (te > ts))
    idx = np.flatnonzero(usable)
    if idx.size:
        width = _candidate_window_h(cp[idx], cd[idx])
        n_cells = _grid_size(ts[idx], te[idx])
        # bound memory: chunk the pairs by their number of reference transits
        n_trans = (te[idx] - ts[idx]) / rp[idx] + 3
        bounds = np.searchsorted(np.cumsum(n_trans),
                                 np.arange(_MAX_TRANSITS_PER_CHUNK, n_trans.sum(),
                                           _MAX_TRANSITS_PER_CHUNK))
        for part in np.split(np.arange(idx.size), np.unique(bounds)):
            if part.size == 0:
                continue
            sel = idx[part]
            stat[sel] = _raw_stats(rp[sel], re[sel], cp[sel], ce[sel], width[part],
                                   ts[sel], n_cells[part])

    cls, federated = classify(stat, ratio)
    if scalar:
        return float(stat[0]), int(cls[0]), float(ratio[0]), bool(federated[0])
    shape = arrays[0].shape
    return stat.reshape(shape), cls.reshape(shape), ratio.reshape(shape), federated.reshape(shape)


def period_significance(p1, p2):
    """Coughlin period-match significance: sqrt(2) erfcinv(|D - round(D)|), D = (P1-P2)/P1.

    P1 is the smaller of the two periods; equal periods give +inf, NaN gives NaN.
    """
    p1 = np.asarray(p1, dtype=float)
    p2 = np.asarray(p2, dtype=float)
    small = np.minimum(p1, p2)
    big = np.maximum(p1, p2)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (small - big) / small
        return np.sqrt(2.0) * erfcinv(np.abs(d - np.round(d)))


# ---------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------

def angular_separation_arcsec(ra1, dec1, ra2, dec2):
    """Great-circle separation in arcsec of positions in degrees (Vincenty formula, broadcast)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=float)) for a in (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    num = np.hypot(np.cos(dec2) * np.sin(dra),
                   np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra))
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den)) * 3600.0


def _unit_vectors(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def cone_match(ra1, dec1, ra2, dec2, radius_arcsec=CONE_RADIUS_ARCSEC):
    """All index pairs (i, j) with position i of set 1 within ``radius_arcsec`` of j of set 2.

    Positions in degrees; non-finite positions match nothing.  A k-d tree on unit vectors
    keeps it fast for catalogues of any size.  Returns two int arrays, sorted by (i, j).
    """
    ra1, dec1, ra2, dec2 = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (ra1, dec1, ra2, dec2))
    ok1 = np.flatnonzero(np.isfinite(ra1) & np.isfinite(dec1))
    ok2 = np.flatnonzero(np.isfinite(ra2) & np.isfinite(dec2))
    if ok1.size == 0 or ok2.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    tree1 = cKDTree(_unit_vectors(ra1[ok1], dec1[ok1]))
    tree2 = cKDTree(_unit_vectors(ra2[ok2], dec2[ok2]))
    chord = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
    coo = tree1.sparse_distance_matrix(tree2, chord, output_type="ndarray")
    i, j = ok1[coo["i"]], ok2[coo["j"]]
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Catalogue matching (steps 6 and 11)
# ---------------------------------------------------------------------------------------------

def _columns(rows, names, optional=()):
    """Columns of a table given as a list of dicts, a mapping of sequences or a pyarrow Table.

    Returns a dict of numpy arrays; optional columns that are absent come back as None.
    """
    if hasattr(rows, "to_pydict"):
        rows = rows.to_pydict()
    if not isinstance(rows, Mapping) and len(rows) == 0:
        return {name: np.zeros(0) for name in names} | {name: None for name in optional}
    out = {}
    for name in list(names) + list(optional):
        if isinstance(rows, Mapping):
            values = rows.get(name)
        else:
            values = [r.get(name) for r in rows] if name in rows[0] else None
        if values is None:
            if name in optional:
                out[name] = None
                continue
            raise KeyError(f"missing column {name!r}")
        arr = np.asarray(values)
        if arr.dtype == object:
            try:
                arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
            except (TypeError, ValueError):
                pass
        out[name] = arr
    return out


def _n_rows(cols):
    return len(next(v for v in cols.values() if v is not None))


def _pairs(tce, ref, radius_arcsec):
    """Compared (TCE, reference) pairs: same TIC, or within the cone when both have positions."""
    t_tic = tce["tic"].astype(np.int64)
    r_tic = ref["tic"]
    pairs = []
    if r_tic is not None:
        r_tic = np.asarray(r_tic, dtype=float)
        order = np.argsort(t_tic, kind="stable")
        sorted_tic = t_tic[order]
        ok = np.isfinite(r_tic)
        r_int = np.where(ok, r_tic, -1).astype(np.int64)
        lo = np.searchsorted(sorted_tic, r_int, "left")
        hi = np.searchsorted(sorted_tic, r_int, "right")
        counts = np.where(ok, hi - lo, 0)
        j = np.repeat(np.arange(len(r_int)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        i = order[np.repeat(lo, counts) + np.arange(counts.sum()) - first]
        pairs.append((i, j))
    if (radius_arcsec and tce.get("ra") is not None and tce.get("dec") is not None
            and ref.get("ra") is not None and ref.get("dec") is not None):
        pairs.append(cone_match(tce["ra"], tce["dec"], ref["ra"], ref["dec"], radius_arcsec))
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i = np.concatenate([p[0] for p in pairs]).astype(np.int64)
    j = np.concatenate([p[1] for p in pairs]).astype(np.int64)
    key = np.unique(np.column_stack([i, j]), axis=0) if i.size else np.zeros((0, 2), np.int64)
    return key[:, 0], key[:, 1]


def _match(tces, refs, ref_period, ref_epoch, t_start, t_end, radius_arcsec):
    """Shared engine of steps 6 and 11.

    As in the original, each reference is matched to its best TCE (highest stat, ties to the
    lowest planet number) among the TCEs on its TIC or within the cone.  Per TCE we then keep:

    * ``matched``: the TCE is the best match of at least one reference (the original writes a
      line for it);
    * the reference reported: among the references that chose this TCE, a federated one first,
      then the highest stat; if none chose it, its own best compared reference
      (``matched`` False);
    * ``federated``: any reference that chose this TCE is federated with it;
    * ``other_pn``: the TCE is not matched but a reference chose another TCE on its TIC.
    """
    tce = _columns(tces, ["tic", "planet_number", "period", "epoch", "duration"],
                   optional=["ra", "dec"])
    n = _n_rows(tce)
    i, j = _pairs(tce, refs, radius_arcsec)
    t_start = np.broadcast_to(np.asarray(t_start, dtype=float), (n,))
    t_end = np.broadcast_to(np.asarray(t_end, dtype=float), (n,))
    stat, cls, ratio, fed = federate(tce["period"][i], tce["epoch"][i], tce["duration"][i],
                                     ref_period[j], ref_epoch[j], t_start[i], t_end[i])
    pn = tce["planet_number"].astype(np.int64)

    # Each reference's best TCE.
    order = np.lexsort((pn[i], -stat, j))
    first = np.ones(order.size, bool)
    first[1:] = j[order][1:] != j[order][:-1]
    is_best = np.zeros(i.size, bool)
    is_best[order[first]] = True

    # Per TCE: the chosen pair (matched ones first, then federated, then stat).
    order = np.lexsort((j, -stat, ~fed, ~is_best, i))
    chosen = np.full(n, -1, np.int64)
    starts = np.ones(order.size, bool)
    starts[1:] = i[order][1:] != i[order][:-1]
    chosen[i[order[starts]]] = order[starts]

    matched = np.zeros(n, bool)
    matched[i[is_best]] = True
    any_fed = np.zeros(n, bool)
    any_fed[i[is_best & fed]] = True
    tic = tce["tic"].astype(np.int64)
    other_pn = ~matched & np.isin(tic, tic[matched])
    n_compared = np.bincount(i, minlength=n)
    return dict(tic=tic, pn=pn, chosen=chosen, ref_index=j, stat=stat, cls=cls, ratio=ratio,
                matched=matched, federated=any_fed, other_pn=other_pn, n_compared=n_compared)


def _records(m, prefix, ref_fields):
    """Per-TCE records from the output of ``_match``; ``ref_fields`` maps output names to
    (per-reference values, value when nothing was compared)."""
    out = []
    for k in range(len(m["tic"])):
        c = m["chosen"][k]
        rec = {"tic": int(m["tic"][k]), "planet_number": int(m["pn"][k])}
        has = c >= 0
        for field, (values, empty) in ref_fields.items():
            value = values[m["ref_index"][c]] if has else empty
            rec[field] = value.item() if isinstance(value, np.generic) else value
        rec[f"{prefix}_stat"] = float(m["stat"][c]) if has else -1.0
        rec[f"{prefix}_class"] = int(m["cls"][c]) if has else -1
        rec[f"{prefix}_period_ratio"] = float(m["ratio"][c]) if has else float("nan")
        rec[f"{prefix}_federated"] = bool(m["federated"][k])
        rec[f"{prefix}_matched"] = bool(m["matched"][k])
        rec[f"{prefix}_other_pn"] = bool(m["other_pn"][k])
        rec[f"{prefix}_n_compared"] = int(m["n_compared"][k])
        out.append(rec)
    return out


def match_known_planets(tces, known, t_start, t_end, radius_arcsec=CONE_RADIUS_ARCSEC):
    """Step 6 (``federate_knownPWtce``): match TCEs with known transiting planets.

    ``tces`` rows: tic, planet_number, ra, dec, period, epoch (BTJD), duration (hours), with the
    runbook's ephemeris priority already applied.  ``known`` rows: name, tic (may be missing or
    NaN: catalogue planets are found by the cone), ra, dec, period, epoch_btjd, duration_h
    (unused: the reference window is fixed).  ``t_start``/``t_end``: data span in BTJD, scalar
    or one per TCE.  Planets with a non-finite period or epoch are dropped, as in the original.

    Returns one record per TCE, in input order: ``tic, planet_number, known_name, known_stat,
    known_class, known_period_ratio, known_federated, known_matched, known_other_pn,
    known_n_compared`` (class -1 and name '' when no planet was compared).  In the original
    the KNOWN flag 2 goes to the TCE that is a planet's best match whatever its stat (its own
    docs say archive ephemerides are too far from TESS ones for strict federation), so
    ``known_matched`` is the field that drives the flag; ``known_federated`` is also given.
    """
    ref = _columns(known, ["name", "period", "epoch_btjd"], optional=["tic", "ra", "dec"])
    keep = np.isfinite(ref["period"].astype(float)) & np.isfinite(ref["epoch_btjd"].astype(float))
    ref = {k: (None if v is None else v[keep]) for k, v in ref.items()}
    m = _match(tces, ref, ref["period"].astype(float), ref["epoch_btjd"].astype(float),
               t_start, t_end, radius_arcsec)
    names = np.asarray([str(x) for x in ref["name"]], dtype=object)
    return _records(m, "known", {"known_name": (names, "")})


def match_tois(tces, tois, t_start, t_end, radius_arcsec=CONE_RADIUS_ARCSEC):
    """Step 11 (``federate_toiWtce``): match TCEs with TOIs.

    ``tois`` rows: tic, toi, disposition, period, epoch_btjd, and optionally ra, dec (then TOIs
    within ``radius_arcsec`` of a TCE are compared too, as the original's wide search does;
    without positions only TOIs on the same TIC are compared).  A NaN period (single-transit
    TOI) becomes 1000 d, as in the original.

    Returns one record per TCE: ``tic, planet_number, toi, toi_disposition, toi_stat,
    toi_class, toi_period_ratio, toi_federated, toi_matched, toi_other_pn, toi_n_compared``.
    For the KNOWN flag: matched and federated -> 1, matched not federated -> -1, not matched
    but a TOI matched another PN on this TIC -> 3 (see ``known_flag``).
    """
    ref = _columns(tois, ["tic", "toi", "period", "epoch_btjd"],
                   optional=["disposition", "ra", "dec"])
    period = ref["period"].astype(float)
    period = np.where(np.isfinite(period), period, 1000.0)
    m = _match(tces, ref, period, ref["epoch_btjd"].astype(float), t_start, t_end, radius_arcsec)
    toi = ref["toi"].astype(float)
    disp = ref["disposition"]
    disp = (np.asarray(["" if d is None else str(d) for d in disp], dtype=object)
            if disp is not None else np.full(len(toi), "", dtype=object))
    return _records(m, "toi", {"toi": (toi, float("nan")), "toi_disposition": (disp, "")})


def known_flag(toi_matched, toi_federated, toi_other_pn, known_matched, known_other_pn):
    """The KNOWN column of ``rank_tces`` (step 19), vectorised.

    1 TOI federated; -1 TOI matched not federated; 3 a TOI matched another PN on this TIC;
    then, overriding those as the original does, 2 the TCE is a known planet's match and 4 a
    known planet matched another PN on this TIC; 0 otherwise.
    """
    toi_matched, toi_federated, toi_other_pn, known_matched, known_other_pn = (
        np.asarray(a, dtype=bool) for a in
        (toi_matched, toi_federated, toi_other_pn, known_matched, known_other_pn))
    flag = np.zeros(toi_matched.shape, dtype=np.int64)
    flag[toi_other_pn & ~toi_matched] = 3
    flag[toi_matched] = np.where(toi_federated[toi_matched], 1, -1)
    flag[known_other_pn & ~known_matched] = 4
    flag[known_matched] = 2
    return flag
