"""BIAS0X sub-task ``check`` (vison ``check_data``): offsets and noise of every frame's regions.

For each frame of the test on one CCD (fan-out by test and CCD) and each quadrant in canonical
orientation: the offset (median) and std of the prescan, the image and the serial overscan,
with vison's column trims (prescan [25, 5], the others [5, 5]: ``preprocessing``), pixels at 0
(lost) and 65535 (saturated) counted and left out.  The geometry of each frame is its header's
(``NAXIS1``/``NAXIS2``).  The header's serial of the CCD is recorded for the serials check.  A
frame that does not read (corrupt, misshapen) is a row with the error naming the file (the flags
step raises BADDATA) and the other frames go on.  The limits are applied by the flags step.
Writes ``RUN/<session>/<TEST>/offsets/``.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.vison import elvis, tasks
from steps.vison.science.bias import region_stats
from steps.vison.subtasks import KEY, check_frames, task_items

REGIONS = ("prescan", "image", "overscan")
SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("region", pa.string()), ("offset_adu", pa.float64()), ("std_adu", pa.float64()), ("n_lost", pa.int64()),
    ("n_saturated", pa.int64()), ("n_pixels", pa.int64()), ("serial", pa.string()), ("naxis1", pa.int32()),
    ("naxis2", pa.int32()), ("file", pa.string()), ("problem", pa.string()),
])


def frame_offsets(frame: elvis.Frame, trim_prescan, trim_other) -> list[dict]:
    """The region statistics of one frame (pure: the frame is in memory)."""
    out = []
    for q in elvis.QUADRANTS:
        for region in REGIONS:
            st = region_stats(frame.region(q, region), trim_prescan if region == "prescan" else trim_other)
            out.append({"quadrant": q, "region": region, **st})
    return out


def frame_measure(ctx):
    """The check's measurement of one frame under the run's trims: the region statistics, the
    header's serial of the CCD and the frame's size."""
    pre = ctx.settings.preprocessing
    trims = tuple(pre.trim_prescan), tuple(pre.trim_other)

    def measure(frame: elvis.Frame) -> list[dict]:
        serial = frame.header.get(f"SN_CCD{frame.ccd}")
        shape = {"serial": None if serial is None else str(serial), "naxis1": frame.data.shape[1],
                 "naxis2": frame.data.shape[0]}
        return [{**shape, **r} for r in frame_offsets(frame, *trims)]

    return measure


def check_ccd(ctx, item) -> list[dict]:
    return check_frames(ctx, item, frame_measure(ctx), "offsets")


bias_check = FanOut("bias_check", inputs=("inventory",), items=task_items(tasks.BIAS0X), process=check_ccd, key=KEY,
                    schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
