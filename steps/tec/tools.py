"""The TEC runbook's own commands (``astroflow tec TOOL``), kept light so they start fast."""

TOOLS = {
    "modshift": "steps.tec.modshift_cli:main",  # the model-shift test on one 'time flux model' file
}
