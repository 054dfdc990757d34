"""vison: Euclid VIS ground calibration (CCD273 detectors read by ELVIS) on astroflow.

This first slice holds the data model (:mod:`steps.vison.elvis`: ELVIS FITS, EXP_LOG, HK and HK
limits) and the simulator (:mod:`steps.vison.simulate`, :mod:`steps.vison.simulate_detector`,
:mod:`steps.vison.simulate_replay`), the cook-book's parts "data acquisition" (what ELVIS writes
into a day folder) and the inputs of its first-wave Tasks.
"""
