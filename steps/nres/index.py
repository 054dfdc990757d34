"""Runbook "post_to_fits_exchange" and the archive's processed-images table: the frame index.

Lists the raw NRES frames of the run's site, instrument and DAY-OBS folders
(``{data_root}/{site}/{instrument}/{day-obs}/raw/``; in a watched run only the frames admitted as
complete) and records one row per frame: path, site, instrument, camera, DAY-OBS, DATE-OBS,
OBSTYPE, OBJECTS and the fiber state, the science object and its fiber, exposure time, binning,
readout mode, CCD temperature, detector size, MD5.  It replaces the glob-and-post loops of the
runbook (``glob('.../201712??/raw/*b00*')``): later steps select frames by OBSTYPE and OBJECTS
from this table.  A frame that is truncated, has no OBJECTS or has sections outside its pixels
fails here with the file named and the others go on; ``g00``/``x00`` frames are not NRES
products and are not listed.  An unchanged file (same size and checksum) is never reduced
again: the ledger fingerprints every frame it reads.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut
from steps.nres.frames import is_nres_frame, record

SCHEMA = pa.schema([
    ("path", pa.string()), ("filename", pa.string()), ("site", pa.string()), ("instrument", pa.string()),
    ("camera", pa.string()), ("day_obs", pa.string()), ("dateobs", pa.string()), ("obstype", pa.string()),
    ("objects", pa.string()), ("fiber_state", pa.string()), ("object", pa.string()), ("science_fiber", pa.int8()),
    ("exptime", pa.float64()), ("binning", pa.string()), ("mode", pa.string()), ("ccd_temp", pa.float64()),
    ("gain", pa.float64()), ("read_noise", pa.float64()), ("biassec", pa.string()), ("trimsec", pa.string()),
    ("latitude", pa.float64()), ("longitude", pa.float64()), ("height", pa.float64()), ("ra", pa.string()),
    ("dec", pa.string()), ("nx", pa.int32()), ("ny", pa.int32()), ("md5", pa.string()),
])


def raw_frames(ctx) -> list[dict]:
    s = ctx.settings
    found = []
    for day in s.day_obs():
        found += [p for p in ctx.glob(s.raw_folder(day), "*.fits*") if is_nres_frame(p)]
    return [{"filename": p.name, "path": str(p)} for p in found]


def index_frame(ctx, item) -> dict:
    return record(ctx.uses(item["path"]))


index = FanOut(
    "index",
    items=raw_frames,
    process=index_frame,
    key=("filename",),
    schema=SCHEMA,
    shard_size=25,
    doc=__doc__,
)
