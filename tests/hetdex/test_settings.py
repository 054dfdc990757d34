"""Configuration instead of the runbook's hand edits: IFU-to-spectrograph swaps."""

from __future__ import annotations

from astroflow import config, runner
from astroflow.rundir import read_dataset
from steps.hetdex import scoring
from steps.hetdex.pipeline import HETDEX


def test_ifu_swap_renames_the_calibrations(demo, tmp_path):
    """A swap in the configuration (readme.hist's hand edit) moves the IFU to another spectrograph
    from its date: the libraries and the bad-pixel table carry the new specid."""
    slot = next(iter(scoring.truth_amps(demo["data"])))[0]
    settings = {**demo["settings"], "ifu_swaps": [{"ifuslot": slot, "specid": "777", "since": "20240101"}]}
    cfg = config.resolve(HETDEX, settings=settings, runner={"workers": 1})
    result = runner.run(HETDEX, cfg, tmp_path, progress=False, until="bad_pixels")
    assert result.ok
    assert {r["specid"] for r in read_dataset(tmp_path / "master_bias").to_pylist()} == {"777"}
    assert len(list((tmp_path / "lib_calib/lib_pflat").glob("pixelflat_cam777_*.fits"))) == 4
    rows = (tmp_path / "lib_calib/lib_pflat/pix_mask.tab").read_text().splitlines()[1:]
    assert rows and all(r.startswith("777") for r in rows)
