"""ELiXer's own commands (``astroflow elixer TOOL``, runbook 18.3-18.6), kept light so they start fast.

``astroflow elixer run`` is ``astroflow run elixer`` (the core's run with ELiXer's settings).
"""

TOOLS = {
    name: f"steps.elixer.cli:{name.replace('-', '_')}"
    for name in ("merge", "merge-unique", "recover", "prep-recover", "report-db", "count")
}
