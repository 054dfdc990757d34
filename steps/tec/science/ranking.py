"""RANK, flags and Tiers of the TEC ranking, runbook step 19 (original: ``rank_tces.py``).

RANK = 1 + mean of seven terms, each ``log10`` of a linear ramp clipped to [0.1, 1]
(1 is best, so a perfect TCE has RANK 1 and the worst 0):

==================  ============================  =================
term                quantity                      ramp 1 -> 0.1
==================  ============================  =================
planet radius       Rp (Earth radii)              2 -> 6
MES                 MES                           12 -> 9
brightness          Tmag                          9 -> 12
duration            abs(1 - T / T_exp)            0.1 -> 1.5
insolation          S (Earth units)               1.5 -> 4
SNR / MES           DV SNR / MES                  0.9 -> 1.1
depth agreement     abs(DV depth - trp depth)/DV  0.1 -> 0.3
==================  ============================  =================

T_exp = (24 P / 4) R* / a is the duration of a central transit on a circular orbit, with a from
Kepler's law and M* = 10^logg R*^2 / 10^4.437 (solar units).

Flags (named as in the Tier 2 file; "counted" flags decide the SWEET waiver):

* ``CenOOT``, ``CenTIC``: DV centroid offset / error > 3 (or a negative error): not counted;
* ``UniqAlt``, ``UniqDV``: no unique primary in model-shift (TEC detrending, DV detrending);
* ``HasSecAlt``, ``HasSecDV``: a significant secondary not overridden (the Tier 3 ``hasSec``);
  ``HasSecAltPlanet?``, ``HasSecDVPlanet?`` when overridden (not counted);
* ``OEAlt``, ``OEDV``: model-shift odd/even sigma > 2.8 (4.0 when the DV SNR > 30);
* ``Sweet``: SWEET ratio < 0.8;
* ``OthTCEMtch``: self-match (one federated match closer than 10^3.3 arcsec, or several);
* ``PDCsummary``: min PDC_NOI over the sectors (from sector 4 on) < 0.8;
* ``RpBig``: Rp > 20 Earth radii (25 for FTL data);
* ``MoDump``: more than 90 % of the transits near a momentum dump;
* ``NoModshiftAlt``, ``NoModshiftDV``: the model-shift test gave no result (not counted).

Tier 1: no flag at all.  Tier 2: not Tier 1, no ``HasSec`` and no SWEET fail (a SWEET fail that
is the only counted flag is waived).  Tier 3: the rest.

Differences from the original, on purpose: its flag array reused slot 12 for both
``HasSecAltPlanet?`` and ``MoDump`` (the bit string here has one slot per flag, in the order
above); a TCE whose model-shift test failed even at half the period had no model-shift flags at
all, and could reach Tier 1: here it gets a ``NoModshift*`` flag, which keeps it out of Tier 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# (low, high) of each ramp: the value giving 1 (best) and the value giving 0.1
RP_RAMP = (2.0, 6.0)
MES_RAMP = (12.0, 9.0)
TMAG_RAMP = (9.0, 12.0)
DURATION_RAMP = (0.1, 1.5)
INSOLATION_RAMP = (1.5, 4.0)
SNR_MES_RAMP = (0.9, 1.1)
DEPTH_RAMP = (0.1, 0.3)

CENTROID_SIGMA = 3.0
ODD_EVEN_SIGMA = 2.8
ODD_EVEN_SIGMA_HIGH_SNR = 4.0
HIGH_SNR = 30.0
SWEET_RATIO = 0.8
PDC_NOI_MIN = 0.8
PDC_FIRST_SECTOR = 4
RP_BIG_RE = 20.0
RP_BIG_RE_FTL = 25.0
MODUMP_FRACTION = 0.9

FLAG_ORDER = ("CenOOT", "CenTIC", "UniqAlt", "UniqDV", "HasSecAlt", "HasSecDV", "OEAlt", "OEDV",
              "Sweet", "OthTCEMtch", "PDCsummary", "RpBig", "MoDump", "HasSecAltPlanet?",
              "HasSecDVPlanet?", "NoModshiftAlt", "NoModshiftDV")
NOT_COUNTED = {"CenOOT", "CenTIC", "HasSecAltPlanet?", "HasSecDVPlanet?", "NoModshiftAlt", "NoModshiftDV"}


def ramp(x, best, worst):
    """log10 of a linear ramp from 1 at ``best`` to 0.1 at ``worst``, clipped to [0.1, 1].

    NaN inputs score the worst (0.1), as a missing value cannot vouch for the TCE.
    """
    x = np.asarray(x, dtype=float)
    r = 1.0 - (x - best) / (worst - best) * 0.9
    r = np.where(np.isfinite(r), np.clip(r, 0.1, 1.0), 0.1)
    return np.log10(r)


def expected_duration_h(rstar, logg, period, ecc=0.0):
    """Central-transit duration (hours) for R* (Rsun), logg (cgs), P (days), circular by default."""
    rstar, logg, period = (np.asarray(a, dtype=float) for a in (rstar, logg, period))
    ecc = np.minimum(np.asarray(ecc, dtype=float), 0.99)
    mstar = 10.0 ** logg * rstar ** 2 / 10.0 ** 4.437
    a_au = np.cbrt(mstar) * (period / 365.25) ** (2.0 / 3.0)
    r_sun_cm, au_cm = 6.9598e10, 1.49598e13
    return period * 24.0 / 4.0 * (rstar * r_sun_cm) / (a_au * au_cm) * np.sqrt(1.0 - ecc ** 2)


def rank_score(rp, mes, tmag, duration_h, rstar, logg, period, insolation, snr, dv_depth, trp_depth):
    """RANK of each TCE (arrays in, array out): 1 + mean of the seven log ramps."""
    mes = np.asarray(mes, dtype=float)
    dv_depth = np.asarray(dv_depth, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dur_ratio = np.abs(1.0 - np.asarray(duration_h, float) / expected_duration_h(rstar, logg, period))
        snr_mes = np.asarray(snr, dtype=float) / mes
        depth_diff = np.abs((dv_depth - np.asarray(trp_depth, dtype=float)) / dv_depth)
    terms = (ramp(rp, *RP_RAMP), ramp(mes, *MES_RAMP), ramp(tmag, *TMAG_RAMP),
             ramp(dur_ratio, *DURATION_RAMP), ramp(insolation, *INSOLATION_RAMP),
             ramp(snr_mes, *SNR_MES_RAMP), ramp(depth_diff, *DEPTH_RAMP))
    return 1.0 + np.mean(terms, axis=0)


def centroid_flag(offset, offset_err, limit: float = CENTROID_SIGMA) -> bool:
    """DV centroid offset more than ``limit`` sigma (or a negative error / offset, DV's "not
    computed" code, which the original also flags).  NaN (not reported) is no flag."""
    if not (np.isfinite(offset) and np.isfinite(offset_err)):
        return False
    if offset_err < 0 or offset < 0:
        return True
    return offset_err == 0 or offset / offset_err > limit


@dataclass
class TceEvidence:
    """Everything the flags of one TCE look at (None: that test did not run for this TCE)."""

    rp: float
    snr: float
    cent_oot_offset: float = float("nan")
    cent_oot_offset_e: float = float("nan")
    cent_tic_offset: float = float("nan")
    cent_tic_offset_e: float = float("nan")
    modshift_alt: dict | None = None   # primary_good, has_secondary, override, sigma_oe
    modshift_dv: dict | None = None
    sweet_ratio: float | None = None
    self_match: bool = False
    min_pdc_noi: float | None = None
    modump_fraction: float | None = None
    ftl: bool = False


@dataclass
class TceFlags:
    flags: list[str] = field(default_factory=list)
    has_sec: bool = False
    sweet_fail: bool = False
    tier: int = 1

    @property
    def n_counted(self) -> int:
        return sum(f not in NOT_COUNTED for f in self.flags)

    def bits(self) -> str:
        """One character per flag of FLAG_ORDER (the Tier 2 file's flag string)."""
        return "".join("1" if f in self.flags else "0" for f in FLAG_ORDER)

    def text(self) -> str:
        return "".join(f + "_" for f in self.flags)


def _modshift_flags(ms: dict | None, tag: str, oe_limit: float, out: TceFlags) -> None:
    if ms is None:
        out.flags.append(f"NoModshift{tag}")
        return
    if not ms["primary_good"]:
        out.flags.append(f"Uniq{tag}")
    if ms["secondary_good"]:
        if ms["override"]:
            out.flags.append(f"HasSec{tag}Planet?")
        else:
            out.flags.append(f"HasSec{tag}")
            out.has_sec = True
    if ms["sigma_oe"] > oe_limit:
        out.flags.append(f"OE{tag}")


def tce_flags(e: TceEvidence) -> TceFlags:
    """Every flag of one TCE and its Tier (rules in the module docstring)."""
    out = TceFlags()
    if centroid_flag(e.cent_oot_offset, e.cent_oot_offset_e):
        out.flags.append("CenOOT")
    if centroid_flag(e.cent_tic_offset, e.cent_tic_offset_e):
        out.flags.append("CenTIC")
    oe_limit = ODD_EVEN_SIGMA_HIGH_SNR if e.snr > HIGH_SNR else ODD_EVEN_SIGMA
    _modshift_flags(e.modshift_alt, "Alt", oe_limit, out)
    _modshift_flags(e.modshift_dv, "DV", oe_limit, out)
    if e.sweet_ratio is not None and e.sweet_ratio < SWEET_RATIO:
        out.flags.append("Sweet")
        out.sweet_fail = True
    if e.self_match:
        out.flags.append("OthTCEMtch")
    if e.min_pdc_noi is not None and e.min_pdc_noi < PDC_NOI_MIN:
        out.flags.append("PDCsummary")
    if e.rp > (RP_BIG_RE_FTL if e.ftl else RP_BIG_RE):
        out.flags.append("RpBig")
    if e.modump_fraction is not None and e.modump_fraction > MODUMP_FRACTION:
        out.flags.append("MoDump")
    out.flags.sort(key=FLAG_ORDER.index)
    if out.sweet_fail and out.n_counted == 1:
        out.sweet_fail = False   # a SWEET fail alone is waived
    out.tier = tier_of(bool(out.flags), out.has_sec, out.sweet_fail)
    return out


def tier_of(any_flag: bool, has_sec: bool, sweet_fail: bool) -> int:
    if not any_flag:
        return 1
    if not has_sec and not sweet_fail:
        return 2
    return 3


def min_pdc_noise(pdc_noi_by_sector: dict[int, float], first_sector: int) -> float | None:
    """min PDC_NOI over sectors >= max(4, first sector) starting from 1.0 (None: no sector)."""
    start = max(PDC_FIRST_SECTOR, first_sector)
    vals = [v for s, v in pdc_noi_by_sector.items() if s >= start and np.isfinite(v)]
    return min([1.0] + vals) if vals else None
