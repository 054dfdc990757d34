"""The vison runbook's commands (``astroflow vison TOOL``), kept light so they start fast.

``astroflow vison run`` is ``astroflow run vison``; ``astroflow vison config-check FILE`` checks a
configuration against the data before any work (:func:`steps.vison.cli.config_check`);
``mkscripts`` writes the acquisition scripts and ``mksession`` the session folders
(:mod:`steps.vison.mkscripts`, :mod:`steps.vison.mksession`); ``wait`` is wait mode on the
core watcher (:mod:`steps.vison.wait`).
"""

TOOLS = {"config-check": "steps.vison.cli:config_check",
         "mkscripts": "steps.vison.mkscripts:main",
         "mksession": "steps.vison.mksession:main",
         "wait": "steps.vison.wait:main"}
