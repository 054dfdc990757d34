"""ELiXer (HETDEX runbook step 18) as an astroflow pipeline: classify line detections, build reports."""
