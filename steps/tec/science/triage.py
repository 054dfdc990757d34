"""Flux triage: the first cut on the ses_mes statistics.

TEC runbook step 12 (original: ``flux_triage.py``).  Rules, in order; the first failure wins:

1. ``valid_alt_det == 0`` -> ``AltDetFail`` (the alternative detrending was not possible);
2. ``valid_ses == 0`` -> ``SesStatFail``;
3. ``new_mes < 4.5`` -> ``newMesBelowThresh``;
4. ``(mes - new_mes)/mes > (log10(mes) - 1) * 0.26 + 0.53`` -> ``newMesShrink`` (``mes`` is the
   DV MES of the TCE);
5. (``mes <= 13`` and ``mn_ses2mn_mes > 0.97``, or ``mes > 13`` and ``> 0.85``) and
   ``mn_ses2mn_mes > 1.1 * mn_ses2mn_mes_r`` -> ``ses2MesFail`` (one event dominates the MES
   more than it does for the injected reference signal);
6. single-event SES ``new_mes / sqrt(new_ntran) > 2.8`` and ``chases_sumry < 0.3`` ->
   ``ChasesFail``, unless ``single SES > 20``, ``new_ntran >= 4`` and ``chases_sumry > 0.1``
   (strong signals whose transit shoulders spoil CHASES);
7. ``planet_number >= 2`` and the period matches (Coughlin significance > 2.9) the period of
   a lower planet number on the same TIC -> ``SecondaryOfPN_xx`` with xx the lowest such
   planet number.  Every TCE of the table takes part as a possible primary, whatever its own
   triage result, as in the original.

``period`` is the TCE's period after the runbook's ephemeris priority (DV fit period if
``at_valid``, else the TPS period).

Missing inputs: the original opens each TCE's ses_mes file and stops when one is missing.
Here a TCE without ses_mes results (``valid_alt_det`` NaN) fails with ``NoSesMes`` and the
others go on.  A non-finite ``new_mes`` on a TCE with valid statistics fails rule 3 (the
original's comparison with NaN would let it pass every rule); other NaN statistics make their
own rule not fire, as in the original.
"""

from __future__ import annotations

import numpy as np

from .federation import period_significance

NEW_MES_MIN = 4.5
SES2MES_MES_SPLIT = 13.0
SES2MES_LOW_MES = 0.97
SES2MES_HIGH_MES = 0.85
SES2MES_REF_FACTOR = 1.1
CHASES_SINGLE_SES = 2.8
CHASES_MIN = 0.3
CHASES_OVERRIDE_SES = 20.0
CHASES_OVERRIDE_NTRAN = 4
CHASES_OVERRIDE_MIN = 0.1
SECONDARY_SIGMA = 2.9


def new_mes_shrink_limit(mes):
    """Largest allowed fractional MES drop, ``(log10 MES - 1) * 0.26 + 0.53``."""
    return (np.log10(mes) - 1.0) * (0.76 - 0.5) + 0.53


def secondary_of(tic, planet_number, period, sigma=SECONDARY_SIGMA):
    """For each TCE, the lowest planet number on its TIC below its own whose period matches.

    Returns an int array, 0 where there is none (and for planet number 1).
    """
    tic = np.asarray(tic).astype(np.int64)
    pn = np.asarray(planet_number).astype(np.int64)
    period = np.asarray(period, dtype=float)
    out = np.zeros(tic.size, dtype=np.int64)
    order = np.lexsort((pn, tic))
    groups = np.split(order, np.flatnonzero(np.diff(tic[order])) + 1)
    for g in groups:
        if g.size < 2:
            continue
        for k in g[pn[g] >= 2]:
            lower = g[pn[g] < pn[k]]          # sorted by planet number
            hit = lower[period_significance(period[k], period[lower]) > sigma]
            if hit.size:
                out[k] = pn[hit[0]]
    return out


def flux_triage(tic, planet_number, period, mes, valid_alt_det, valid_ses, new_mes,
                new_ntran, mn_ses2mn_mes, mn_ses2mn_mes_r, chases_sumry):
    """Runbook step 12 over arrays of TCEs (one element per TCE, names as ses_mes writes them).

    Returns ``(passed, reason)``: a bool array and an object array of strings ('' when passed).
    """
    tic = np.asarray(tic)
    n = tic.size
    f = {name: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for name, v in dict(
        mes=mes, valid_alt_det=valid_alt_det, valid_ses=valid_ses, new_mes=new_mes,
        new_ntran=new_ntran, r=mn_ses2mn_mes, r_ref=mn_ses2mn_mes_r,
        chases=chases_sumry).items()}
    reason = np.full(n, "", dtype=object)
    open_ = np.ones(n, dtype=bool)

    def fail(mask, why):
        hit = open_ & mask
        reason[hit] = why
        open_[hit] = False

    with np.errstate(divide="ignore", invalid="ignore"):
        fail(~np.isfinite(f["valid_alt_det"]), "NoSesMes")
        fail(f["valid_alt_det"] == 0, "AltDetFail")
        fail(f["valid_ses"] == 0, "SesStatFail")
        fail(~(f["new_mes"] >= NEW_MES_MIN), "newMesBelowThresh")

        mes_ = f["mes"]
        fail((mes_ - f["new_mes"]) / mes_ > new_mes_shrink_limit(mes_), "newMesShrink")

        high = (((mes_ <= SES2MES_MES_SPLIT) & (f["r"] > SES2MES_LOW_MES))
                | ((mes_ > SES2MES_MES_SPLIT) & (f["r"] > SES2MES_HIGH_MES)))
        fail(high & (f["r"] > SES2MES_REF_FACTOR * f["r_ref"]), "ses2MesFail")

        single_ses = f["new_mes"] / np.sqrt(f["new_ntran"])
        chases_bad = (single_ses > CHASES_SINGLE_SES) & (f["chases"] < CHASES_MIN)
        override = ((single_ses > CHASES_OVERRIDE_SES) & (f["new_ntran"] >= CHASES_OVERRIDE_NTRAN)
                    & (f["chases"] > CHASES_OVERRIDE_MIN))
        fail(chases_bad & ~override, "ChasesFail")

    primary = secondary_of(tic, planet_number, period)
    for k in np.flatnonzero(open_ & (primary > 0)):
        reason[k] = f"SecondaryOfPN_{primary[k]:02d}"
        open_[k] = False
    return open_.copy(), reason
