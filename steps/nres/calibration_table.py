"""The run's masters in one table (``RUNDIR/calibrations/``): what ``ls reduced/*/`` told before.

One row per master made by the run (BIAS, DARK, FLAT, DOUBLE, TRIPLE, TRACE, PROFILE,
WAVELENGTH, ZERO): type, file name, DAY-OBS, mean observation time, frames stacked, and the
validity window the frames span.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import Step

SCHEMA = pa.schema([
    ("type", pa.string()), ("filename", pa.string()), ("day_obs", pa.string()), ("dateobs", pa.string()),
    ("n_frames", pa.int32()), ("good_after", pa.string()), ("good_until", pa.string()), ("path", pa.string()),
])
SOURCES = ("stack_bias", "stack_dark", "stack_flat", "stack_arc", "trace", "profile", "wavelength", "template")


def masters(ctx) -> list[dict]:
    out = []
    for src in SOURCES:
        for r in ctx.table(src).to_pylist():
            name = r.get("filename") or r["path"].rsplit("/", 1)[-1]
            kind = r.get("type") or {"trace": "TRACE", "profile": "PROFILE", "wavelength": "WAVELENGTH",
                                     "template": "ZERO"}[src]
            if any(o["path"] == r["path"] for o in out):
                continue  # the wavelength step has one row per fiber and one file
            out.append({"type": kind, "filename": name, "day_obs": r["day_obs"], "dateobs": r.get("dateobs"),
                        "n_frames": r.get("n_frames"), "good_after": r.get("good_after"),
                        "good_until": r.get("good_until"), "path": r["path"]})
    return out


calibrations = Step("calibrations", inputs=SOURCES, run=masters, schema=SCHEMA, doc=__doc__)
