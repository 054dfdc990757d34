"""The replay writes an acquisition over time: per ObsID its HK file, its frames, then its
EXP_LOG rows; stopped part-way the folder is caught mid-acquisition and reads with no format
error; run through, it reproduces the day folder byte for byte."""

from __future__ import annotations

from astroflow.arrivals import fits_complete

from steps.vison import elvis
from steps.vison.simulate_replay import acquisitions, replay


def test_stopped_part_way_the_folder_reads_as_mid_acquisition(vison_day, tmp_path):
    day, _ = vison_day
    waits = []
    written = replay(tmp_path, day.day_folder, stop_after=5, sleep=waits.append)
    folder = tmp_path / day.day_folder.name
    assert len(list(folder.glob("EUC_*.fits"))) == 15 and len(list(folder.glob("HK_4*_ROE1.txt"))) == 5
    log = elvis.read_explogs([folder])
    assert log.num_rows == 15 and sorted(set(log["ObsID"].to_pylist())) == list(range(40000, 40005))
    for path in folder.glob("EUC_*.fits"):
        elvis.read_frame(path)
    assert len(elvis.read_hk(folder / "HK_12-03-19_ROE1_01.txt").times) == 5 * 71
    assert len(waits) == 4 and all(0 < w <= 2.0 for w in waits)
    first = [p.name for p in written[:5]]
    assert first[0].startswith("HK_40000") and first[1:4] == sorted(first[1:4]) and first[4].startswith("EXP_LOG")


def test_a_full_replay_reproduces_the_folder(vison_faults, tmp_path):
    day, _ = vison_faults
    items, _, _ = acquisitions(day.day_folder)
    assert [a.obsid for a in items] == sorted(a.obsid for a in items)
    replay(tmp_path, day.day_folder, sleep=lambda s: None)
    folder = tmp_path / day.day_folder.name
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in day.day_folder.iterdir())
    for path in day.day_folder.iterdir():
        assert (folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_half_written_frames(vison_day, tmp_path):
    day, _ = vison_day
    seen = []

    def sleep(seconds):
        partial = sorted((tmp_path / day.day_folder.name).glob("EUC_*.fits"))
        if seconds == 0.5 and partial:
            seen.append(fits_complete(partial[-1]))

    replay(tmp_path, day.day_folder, stop_after=1, half_written_s=0.5, sleep=sleep)
    assert len(seen) == 3 and all(reason is not None for reason in seen)
