"""Runbook, pre-science steps 1-2: "The appropriate reduced directory is created using the UT
date (``/scr2/sedmdrp/redux/20180907``)" and "The required raw calibration files are linked into
the directory as they are taken".

One item per raw file of ``{data_root}/{date}/`` (in a watched run, each file once it is
complete): its header says what it is (:mod:`steps.sedm.frames`: camera, IMGTYPE, the set
``Calib: KIND n of N`` announces, ADC speed, overscan columns), and a link to it is made in the
night directory (``{redux_root}/{date}/``, default ``RUN/redux/{date}/``) under its own name.  The
raw file is only read.  A file whose header cannot be read, or does not say what the frame is,
fails here with its name and the rest go on; a truncated file fails with the bytes it lacks.
"""

from __future__ import annotations

import os

import pyarrow as pa
from astropy.io import fits

from astroflow.step import FanOut
from steps.sedm.frames import FrameFormatError, classify, set_key
from steps.sedm.writer import link, night_dir

SCHEMA = pa.schema([
    ("filename", pa.string()), ("path", pa.string()), ("link", pa.string()), ("camera", pa.string()),
    ("imgtype", pa.string()), ("kind", pa.string()), ("set", pa.string()), ("object", pa.string()),
    ("set_index", pa.int32()), ("set_size", pa.int32()), ("adcspeed", pa.float64()), ("gain", pa.float64()),
    ("exptime", pa.float64()), ("mjd_obs", pa.float64()), ("dateobs", pa.string()), ("airmass", pa.float64()),
    ("nx", pa.int32()), ("ny", pa.int32()), ("oscan_x0", pa.int32()), ("oscan_x1", pa.int32()),
    ("pscan_x0", pa.int32()), ("pscan_x1", pa.int32()),
])


def raw_frames(ctx) -> list[dict]:
    found = ctx.glob(ctx.settings.raw_night(), "*.fits*")
    return [{"filename": p.name, "path": str(p)} for p in found if not p.name.startswith(".")]


def read_header(path) -> fits.Header:
    """The primary header, after checking that the file holds all the data it announces."""
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            header = hdul[0].header.copy()
            info = hdul.fileinfo(0)
    except (OSError, ValueError, TypeError) as exc:
        raise FrameFormatError(f"not a readable FITS file: {exc}", path=path) from None
    need = info["datLoc"] + info["datSpan"]
    size = os.path.getsize(path)
    if size < need - 2879:  # FITS pads the data to 2880-byte blocks; a writer may omit the padding
        raise FrameFormatError(f"truncated: {size} bytes, the header announces {need}", path=path)
    return header


def link_frame(ctx, item: dict) -> dict:
    path = ctx.uses(item["path"])
    try:
        info = classify(read_header(path))
    except FrameFormatError as exc:
        raise FrameFormatError(exc.reason, path=path) from None
    rec = info.record()
    rel = night_dir(ctx.settings) / item["filename"]
    link(path, ctx.product(rel), ctx.settings.raw_roots())
    rec["set"] = set_key(rec) if rec["kind"] in ("bias", "dome", "Hg", "Cd", "Xe") else ""
    return {"filename": item["filename"], "path": str(path), "link": str(rel), **rec}


night = FanOut("night", items=raw_frames, process=link_frame, key=("filename",), schema=SCHEMA, shard_size=40,
               doc=__doc__)
