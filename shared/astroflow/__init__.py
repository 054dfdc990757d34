"""astroflow: declared observatory pipelines that run on one machine or on Argo Workflows."""

__version__ = "0.1.0"
