"""CHINJ01 sub-task ``check`` (vison ``check_data``): offsets and noise of every injection frame, and its commands.

The measurement of BIAS0X's check (:func:`steps.vison.bias_check.frame_measure`: offset and std
of the prescan and the serial overscan of each frame and quadrant, vison's trims, lost and
saturated pixels, the header's serial) over the CHINJ01 frames (fan-out by test and CCD), with
what the frame's header says it commanded: IG1 (``IG1_{n}_B`` for quadrants E and F, the CCD's
bottom half, ``IG1_{n}_T`` for G and H, as vison's TP01 pairs halves and quadrants), the drain
delay ``ID_DLY``, the injection pattern ``CHINJ_ON``/``CHINJ_OF`` from ``VSTART``, and the trap
pumping ``V_TPUMP``, ``V_TP_MOD``, ``TOI_TP``, ``V_TP_CNT`` (TP01 checks its frames with the same
measurement, :mod:`steps.vison.tp_check`).  The image's own level is not held against BIAS0X's
image-minus-prescan limit: an injection frame's image is charge, measured by extract.  Writes
``RUN/<session>/<TEST>/offsets/``.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.vison import bias_check, elvis, tasks
from steps.vison.subtasks import KEY, check_frames, task_items


HALF = {"E": "B", "F": "B", "G": "T", "H": "T"}  # vison: bottom = E, F; top = G, H
COMMANDS = (("ID_DLY", "id_dly"), ("CHINJ", "chinj"), ("CHINJ_ON", "chinj_on"), ("CHINJ_OF", "chinj_off"),
            ("VSTART", "vstart"), ("V_TPUMP", "v_tpump"), ("V_TP_MOD", "v_tp_mod"), ("TOI_TP", "toi_tp"),
            ("V_TP_CNT", "v_tp_cnt"))
SCHEMA = pa.schema([*bias_check.SCHEMA, ("ig1_v", pa.float64()),
                    *((column, pa.float64()) for _, column in COMMANDS)])


def header_number(frame: elvis.Frame, key: str) -> float | None:
    value = frame.header.get(key)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        raise elvis.ElvisFormatError(frame.path, f"header {key} = {value!r} is not a number") from None


def injection_measure(ctx):
    """The check's measurement of one injection frame: BIAS0X's region statistics of the prescan
    and overscan, with the frame's IG1 (per quadrant) and injection and pumping commands."""
    regions = bias_check.frame_measure(ctx)

    def measure(frame: elvis.Frame) -> list[dict]:
        commands = {column: header_number(frame, key) for key, column in COMMANDS}
        ig1 = {q: header_number(frame, f"IG1_{frame.ccd}_{HALF[q]}") for q in elvis.QUADRANTS}
        return [{**r, **commands, "ig1_v": ig1[r["quadrant"]]} for r in regions(frame) if r["region"] != "image"]

    return measure


def check_ccd(ctx, item) -> list[dict]:
    return check_frames(ctx, item, injection_measure(ctx), "offsets")


chinj_check = FanOut("chinj_check", inputs=("inventory",), items=task_items(tasks.CHINJ01), process=check_ccd,
                     key=KEY, schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
