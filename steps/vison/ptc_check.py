"""PTC0X sub-task ``check`` (vison ``check_data`` of the flat Tasks): offset and fluence of every flat.

For each frame of the test on one CCD (fan-out by test and CCD) and each quadrant: the prescan
offset (grouped median, trims [25, 5]: ``preprocessing``) and std, and the image's level above
that offset (its median with saturated pixels counted at 65535, so that the brightest flats show
where the full well is), with the pixels at 0 (lost) and 65535 (saturated) counted.  The frame's
exposure time is the EXP_LOG's (the fluence levels are told apart by it).  A frame that does not
read is a row with the error naming the file (the flags step raises BADDATA); the others go on.
This is also PTC0X's ``prep``: the offsets are what extract subtracts (vison stored the
offset-subtracted frames as pickles; here they are subtracted as the frames are read).
Writes ``RUN/<session>/<TEST>/fluences/``.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.vison import elvis, tasks
from steps.vison.science.bias import region_stats
from steps.vison.science.ptc import image_level
from steps.vison.subtasks import KEY, check_frames, task_items

SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("exptime", pa.float64()), ("offset_adu", pa.float64()), ("prescan_std_adu", pa.float64()),
    ("fluence_adu", pa.float64()), ("n_saturated", pa.int64()), ("n_lost", pa.int64()), ("n_pixels", pa.int64()),
    ("file", pa.string()), ("problem", pa.string()),
])


def frame_fluences(frame: elvis.Frame, trim_prescan) -> list[dict]:
    """Offset and level of each quadrant of one frame (pure: the frame is in memory)."""
    out = []
    for q in elvis.QUADRANTS:
        pre = region_stats(frame.region(q, "prescan"), trim_prescan)
        level = image_level(frame.region(q, "image"))
        out.append({"quadrant": q, "offset_adu": pre["offset_adu"], "prescan_std_adu": pre["std_adu"],
                    "fluence_adu": level["median_adu"] - pre["offset_adu"], "n_saturated": level["n_saturated"],
                    "n_lost": level["n_lost"], "n_pixels": level["n_pixels"]})
    return out


def check_ccd(ctx, item) -> list[dict]:
    trim = tuple(ctx.settings.preprocessing.trim_prescan)
    return check_frames(ctx, item, lambda frame: frame_fluences(frame, trim), "fluences")


ptc_check = FanOut("ptc_check", inputs=("inventory",), items=task_items(tasks.PTC0X), process=check_ccd, key=KEY,
                   schema=SCHEMA,
                   shard_size=1, resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
