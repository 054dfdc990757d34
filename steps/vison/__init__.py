"""vison: Euclid VIS ground calibration (CCD273 detectors read by ELVIS) on astroflow.

The data model (:mod:`steps.vison.elvis`: ELVIS FITS, EXP_LOG, HK and HK limits), the simulator
(:mod:`steps.vison.simulate`, :mod:`steps.vison.simulate_detector`,
:mod:`steps.vison.simulate_replay`), and the pipeline (:mod:`steps.vison.pipeline`): aim mode
finds each test of the session in the EXP_LOG (:mod:`steps.vison.inventory`), checks the HK
(:mod:`steps.vison.hk`) and runs each test's Task (:mod:`steps.vison.tasks`): BIAS0X
(``bias_check``, ``bias_prep``, ``bias_basic``, ``bias_meta``, ``bias_flags``), PTC0X (``ptc_*``)
and DARK01 (``dark_*``).  What every Task's sub-tasks share is one mechanism parameterised by
the Task: items and the check loop (:mod:`steps.vison.subtasks`), prep and prepared frames
(:mod:`steps.vison.prepared`), master products (:mod:`steps.vison.masters`), compliance
(:mod:`steps.vison.compliance`; vison's flags: :mod:`steps.vison.flags`).
"""
