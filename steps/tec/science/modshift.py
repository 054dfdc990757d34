"""Model-shift (modshift) test: the Python face of the native kernel.

Replaces the ``modshift`` program (J. Coughlin's Kepler DR25 Model-Shift) that
TESS-ExoClass step 13, ``modshift_test.py``, runs in a subprocess per TCE after
the trapezoid fit: the same 17 numbers, computed in-process by
``astroflow._modshift`` (native/modshift/modshift.cpp) with an FFT shift scan,
no temporary files and no shared state, so any number of tests can run at
once (two passes on one target no longer collide).

The extension is loaded on the first call (only the modshift step images carry
it, while every TEC image imports the pipeline declaration); numpy is imported
on the first call of ``run_modshift`` (the command line reads files natively
and never needs it).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, fields

def _native():
    """The compiled kernel ``astroflow._modshift``."""
    return importlib.import_module("astroflow._modshift")


#: The outputs of the original program, in the order it printed them.
OUTPUT_KEYS: tuple[str, ...] = (
    "sigma_pri",
    "sigma_sec",
    "sigma_ter",
    "sigma_pos",
    "sigma_oe",
    "dmm",
    "shape",
    "tat",
    "fa1",
    "fa2",
    "fred",
    "phase_pri",
    "phase_sec",
    "phase_ter",
    "phase_pos",
    "sec_depth",
    "sec_depth_err",
)


@dataclass(frozen=True)
class ModshiftResult:
    """Outputs of one model-shift test (TEC step 13).

    Significances are in units of the depth noise ``sec_depth_err``; phases are
    in units of the period, in (-0.25, 0.75] (NaN when no such event could be
    placed); depths are relative flux, positive for a dimming.
    """

    sigma_pri: float  #: significance of the primary event (best match near phase 0)
    sigma_sec: float  #: most significant other dimming (secondary)
    sigma_ter: float  #: next dimming away from primary and secondary
    sigma_pos: float  #: largest brightening away from primary and secondary
    sigma_oe: float  #: odd/even depth difference significance
    dmm: float  #: mean / median of the individual transit depths
    shape: float  #: max / (max - min) of the convolved depth
    tat: float  #: transit asymmetry: left/right half depth difference significance
    fa1: float  #: false-alarm threshold, sqrt(2) erfcinv(T / (20000 P))
    fa2: float  #: false-alarm threshold for differences, sqrt(2) erfcinv(T / P)
    fred: float  #: red-noise to white-noise ratio
    phase_pri: float
    phase_sec: float
    phase_ter: float
    phase_pos: float
    sec_depth: float  #: depth of the secondary (relative flux)
    sec_depth_err: float  #: depth noise (relative flux)
    valid: bool = True  #: False when the model has no transit the data can test (retry at P/2)
    depth: float = 0.0  #: fitted model depth at phase 0, model - baseline (negative for a dimming)
    duration: float = 0.0  #: width of the model's transit window (days)
    n_in_transit: int = 0  #: points inside the transit window
    n_used: int = 0  #: points kept after outlier rejection

    def as_dict(self, internals: bool = False) -> dict[str, float]:
        """The 17 outputs of the original program by name (plus the internals if asked)."""
        if internals:
            return asdict(self)
        return {k: getattr(self, k) for k in OUTPUT_KEYS}


_FIELDS = tuple(f.name for f in fields(ModshiftResult))


def result_from_native(out: dict) -> ModshiftResult:
    """ModshiftResult from the dict that ``astroflow._modshift.run``/``run_file`` return."""
    return ModshiftResult(**{k: out[k] for k in _FIELDS})


def run_modshift(
    time, flux, model, period: float, epoch: float, *, outlier_window: float = 0.02043981, parallel: bool = False
) -> ModshiftResult:
    """Run the model-shift test on one light curve and its transit model.

    ``time`` (days), ``flux`` and ``model`` (relative flux about 0, the model's
    out-of-transit value being its most common value) are 1-d arrays of equal
    length; ``period`` and ``epoch`` are the ephemeris the model was fitted at.
    Raises ValueError on mismatched lengths, non-finite values, fewer than 10
    points or a non-positive period. A model without a testable transit gives
    ``valid=False`` (TEC then retries at half the period). ``parallel`` runs
    the four sub-tests (halves, odd/even) in threads: same numbers, for a lone
    caller rather than a worker pool that already fills the cores.
    """
    import numpy as np

    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (time, flux, model)]
    for name, a in zip(("time", "flux", "model"), arrays):
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-d array, got shape {a.shape}")
    out = _native().run(*arrays, float(period), float(epoch), outlier_window=float(outlier_window), parallel=parallel)
    return result_from_native(out)


def run_modshift_file(path: str, period: float, epoch: float, *, parallel: bool = True) -> tuple[ModshiftResult, int]:
    """Run the test on the original program's input file ('time flux model' rows).

    Returns the result and the number of rows read; raises ValueError naming
    the file (and line) when it cannot be read or parsed. Sub-tests run in
    threads unless ``parallel=False`` (same numbers).
    """
    out = _native().run_file(str(path), float(period), float(epoch), parallel=parallel)
    return result_from_native(out), int(out["n_points"])
