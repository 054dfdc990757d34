"""Acceptance: ``kill -9`` during BIAS01 basic, then the same command: it completes, check and prep
are not recomputed, each (obsid, ccd, quadrant) appears once.

The pipeline is vison's own, its basic sub-task held 1.5 s per CCD (so that the kill falls inside
it whatever the machine's speed), run through the CLI as a person would, in a process group that
is killed whole (``kill -9`` of the runner and its workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

from astroflow import rundir
from steps.vison import scoring
from steps.vison.simulate import SERIALS

SLOW = textwrap.dedent('''
    import dataclasses
    import time

    from steps.vison import bias_basic as basic
    from steps.vison.pipeline import VISON


    def process(ctx, item):
        time.sleep(1.5)
        return basic.basic_ccd(ctx, item)


    STEPS = [dataclasses.replace(s, process=process) if s.name == "bias_basic" else s for s in VISON.steps]
    SLOW = dataclasses.replace(VISON, name="vison_slow", steps=STEPS)
''')
UPSTREAM = ("inventory", "hk", "bias_check", "bias_prep")


def committed(out, step: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (out / step / rundir.MANIFESTS).glob("*.json")}


def test_kill_9_during_basic_then_the_same_command_completes_without_recomputing(
        vison_day, tmp_path, register_pipeline, start_until_committed):
    day, _ = vison_day
    folder = tmp_path / "mod"
    folder.mkdir()
    (folder / "vison_slow.py").write_text(SLOW)
    register_pipeline(folder, "vison_slow=vison_slow:SLOW")
    out = tmp_path / "run"
    serials = ",".join(f"CCD{i + 1}={s}" for i, s in enumerate(SERIALS))
    cmd = [sys.executable, "-m", "astroflow.cli", "run", "vison_slow", "--data-root", str(day.day_folder),
           "--tests", "BIAS01", "--serials", serials, "--out", str(out), "--workers", "2", "--no-progress"]

    proc = start_until_committed(cmd, out / "bias_basic" / rundir.MANIFESTS, 1, timeout_s=120)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    basic_before = committed(out, "bias_basic")
    assert 0 < len(basic_before) < 3, f"the kill did not fall inside basic: {sorted(basic_before)}"
    upstream = {s: committed(out, s) for s in UPSTREAM}
    assert all(upstream.values()), {s: len(m) for s, m in upstream.items()}
    assert not committed(out, "bias_flags")

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for step, before in upstream.items():  # check and prep (and what they read) not recomputed
        assert committed(out, step) == before, f"{step} was recomputed"
    after = committed(out, "bias_basic")
    assert len(after) == 3 and all(after[n] == b for n, b in basic_before.items())  # finished units kept

    # each (obsid, ccd, quadrant) once: in the ledger's datasets and in the Task's contract datasets
    prep = Counter((r["obsid"], r["ccd"], r["quadrant"]) for r in rundir.read_dataset(out / "bias_prep").to_pylist())
    first, last = day.tests["BIAS01"]
    assert set(prep) == {(o, c, q) for o in range(first, last + 1) for c in (1, 2, 3) for q in "EFGH"}
    assert set(prep.values()) == {1}
    offsets = Counter((r["obsid"], r["ccd"], r["quadrant"], r["region"])
                      for r in scoring.contract(out, "D00", "BIAS01", "offsets"))
    assert len(offsets) == 10 * 3 * 4 * 3 and set(offsets.values()) == {1}
    for dataset in ("ron", "flags"):
        keys = Counter((r["ccd"], r["quadrant"]) for r in scoring.contract(out, "D00", "BIAS01", dataset))
        assert len(keys) == 12 and set(keys.values()) == {1}, dataset
    basic = Counter((r["ccd"], r["quadrant"]) for r in rundir.read_dataset(out / "bias_basic").to_pylist())
    assert len(basic) == 12 and set(basic.values()) == {1}
    ron = scoring.ron_errors(out, day.truth)
    assert max(abs(r["relative_error"]) for r in ron) < 0.02  # and the answers are right
