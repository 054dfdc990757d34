"""Where each declared pipeline lives (import path ``module:attribute``)."""

from __future__ import annotations

import importlib
import os

from astroflow.errors import AstroflowError

PIPELINES = {
    "tec": "steps.tec.pipeline:TEC",
    "elixer": "steps.elixer.pipeline:ELIXER",
    "hetdex": "steps.hetdex.pipeline:HETDEX",
    "nres": "steps.nres.pipeline:NRES",
    "sedm": "steps.sedm.pipeline:SEDM",
    "vison": "steps.vison.pipeline:VISON",
}


def registered() -> dict[str, str]:
    """The built-in pipelines plus any named in ``ASTROFLOW_PIPELINES`` (``name=module:attr,...``)."""
    extra = os.environ.get("ASTROFLOW_PIPELINES", "")
    return {**PIPELINES, **dict(e.split("=", 1) for e in extra.split(",") if "=" in e)}


def get_pipeline(name: str):
    """Import and return the declared :class:`~astroflow.pipeline.Pipeline` called ``name``."""
    try:
        target = registered()[name]
    except KeyError:
        raise AstroflowError(f"unknown pipeline {name!r}; known: {', '.join(registered())}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
