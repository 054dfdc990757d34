"""Model-shift verdicts: is the primary unique, is there a secondary, may it be overridden.

TEC runbook steps 12 and 17 (original: the end of ``modshift_test.py``), applied to the 17
numbers of the model-shift test (``steps.tec.science.modshift.ModshiftResult``).

Primary (``primary_good``), bad when any of (reason bits OR-ed):
  1  sigma_pri / max(Fred, 1) < FA1
  2  sigma_pri - sigma_ter < FA2
  4  sigma_pri - sigma_pos < FA2
  8  Fred == 0 (a degenerate light curve; Fred is then taken as 1 for the other tests)
Secondary (``secondary_good``, a significant secondary eclipse): the same three tests on
sigma_sec (bits 1, 2, 4).
Overrides of a significant secondary (``override``, ``override_reason``):
  1  half period: |sigma_pri - sigma_sec| < FA2 and the secondary sits half a period from the
     primary within 0.25 T/P -- the TCE is at twice the true period;
  2  albedo: with Rp/R*, a/R* and the secondary depth drawn from their errors (1000 normal
     draws, seeded), the geometric albedo secdepth / (Rp/a)^2 has its 5th percentile below 1 --
     the secondary can be a planet's occultation.

Bugs of the original fixed here: the secondary's reason 4 was stored in a misspelt variable
(``seconaryBdRsn``) and lost; a Fred == 0 reason 8 was overwritten by later reasons instead of
combined.  The reason codes are bit sets here.

Two departures from the original's code, both from its own definitions:

* Fred is the ratio of the scatter of the convolved depth (off the events) to what white noise of
  the measured per-point rms gives: red noise can only raise it above 1.  Measured below 1 it is
  the scatter of the estimate (the off-event phases hold few independent transit-widths when
  the duty cycle T/P is high or the period short, and the sample standard deviation of a few
  correlated values runs low) or a detrending that followed the noise off the transit; dividing
  by it then makes white-noise dips "significant".  Here sigma / max(Fred, 1) is compared with
  FA1: the noise is never taken below the white noise.  (On planets with no secondary at duty
  cycles 0.05-0.15, white noise: 3 % per detrending flagged ``HasSec`` with the original's test,
  none with this; measured with the TEC simulator's physics.)
* The half-period override asks the two events to be equally significant, |pri - sec| < FA2,
  as its meaning ("the period is twice the true one: both events are the same transit") needs;
  the original's one-sided pri - sec < FA2 also overrode binaries whose secondary is *more*
  significant than the TCE's primary (a TCE on the shallower eclipse), sending them to Tier 2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

N_ALBEDO_DRAWS = 1000
HALF_PERIOD_PHASE_TOL = 0.25   # in units of T/P
FRED_FLOOR = 1.0               # the noise of the convolved depth is never below the white noise


@dataclass(frozen=True)
class ModshiftVerdict:
    primary_good: bool
    primary_reason: int
    secondary_good: bool       # True: a significant secondary eclipse
    secondary_reason: int
    override: bool             # the secondary is explained (half period or planet albedo)
    override_reason: int       # 0 none, 1 half period, 2 albedo
    albedo_p5: float           # percentiles of the albedo draws (NaN when not computed)
    albedo_p50: float

    @property
    def has_secondary(self) -> bool:
        """A significant secondary that no override explains (the ranking's HasSec flag)."""
        return self.secondary_good and not self.override

    def as_dict(self) -> dict:
        return asdict(self)


def significance_tests(sigma, sigma_ter, sigma_pos, fred, fa1, fa2) -> int:
    """Reason bits of the three tests (0 when the event is significant and unique); ``fred`` as
    used (``modshift_verdict`` passes max(Fred, 1))."""
    reason = 0
    if sigma / fred < fa1:
        reason |= 1
    if sigma - sigma_ter < fa2:
        reason |= 2
    if sigma - sigma_pos < fa2:
        reason |= 4
    return reason


def albedo_percentiles(sec_depth, sec_depth_err, rp_rstar, rp_rstar_err, a_rstar, rng,
                       n_draws: int = N_ALBEDO_DRAWS) -> tuple[float, float]:
    """5th and 50th percentiles of secdepth / (Rp/a)^2 over normal draws of depth and Rp/R*.

    ``sec_depth`` is relative flux (positive for a dimming).  NaN when an input is not a finite
    number or a/R* is not positive; a negative or NaN error is taken as 0 (no spread).
    """
    vals = np.array([sec_depth, rp_rstar, a_rstar], dtype=float)
    if not np.isfinite(vals).all() or a_rstar <= 0:
        return float("nan"), float("nan")
    e_dep = float(sec_depth_err) if np.isfinite(sec_depth_err) and sec_depth_err > 0 else 0.0
    e_rp = float(rp_rstar_err) if np.isfinite(rp_rstar_err) and rp_rstar_err > 0 else 0.0
    rp = rng.normal(rp_rstar, e_rp, size=n_draws)
    dep = rng.normal(sec_depth, e_dep, size=n_draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        albedo = dep / (rp / a_rstar) ** 2
    p5, p50 = np.percentile(albedo, [5.0, 50.0])
    return float(p5), float(p50)


def modshift_verdict(ms, duration_days: float, period: float, rp_rstar: float, rp_rstar_err: float,
                     a_rstar: float, rng) -> ModshiftVerdict:
    """Verdicts from one model-shift result ``ms`` (a ModshiftResult or a mapping of its fields).

    ``duration_days`` and ``period`` are the trapezoid fit's (T and P of the half-period test);
    ``rp_rstar`` (+ error) and ``a_rstar`` come from the DV all-transit fit; ``rng`` is a numpy
    Generator for the albedo draws.
    """
    g = ms.get if isinstance(ms, dict) else (lambda k: getattr(ms, k))
    pri, sec, ter, pos = (float(g(k)) for k in ("sigma_pri", "sigma_sec", "sigma_ter", "sigma_pos"))
    fa1, fa2, fred = float(g("fa1")), float(g("fa2")), float(g("fred"))

    primary_reason = 0
    if fred == 0.0 or not np.isfinite(fred):
        fred = 1.0
        primary_reason |= 8
    fred = max(fred, FRED_FLOOR)
    primary_reason |= significance_tests(pri, ter, pos, fred, fa1, fa2)
    secondary_reason = significance_tests(sec, ter, pos, fred, fa1, fa2)
    secondary_good = secondary_reason == 0

    override, override_reason = False, 0
    p5 = p50 = float("nan")
    if secondary_good:
        if abs(pri - sec) < fa2:
            dphase = abs((float(g("phase_pri")) + 0.5) - float(g("phase_sec")))
            if dphase < HALF_PERIOD_PHASE_TOL * duration_days / period:
                override, override_reason = True, 1
        if not override:
            p5, p50 = albedo_percentiles(float(g("sec_depth")), float(g("sec_depth_err")),
                                         rp_rstar, rp_rstar_err, a_rstar, rng)
            if p5 < 1.0:
                override, override_reason = True, 2
    return ModshiftVerdict(primary_reason == 0, primary_reason, secondary_good, secondary_reason,
                           override, override_reason, p5, p50)
