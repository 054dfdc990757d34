"""The NRES runbook's commands (``astroflow nres TOOL``), kept light so they start fast.

``astroflow nres watch`` is the core's ``astroflow watch nres``; ``astroflow nres run`` is
``astroflow run nres``.
"""

TOOLS = {
    name: f"steps.nres.cli:{name.replace('-', '_')}"
    for name in ("post", "stack", "nightly", "trace0", "trace-refine", "make-zero", "new-site", "reprocess", "db",
                 "targets")
}
