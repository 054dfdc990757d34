"""BIAS0X compliance (vison's flags and the report's compliance tables): each flag with its reason.

The Task's ``bias_flags`` step is the compliance step every Task has
(:func:`steps.vison.compliance.flags_step`: inventory, serials, HK and crashes) with BIAS0X's
rules, one row per quadrant and CCD with the bitmask, the names and the reasons, from what the
sub-tasks measured and the run's limits (``settings.limits``, vison's ``perflimits``):

* check: a prescan offset beyond ±tolerance of its nominal (or outside the sanity range where no
  nominal is configured), image or overscan minus prescan beyond ±10 ADU: POORQUALDATA; a
  prescan or overscan std outside the RON limits: RON_OOL; lost pixels: LOSTPIXELS; saturated:
  SATURATION; a frame that does not read: BADDATA (the error names the file); a CCD serial in
  the headers other than the configured one: WRONG_ROE_CONF
  (:func:`steps.vison.compliance.offsets_flags`);
* basic: the RON outside its limits: RON_OOL; a bias model that does not fit: BADFIT.

Writes ``RUN/<session>/<TEST>/flags/``.
"""

from __future__ import annotations

from steps.vison import tasks
from steps.vison.compliance import flags_step, offsets_flags
from steps.vison.flags import FlagBook


def basic_flags(book: FlagBook, ctx, item: dict, task: tasks.Task) -> None:
    if not ctx.has_input(task.step("basic")):
        return
    ccd, (lo, hi) = item["ccd"], ctx.settings.limits.ron_adu
    for r in ctx.lookup(task.step("basic"), test=item["test"], ccd=ccd).to_pylist():
        if r["n_frames"] and not lo <= r["ron_adu"] <= hi:
            book.add("RON_OOL", "basic", f"RON over {r['n_frames']} frames", ccd=ccd, quadrant=r["quadrant"],
                     value=f"{r['ron_adu']:.4g} ADU", limit=f"[{lo:.4g}, {hi:.4g}] ADU")
        for text in r["badfit"] or []:
            book.add("BADFIT", "basic", f"bias model: {text}", ccd=ccd, quadrant=r["quadrant"])


bias_flags = flags_step(tasks.BIAS0X, (offsets_flags, basic_flags), __doc__)
