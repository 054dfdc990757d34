"""A sub-task that crashes on one CCD raises SUBTASKCRASH there, with its error, and the session
goes on (the other CCDs analysed, the flags written)."""

from __future__ import annotations

import textwrap

from astroflow import config, registry, runner
from steps.vison import scoring

CRASHY = textwrap.dedent('''
    import dataclasses

    from astroflow.pipeline import Pipeline
    from steps.vison import bias_basic as basic
    from steps.vison.pipeline import VISON


    def process(ctx, item):
        if item["ccd"] == 2:
            raise RuntimeError("simulated crash in basic on CCD2")
        return basic.basic_ccd(ctx, item)


    STEPS = [dataclasses.replace(s, process=process) if s.name == "bias_basic" else s for s in VISON.steps]
    CRASHY = dataclasses.replace(VISON, name="vison_crashy", steps=STEPS)
''')


def test_a_crash_raises_subtaskcrash_and_the_session_completes(vison_day, tmp_path, register_pipeline):
    day, _ = vison_day
    folder = tmp_path / "mod"
    folder.mkdir()
    (folder / "vison_crashy.py").write_text(CRASHY)
    register_pipeline(folder, "vison_crashy=vison_crashy:CRASHY")
    pipeline = registry.get_pipeline("vison_crashy")
    out = tmp_path / "run"
    cfg = config.resolve(pipeline, settings={"data_root": str(day.day_folder), "tests": ["BIAS01"]},
                         runner={"workers": 1})
    res = runner.run(pipeline, cfg, out, progress=False)
    assert res.failed_items == 1 and res.steps["bias_flags"].state == "done"
    flags = scoring.contract(out, "D00", "BIAS01", "flags")
    for r in flags:
        crashed = "SUBTASKCRASH" in r["flag_names"]
        assert crashed == (r["ccd"] == 2), r
        if crashed:
            assert any("bias_basic" in x and "simulated crash" in x for x in r["reasons"])
    assert sorted({r["ccd"] for r in scoring.contract(out, "D00", "BIAS01", "ron")}) == [1, 3]
