"""TP01 sub-tasks ``injection``, ``extract`` and ``basic`` (vison's, in one pass): the dipoles of the pumped frames.

Per test and CCD (fan-out), each frame read once, its quadrants' image areas minus the check's
prescan offsets.  The frames without pumping (``V_TPUMP`` 0, one per drain delay) give each
quadrant's injection level and noise (vison's ``charact_injection``); each pumped frame of a
quadrant that holds injection (its median above ``INJECTED_SIGMA`` x its robust std: vison injects
one half of the CCD per drain delay) is turned into its dipole map and added to the stack of its
dwell ``TOI_TP`` (:class:`steps.vison.science.traps.DipoleStack`: vison's ``extract``); the
stacks give the traps (:func:`steps.vison.science.traps.find_traps`: contrast above 5 x its
noise, vison's ``basic_analysis`` threshold), each with its amplitude per dwell.  Rows: one per
quadrant (``kind = "quadrant"``: the frames stacked per dwell, the injection, the contrast
noise) and one per trap (``kind = "trap"``: x, y in the image area, amplitudes and their errors
in ADU per frame, the detection's signal to noise), which meta fits.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.step import FanOut, Resources, StepParams
from steps.vison import elvis, tasks
from steps.vison.chinj_extract import checked_frames
from steps.vison.science.bias import prepared_image, robust_sigma
from steps.vison.science.traps import CONSERVED_SIGMA, THRESHOLD, DipoleStack, find_traps
from steps.vison.subtasks import KEY, task_items


INJECTED_SIGMA = 5.0  # a quadrant whose median is above this many robust std holds injection


class ExtractParams(StepParams):
    threshold: float = Field(THRESHOLD, gt=0, description=(
        "a dipole's contrast above this many times its noise is a trap (vison's contrast_thresholdfactor)"))
    conserved_sigma: float = Field(CONSERVED_SIGMA, gt=0, description=(
        "a trap's three pixels must hold their charge within this many standard deviations (moved, not made)"))


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("kind", pa.string()),
    ("x", pa.int32()), ("y", pa.int32()), ("dwells_us", pa.list_(pa.float64())),
    ("n_frames", pa.list_(pa.int32())), ("amplitudes_adu", pa.list_(pa.float64())),
    ("errors_adu", pa.list_(pa.float64())), ("snr", pa.float64()), ("cycles", pa.int64()),
    ("injection_adu", pa.float64()), ("injection_noise_adu", pa.float64()), ("n_reference", pa.int32()),
    ("n_skipped", pa.int32()),
])


def is_pumped(row: dict) -> bool:
    return bool(row["v_tpump"]) and row["toi_tp"] is not None


def extract_ccd(ctx, item) -> list[dict]:
    p = ctx.params
    stacks: dict[str, dict[float, DipoleStack]] = {q: {} for q in elvis.QUADRANTS}
    reference: dict[str, list[tuple[float, float]]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    cycles: set[int] = set()
    for quads in checked_frames(ctx, item, tasks.TP01).values():
        frame = elvis.read_frame(ctx.uses(next(iter(quads.values()))["file"]))
        for q, r in quads.items():
            image = prepared_image(frame.region(q, "image"), r["offset_adu"])
            level, noise = float(np.nanmedian(image)), robust_sigma(image)
            if not is_pumped(r):
                reference[q].append((level, noise))
                continue
            if not level > INJECTED_SIGMA * noise:  # this drain delay does not inject this quadrant
                skipped[q] += 1
                continue
            cycles.add(int(r["v_tp_cnt"] or 0))
            dwell = float(r["toi_tp"])
            stack = stacks[q].setdefault(dwell, DipoleStack.empty(image.shape))
            stack.add(image)
    rows = []
    base = {"test": item["test"], "ccd": item["ccd"], "cycles": max(cycles) if cycles else None}
    for q in elvis.QUADRANTS:
        dwells = sorted(stacks[q])
        traps, noise = find_traps(stacks[q], p.threshold, p.conserved_sigma)
        ref = [lv for lv, n in reference[q] if lv > INJECTED_SIGMA * n]
        rows.append({**base, "quadrant": q, "kind": "quadrant", "dwells_us": dwells,
                     "n_frames": [stacks[q][t].n_frames for t in dwells],
                     "errors_adu": [noise[t] / (3 * stacks[q][t].n_frames) for t in dwells],
                     "injection_adu": float(np.median(ref)) if ref else None,
                     "injection_noise_adu": float(np.median([n for lv, n in reference[q] if lv > INJECTED_SIGMA * n]))
                     if ref else None, "n_reference": len(reference[q]), "n_skipped": skipped[q]})
        rows += [{**base, "quadrant": q, "kind": "trap", "x": d.x, "y": d.y, "dwells_us": dwells,
                  "n_frames": [stacks[q][t].n_frames for t in dwells], "amplitudes_adu": d.amplitudes_adu,
                  "errors_adu": d.errors_adu, "snr": d.snr} for d in traps]
    return rows


tp_extract = FanOut("tp_extract", inputs=("inventory", "tp_check"), params=ExtractParams, items=task_items(tasks.TP01),
                    process=extract_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                    resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
