"""vison: Euclid VIS ground calibration (CCD273 detectors read by ELVIS) on astroflow.

The data model (:mod:`steps.vison.elvis`: ELVIS FITS, EXP_LOG, HK and HK limits), the simulator
(:mod:`steps.vison.simulate`, :mod:`steps.vison.simulate_detector`,
:mod:`steps.vison.simulate_replay`), and the pipeline (:mod:`steps.vison.pipeline`): aim mode
finds each test of the session in the EXP_LOG (:mod:`steps.vison.inventory`), checks the HK
(:mod:`steps.vison.hk`) and runs each test's Task (:mod:`steps.vison.tasks`); the BIAS0X Task's
sub-tasks are :mod:`steps.vison.bias_check`, :mod:`steps.vison.bias_prep`,
:mod:`steps.vison.bias_basic`, :mod:`steps.vison.bias_meta` and its compliance
:mod:`steps.vison.bias_flags` (vison's flags: :mod:`steps.vison.flags`).
"""
