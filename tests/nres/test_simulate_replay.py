"""Replaying simulated nights into a watched folder: observation order, pacing, half-written files."""

from __future__ import annotations

from astroflow.arrivals import fits_complete

from steps.nres.simulate_replay import arrivals, replay


def test_arrivals_come_in_observation_order_across_sites(nres_sim):
    items = list(arrivals(nres_sim.root))
    assert len(items) == len(nres_sim.table("frames"))
    times = [a.time for a in items]
    assert all(t is not None for t in times) and times == sorted(times)
    sites = [a.path.parts[0] for a in items]
    assert sites[0] == "cpt" and "lsc" in sites[: len(sites) // 2]  # the two sites' nights interleave
    first = items[0]
    assert first.data == (nres_sim.root / first.path).read_bytes()


def test_replay_paces_and_half_writes(nres_sim, tmp_path):
    out = tmp_path / "watched"
    seen = []

    def sleep(seconds):
        partial = [p for p in out.rglob("*.fits.fz")
                   if p.stat().st_size < (nres_sim.root / p.relative_to(out)).stat().st_size]
        seen.append((seconds, len(partial)))
        if partial:
            assert fits_complete(partial[0]) is not None  # a watcher sees an incomplete FITS file

    written = replay(out, nres_sim.root, speed=600.0, max_wait_s=1.5, half_written_s=0.0123, sleep=sleep)
    assert len(written) == len(nres_sim.table("frames"))
    for path in written:
        assert path.read_bytes() == (nres_sim.root / path.relative_to(out)).read_bytes()
    pauses = [s for s, _ in seen if s != 0.0123]
    assert max(pauses) == 1.5 and min(pauses) >= 0.0  # long gaps are cut to max_wait_s
    halves = [n for s, n in seen if s == 0.0123]
    assert len(halves) == len(written) and all(n == 1 for n in halves)  # each file waited half-written
