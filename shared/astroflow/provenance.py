"""Provenance in the products themselves: what made a FITS or HDF5 file, from which configuration,
with which calibrations.

The shard manifest records all of it for the ledger; a FITS or HDF5 product travels without its
run directory, so its header says it too.  One record per item (:func:`record`), written two ways:

* FITS header cards (:func:`fits_cards`, ``ctx.provenance_cards()``)::

      DATE     = '2026-12-02T10:31:07'  / file creation date (UTC)   -- the FITS standard's DATE
      PIPEVER  = '0.1.0+gabc1234'       / astroflow code version
      PIPELINE = 'hetdex'               / astroflow pipeline
      PIPESTEP = 'sci_reduce'           / astroflow step
      RUNNAME  = 'run-s33'              / astroflow run (the run directory's name)
      CONFHASH = '3f2a...'              / hash of the run configuration (run.json)
      CALBIAS  = 'masterbias_....fits'  / bias id 12        -- one per calibration the item used

  ``DATE`` is when the file was written, as the FITS standard defines it; the observation's date
  belongs in ``DATE-OBS`` (and a night's in ``DAY-OBS``).

* HDF5 attributes on the file's root (:func:`h5_attrs`, ``ctx.provenance_attrs()``): the same
  facts under lower-case names (``astroflow_version``, ``pipeline``, ``step``, ``run``,
  ``config_hash``, ``created``, ``calibrations`` as JSON ``{type: [file, ...]}``).

``CONFHASH`` is :meth:`astroflow.config.RunConfig.config_hash`: the digest of the pipeline, its
settings and its step parameters (not the code version, not the runner's options), so two
products made with the same configuration carry the same hash whatever machine made them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FITS_VALUE = 68  # the longest string value of one 80-character card


def now_iso() -> str:
    """The current UTC time as the FITS standard writes DATE: ``YYYY-MM-DDThh:mm:ss``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def record(ctx) -> dict[str, Any]:
    """The provenance of the item ``ctx`` is processing (or of its whole step)."""
    used = ctx.calibrations_used.get(ctx.item_id or ctx.step, [])
    return {
        "created": now_iso(),
        "astroflow_version": ctx.code_version,
        "pipeline": ctx.pipeline,
        "step": ctx.step,
        "item": ctx.item_id or ctx.step,
        "run": Path(ctx.run_dir).resolve().name,
        "config_hash": ctx.config_hash,
        "calibrations": [{"type": r["type"], "id": r["id"], "file": Path(r["path"]).name} for r in used],
    }


def calibration_key(ctype: str) -> str:
    """The header keyword of a calibration type: ``CAL`` + five letters or digits, the first of
    each word but the last and then the last word's (``BIAS`` -> ``CALBIAS``, ``WAVELENGTH`` ->
    ``CALWAVEL``, ``MASTER_BIAS`` -> ``CALMBIAS``, ``MASTER_DARK`` -> ``CALMDARK``)."""
    words = [w for w in re.split(r"[^A-Z0-9]+", ctype.upper()) if w]
    return "CAL" + ("".join(w[0] for w in words[:-1]) + words[-1])[:5] if words else "CAL"


def calibration_cards(rec: dict) -> list[tuple[str, str, str]]:
    """``CAL<TYPE>`` = file name, one per calibration used (banzai's ``L1IDBIAS`` style)."""
    return [fitted(calibration_key(cal["type"]), cal["file"], f"{cal['type']} id {cal['id']}")
            for cal in rec["calibrations"]]


def fitted(key: str, value: str, comment: str) -> tuple[str, str, str]:
    """A string card that fits one 80-character card: the value cut to :data:`FITS_VALUE`
    characters, the comment to the room the value leaves (astropy would truncate it with a
    warning).  ``KEY     = 'value'  / comment``: the quoted value takes at least 20 columns."""
    value = value[:FITS_VALUE]
    room = 80 - 10 - max(20, len(value.replace("'", "''")) + 2) - 3
    return key, value, comment[:max(0, room)]


def fits_cards(ctx) -> list[tuple[str, str, str]]:
    """The provenance header cards, ``(keyword, value, comment)``, DATE first."""
    rec = record(ctx)
    cards = [fitted(*card) for card in (
        ("DATE", rec["created"], "file creation date (UTC)"),
        ("PIPEVER", rec["astroflow_version"], "astroflow code version"),
        ("PIPELINE", rec["pipeline"], "astroflow pipeline"),
        ("PIPESTEP", rec["step"], "astroflow step"),
        ("RUNNAME", rec["run"], "astroflow run (the run directory's name)"),
        ("CONFHASH", rec["config_hash"], "hash of the run configuration"),
    )]
    return cards + calibration_cards(rec)


def stamp_fits(header, ctx):
    """Set the provenance cards on an ``astropy.io.fits.Header`` (in place); returns it."""
    for key, value, comment in fits_cards(ctx):
        header[key] = (value, comment)
    return header


def h5_attrs(ctx) -> dict[str, str]:
    """The provenance as HDF5 attributes (strings) for the root of an HDF5 product."""
    rec = record(ctx)
    by_type: dict[str, list[str]] = {}
    for cal in rec["calibrations"]:
        by_type.setdefault(cal["type"], []).append(cal["file"])
    return {"created": rec["created"], "astroflow_version": rec["astroflow_version"], "pipeline": rec["pipeline"],
            "step": rec["step"], "run": rec["run"], "config_hash": rec["config_hash"],
            "calibrations": json.dumps(by_type, sort_keys=True)}


def stamp_h5(obj, ctx) -> None:
    """Write the provenance attributes on an h5py File or Group (merging calibrations already
    recorded there, for a file written from several items)."""
    attrs = h5_attrs(ctx)
    if "calibrations" in obj.attrs:
        try:
            old = json.loads(obj.attrs["calibrations"])
        except (TypeError, ValueError):
            old = {}
        new = json.loads(attrs["calibrations"])
        for k, v in old.items():
            new[k] = sorted(set(v) | set(new.get(k, [])))
        attrs["calibrations"] = json.dumps(new, sort_keys=True)
    obj.attrs.update(attrs)
