"""The SEDM runbook's commands (``astroflow sedm TOOL``), kept light so that they start fast.

``redex`` re-extracts one object by hand (:mod:`steps.sedm.redex`); ``report`` writes the night's
report and, with ``--final``, sends the end-of-night e-mail (:mod:`steps.sedm.final_report`);
``night`` reruns a past night (:mod:`steps.sedm.operations`).  ``astroflow sedm watch`` is the
core's watcher, with the pipeline's defaults (tonight's UT date, a 2 h idle stop).
"""

TOOLS = {"night": "steps.sedm.operations:night",
         "redex": "steps.sedm.redex:main",
         "report": "steps.sedm.final_report:main"}
