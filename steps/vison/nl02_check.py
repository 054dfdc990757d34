"""NL02 sub-task ``check`` (vison ``check_data``, ``prep_data`` and ``extract_stats``): each flat's fluence.

For each frame of the test on one CCD (fan-out by test and CCD) and each quadrant: the prescan
offset (grouped median, trims [25, 5]) and std; the image area's median above that offset (the
fluence, saturated pixels counted) and its quartiles (:func:`steps.vison.science.nonlinearity.quartiles`:
a frame whose upper quartile has collapsed onto the median is at the full well); lost and
saturated pixels.  With the frame: its exposure time (the EXP_LOG's), its time (the file's
date), and which source it was taken with, the header's ``SOURCE`` and filter position ``WAVE``
(vison's NL02 tells its two sources apart by the filter, the ND-filtered lamp against 880 nm).
vison's prep (the offset subtraction) is this check's: the fluences are above the offsets.
vison measures the fluence in tiles, each fitted apart for the source's non-uniformity; the
median of a quadrant is the median pixel's response whatever the illumination pattern, as long
as the pattern is the same for all the frames of a source, so one value per quadrant is kept.
A frame that does not read is a row with the error naming the file (the flags step raises
BADDATA).  Writes ``RUN/<session>/<TEST>/fluences/``.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.vison import elvis, tasks
from steps.vison.science.bias import region_stats
from steps.vison.science.nonlinearity import quartiles
from steps.vison.science.ptc import image_level
from steps.vison.subtasks import KEY, check_frames, task_items

SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("exptime", pa.float64()), ("time_s", pa.float64()), ("source", pa.string()), ("wave_pos", pa.int32()),
    ("offset_adu", pa.float64()), ("prescan_std_adu", pa.float64()), ("fluence_adu", pa.float64()),
    ("p25_adu", pa.float64()), ("p75_adu", pa.float64()), ("n_saturated", pa.int64()), ("n_lost", pa.int64()),
    ("n_pixels", pa.int64()), ("file", pa.string()), ("problem", pa.string()),
])


def frame_levels(frame: elvis.Frame, trim_prescan) -> list[dict]:
    """Offset, fluence and quartiles of each quadrant of one frame (pure: the frame is in memory)."""
    try:
        wave = int(frame.header.get("WAVE"))
    except (TypeError, ValueError):
        wave = None
    common = {"time_s": frame.date.replace(tzinfo=dt.timezone.utc).timestamp(),
              "source": str(frame.header.get("SOURCE", "")), "wave_pos": wave}
    out = []
    for q in elvis.QUADRANTS:
        pre = region_stats(frame.region(q, "prescan"), trim_prescan)
        image = frame.region(q, "image")
        level, quart = image_level(image), quartiles(image)
        off = pre["offset_adu"]
        out.append({**common, "quadrant": q, "offset_adu": off, "prescan_std_adu": pre["std_adu"],
                    "fluence_adu": level["median_adu"] - off, "p25_adu": quart["p25"] - off,
                    "p75_adu": quart["p75"] - off, "n_saturated": level["n_saturated"], "n_lost": level["n_lost"],
                    "n_pixels": level["n_pixels"]})
    return out


def check_ccd(ctx, item) -> list[dict]:
    trim = tuple(ctx.settings.preprocessing.trim_prescan)
    return check_frames(ctx, item, lambda frame: frame_levels(frame, trim), "fluences")


nl02_check = FanOut("nl02_check", inputs=("inventory",), items=task_items(tasks.NL02), process=check_ccd, key=KEY,
                    schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
