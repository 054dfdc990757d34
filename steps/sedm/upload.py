"""Runbook, science step 6 ("If the target is a ZTF object: the spectrum is uploaded to the growth
marshal; the marshal URL is recorded in the file report_ztf.txt") and the report's pushes ("push
this plot to the SEDM-P60 slack channel pysedm-report", the pharos database update).

One item per (spectrum, sink) for each sink the settings turn on (:class:`steps.sedm.settings.
SedmSinks`, all off by default), so a sink that fails is retried alone by the next run and a
delivered one is never sent again.  Only acceptable spectra (quality <= 2) go anywhere; the
marshal takes the objects matching ``upload_pattern`` (``ZTF*``).  What is sent:

``marshal``  the ascii and FITS spectrum, fields object, quality, classification (the answer,
             e.g. the spectrum's marshal URL, goes to ``report_ztf.txt``);
``slack``    the verification plot with a one-line text;
``pharos``   one row: the spectrum's table row (file, object, quality, classification, fluxcal).

Delivery is :func:`astroflow.sinks.send` (the transports, retries with back-off, the recorded
failure); the key is the spectrum's file stem, so a redex tag is a new delivery.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pyarrow as pa

from astroflow import sinks
from astroflow.step import FanOut, Resources

SCHEMA = pa.schema([
    ("filename", pa.string()), ("sink", pa.string()), ("object", pa.string()), ("key", pa.string()),
    ("url", pa.string()), ("attempts", pa.int32()), ("answer", pa.string()),
])
SPECTRUM_SINKS = ("marshal", "slack", "pharos")
FIELDS = ("object", "quality", "classifier", "type", "subtype", "z", "rlap", "fluxcal_file", "redo_tag")


def deliveries(ctx) -> list[dict]:
    """One item per acceptable spectrum and enabled sink (the marshal only for ``upload_pattern``)."""
    config = ctx.settings.sinks
    on = [name for name in SPECTRUM_SINKS if getattr(config, name).enabled]
    if not on:
        return []
    out = []
    for r in ctx.rows("spectra", columns=["filename", "object", "quality"]):
        if r["quality"] > 2:
            continue
        for name in on:
            if name == "marshal" and not fnmatch.fnmatchcase(r["object"], ctx.settings.upload_pattern):
                continue
            out.append({"filename": r["filename"], "sink": name})
    return out


def _message(ctx, spec: dict, sink: str) -> sinks.Message:
    fields = {k: spec.get(k) for k in FIELDS}
    stem = Path(spec["fits_path"]).stem
    if sink == "marshal":
        files = (ctx.run_dir / spec["txt_path"], ctx.run_dir / spec["fits_path"])
    elif sink == "slack":
        plot = ctx.row("verify", filename=spec["filename"])["png_path"]
        fields = {"text": f"{spec['object']}: quality {spec['quality']}, {spec.get('type') or 'unclassified'} "
                          f"z={spec.get('z')}", **fields}
        files = (ctx.run_dir / plot,)
    else:
        fields = {**fields, "filename": spec["filename"], "night": ctx.settings.date}
        files = ()
    return sinks.Message(sink, stem, fields, tuple(files))


def upload_one(ctx, item: dict) -> dict:
    spec = ctx.row("spectra", filename=item["filename"])
    msg = _message(ctx, spec, item["sink"])
    receipt = sinks.send(getattr(ctx.settings.sinks, item["sink"]), msg, ctx.run_dir)
    ctx.log.info("sedm upload: %s %s -> %s (%s tries)", item["sink"], msg.key, receipt["url"], receipt["attempts"])
    return {"filename": item["filename"], "sink": item["sink"], "object": spec["object"], "key": msg.key,
            "url": receipt["url"], "attempts": receipt["attempts"], "answer": receipt["answer"]}


upload = FanOut("upload", inputs=("spectra", "verify"), items=deliveries, process=upload_one,
                key=("filename", "sink"), schema=SCHEMA, shard_size=8,
                resources=Resources(cpu="250m", memory="512Mi"), doc=__doc__)
