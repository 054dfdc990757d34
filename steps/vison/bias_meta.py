"""BIAS0X sub-task ``meta`` (vison ``meta_analysis``): the master bias of each CCD.

The per-pixel median of the test's prepared frames (fan-out by test and CCD), each quadrant
whole (prescan, image, overscans) minus its offset, written back in the frame's own layout as
``RUN/<session>/<TEST>/products/EUC_MB_{TEST}_CCD{n}_SN_{serial}.fits`` (float32 ADU, with the
ObsIDs it stacks, the serial and the readout mode in its header) and registered in the
calibration library as ``MASTER_BIAS`` (matched by CCD, serial and readout mode), so that later
Tasks find it there.  Per quadrant: the master's median and std over the image area.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, Resources
from steps.vison import elvis
from steps.vison.bias_items import KEY, bias_items
from steps.vison.prepared import prep_by_frame, prepared_frames
from steps.vison.products import product_path
from steps.vison.science.bias import master

SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("n_frames", pa.int32()),
    ("median_adu", pa.float64()), ("std_adu", pa.float64()), ("serial", pa.string()), ("rdmode", pa.string()),
    ("file", pa.string()),
])


def place(quadrants: dict[str, np.ndarray], geometry: elvis.Geometry) -> np.ndarray:
    """The frame (NAXIS2, NAXIS1) from canonical quadrants: the inverse of :meth:`elvis.Frame.quadrant`."""
    h, w = geometry.height, geometry.width
    out = np.full(geometry.shape, np.nan, dtype=np.float32)
    out[:h, :w] = quadrants["H"]
    out[h:, :w] = quadrants["E"][::-1, :]
    out[h:, w:] = quadrants["F"][::-1, ::-1]
    out[:h, w:] = quadrants["G"][:, ::-1]
    return out


def meta_ccd(ctx, item) -> list[dict]:
    n = len(prep_by_frame(ctx, item))
    if not n:
        raise Skip(f"no prepared frame of {item['test']} CCD{item['ccd']} to stack (MISSDATA)")
    stacks: dict[str, np.ndarray] = {}
    obsids, dates, geometry, header = [], [], None, None
    for i, (obsid, frame, quads) in enumerate(prepared_frames(ctx, item, "quadrant")):
        if geometry is not None and frame.geometry != geometry:
            raise ItemError(f"ObsID {obsid} has another geometry ({frame.geometry}) than the first frame ({geometry})",
                            frame.path)
        geometry, header = frame.geometry, frame.header
        obsids.append(obsid)
        dates.append(frame.date)
        for q in elvis.QUADRANTS:
            if q not in stacks:  # one (frames, rows, columns) array per quadrant, filled in place
                stacks[q] = np.empty((n, *quads[q].shape), dtype=np.float32)
            stacks[q][i] = quads[q]
    masters = {q: master(v) for q, v in stacks.items()}
    del stacks
    serial = str(header.get(f"SN_CCD{item['ccd']}", "unknown"))
    rdmode = str(header.get("RDMODE", "unknown"))
    name = f"EUC_MB_{item['test']}_CCD{item['ccd']}_SN_{serial}.fits"
    when = dt.datetime.fromtimestamp(np.mean([d.replace(tzinfo=dt.timezone.utc).timestamp() for d in dates]),
                                     tz=dt.timezone.utc)
    path = ctx.register_calibration("MASTER_BIAS", product_path(ctx, item["test"], name), when,
                                    {"ccd": item["ccd"], "serial": serial, "rdmode": rdmode},
                                    frames=[str(o) for o in obsids])
    head = fits.Header()
    head["EXTNAME"] = f"MASTER_BIAS_CCD{item['ccd']}"
    head["BUNIT"] = "ADU"
    for key, value in (("TEST", item["test"]), ("CCD", item["ccd"]), ("SERIAL", serial), ("RDMODE", rdmode),
                       ("NCOMBINE", len(obsids)), ("OBSID0", min(obsids)), ("OBSID1", max(obsids)),
                       ("DATE-OBS", when.isoformat(timespec="seconds")), ("COMBINE", "median"),
                       ("OFFSETS", ctx.settings.preprocessing.offset_method)):
        head[key] = value
    for card in ctx.fits_cards():
        head[card[0]] = card[1:]
    hdus = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(place(masters, geometry), header=head)])
    with atomic_path(path) as tmp:
        hdus.writeto(tmp)
    rows = []
    rr, cc = geometry.region("image")
    for q, m in masters.items():
        img = m[rr, cc]
        rows.append({"test": item["test"], "ccd": item["ccd"], "quadrant": q, "n_frames": len(obsids),
                     "median_adu": float(np.nanmedian(img)), "std_adu": float(np.nanstd(img)), "serial": serial,
                     "rdmode": rdmode, "file": str(path.relative_to(ctx.run_dir))})
    return rows


bias_meta = FanOut("bias_meta", inputs=("bias_prep",), items=bias_items, process=meta_ccd, key=KEY, schema=SCHEMA,
                   shard_size=1, resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
