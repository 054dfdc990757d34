"""The run's masters in one table (``RUNDIR/calibrations/``): what ``ls reduced/*/`` told before.

One row per master made by the run (BIAS, DARK, FLAT, DOUBLE, TRIPLE, TRACE, PROFILE,
WAVELENGTH, ZERO): type, file name, DAY-OBS, mean observation time, frames stacked, and the
validity window the frames span.  The site's calibrations in the library are also written out
in the IDL pipeline's formats, ``reduced/{site}/{instrument}/csv/standards.csv`` and
``zeros.csv`` (:func:`steps.nres.tables.from_library`), for the tools that read them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from astroflow.step import Step
from steps.nres.tables import from_library, read_targets, write_standards, write_zeros

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
    write_csv_files(ctx, {tuple(r["path"].split("/")[1:3]) for r in out})
    return out


def write_csv_files(ctx, sites: set[tuple[str, str]]) -> None:
    """standards.csv and zeros.csv of each (site, instrument), from every calibration in the
    library under its reduced directory (this run's and earlier runs')."""
    targets = read_targets(ctx.uses(ctx.settings.targets))[0] if ctx.settings.targets else {}
    everything = ctx.library().list()
    for site, instrument in sorted(sites):
        site_dir = (ctx.run_dir / "reduced" / site / instrument).resolve()
        standards, zeros = from_library([c for c in everything if Path(c.path).is_relative_to(site_dir)],
                                        site_dir, targets)
        write_standards(ctx.product(f"reduced/{site}/{instrument}/csv/standards.csv"), standards)
        write_zeros(ctx.product(f"reduced/{site}/{instrument}/csv/zeros.csv"), zeros)


calibrations = Step("calibrations", inputs=SOURCES, run=masters, schema=SCHEMA, doc=__doc__)
