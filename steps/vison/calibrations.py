"""vison products in the calibration library: their types and what must match.

A master bias is found by the CCD's serial (the detector, whatever slot it sits in), its slot and
the readout mode it was taken in (BIAS01 forward, BIAS02 reverse): the nearest good one in time;
DARK01 looks its master bias up so and registers its master dark the same way.  Later Tasks
(FLAT01...) will find theirs there too; the cosmetics masks of the issue
(``EUC_MASK_{BLOCK}_CCD{n}_SN_{serial}.fits``) will be a type matched by block, CCD and serial.
"""

from __future__ import annotations

from astroflow.calib import CalibType

CALIBRATIONS = {
    "MASTER_BIAS": CalibType("MASTER_BIAS", match=("ccd", "serial", "rdmode")),
    "MASTER_DARK": CalibType("MASTER_DARK", match=("ccd", "serial", "rdmode")),
    # FLAT01's master flats (one per fluence level: attribute ``level``) and COSMETICS00's masks
    "MASTER_FLAT": CalibType("MASTER_FLAT", match=("ccd", "serial", "wave_nm")),
    "COSMETICS_MASK": CalibType("COSMETICS_MASK", match=("block", "ccd", "serial")),
}
