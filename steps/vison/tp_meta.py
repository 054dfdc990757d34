"""TP01 sub-task ``meta`` (vison ``meta_analysis``, ``fit_PcTau_vtp``): the trap catalogue, tau and capture probability.

Per test and CCD (fan-out), per trap that extract found: its amplitudes against the dwell
fitted with ``A(t) = N Pc (exp(-t/tau) - exp(-2 t/tau))``, N the pumps (``V_TP_CNT``)
(:func:`steps.vison.science.traps.fit_tau_pc`): tau in microseconds (the unit of TOI_TP) and
Pc in ADU per pump, vison's own (``Pc = scaled_Pc * chinj``: ADU).  The capture probability
``pc`` is that charge in electrons, Pc times the quadrant's gain: the gain the session's PTC0X
meta measured (``ptc_meta``, an optional input: the median of its tests' finite gains for the
quadrant); where the session has no PTC, ``pc`` is NaN and ``pc_adu`` still holds vison's Pc.
Writes the contract ``RUN/<session>/<TEST>/traps/`` (ccd, quadrant, x, y, tau, pc).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import tasks
from steps.vison.products import write_part
from steps.vison.science.traps import fit_tau_pc
from steps.vison.subtasks import KEY, task_items


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("x", pa.int32()), ("y", pa.int32()),
    ("tau", pa.float64()), ("pc", pa.float64()), ("pc_adu", pa.float64()), ("chi2_dof", pa.float64()),
    ("snr", pa.float64()), ("gain_e_per_adu", pa.float64()), ("gain_from", pa.string()),
])


def gains(ctx, ccd: int) -> dict[str, tuple[float, str]]:
    """Quadrant -> (gain, the PTC tests it comes from) for one CCD, from the session's PTC0X."""
    if not ctx.has_input("ptc_meta"):
        return {}
    found: dict[str, list[tuple[float, str]]] = {}
    for r in ctx.lookup("ptc_meta", ccd=ccd).to_pylist():
        g = r["gain_e_per_adu"]
        if g is not None and np.isfinite(g) and g > 0:
            found.setdefault(r["quadrant"], []).append((g, r["test"]))
    return {q: (float(np.median([g for g, _ in v])), ",".join(sorted({t for _, t in v}))) for q, v in found.items()}


def meta_ccd(ctx, item) -> list[dict]:
    gain = gains(ctx, item["ccd"])
    rows = []
    for r in ctx.lookup("tp_extract", test=item["test"], ccd=item["ccd"]).to_pylist():
        if r["kind"] != "trap":
            continue
        tau, pc_adu, chi2 = fit_tau_pc(r["dwells_us"], r["amplitudes_adu"], r["errors_adu"], r["cycles"] or 0)
        g, source = gain.get(r["quadrant"], (float("nan"), None))
        rows.append({"test": item["test"], "ccd": item["ccd"], "quadrant": r["quadrant"], "x": r["x"], "y": r["y"],
                     "tau": tau, "pc": pc_adu * g, "pc_adu": pc_adu, "chi2_dof": chi2, "snr": r["snr"],
                     "gain_e_per_adu": g, "gain_from": source})
    write_part(ctx, "traps", item["test"], f"ccd{item['ccd']}", rows)
    return rows


tp_meta = FanOut("tp_meta", inputs=("inventory", "tp_extract"), optional_inputs=("ptc_meta",), items=task_items(tasks.TP01),
                 process=meta_ccd, key=KEY, schema=SCHEMA, shard_size=1, doc=__doc__)
