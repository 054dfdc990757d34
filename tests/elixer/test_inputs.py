"""Detections files that are not what they seem: a named error with the file and the dataset, before
any work, recorded for ``astroflow status`` (issue 16)."""

import json
from pathlib import Path

import h5py
import pytest

from astroflow.cli import main as astroflow
from astroflow.status import collect, render_text
from steps.elixer.detfile import DetectionsFileError, check_layout


def _copy_without(src: Path, dst: Path, drop: str) -> Path:
    with h5py.File(src) as f, h5py.File(dst, "w") as g:
        for k in f:
            if k != drop:
                f.copy(k, g)
    return dst


@pytest.fixture(scope="module")
def bad_files(sim_small, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    src = Path(sim_small["detections"])
    data = src.read_bytes()
    (d / "truncated.h5").write_bytes(data[: len(data) // 2])
    (d / "not_hdf5.h5").write_text("detectid,wave\n1,4000\n")
    with h5py.File(src) as f, h5py.File(d / "no_flux_err.h5", "w") as g:
        for k in ("Spectra", "Fibers"):
            f.copy(k, g)
        det = f["Detections"][:]
        names = [n for n in det.dtype.names if n != "flux_err"]
        g.create_dataset("Detections", data=det[names])
    return {"no_fibers": _copy_without(src, d / "no_fibers.h5", "Fibers"),
            "no_spectra": _copy_without(src, d / "no_spectra.h5", "Spectra"),
            "truncated": d / "truncated.h5", "not_hdf5": d / "not_hdf5.h5", "no_flux_err": d / "no_flux_err.h5"}


@pytest.mark.parametrize("case, dataset, words", [
    ("no_fibers", "/Fibers", "missing"),
    ("no_spectra", "/Spectra", "missing"),
    ("truncated", "/Detections, /Spectra, /Fibers", "truncated"),
    ("not_hdf5", "/Detections, /Spectra, /Fibers", "not HDF5"),
    ("no_flux_err", "/Detections", "flux_err"),
])
def test_layout_check_names_file_and_dataset(bad_files, case, dataset, words):
    with pytest.raises(DetectionsFileError) as err:
        check_layout(bad_files[case])
    assert err.value.path == str(bad_files[case])
    assert err.value.dataset == dataset and words in str(err.value)


def test_good_file_passes(sim_small):
    counts = check_layout(sim_small["detections"])
    assert counts["Detections"] == 12 and counts["Spectra"] == 12 and counts["Fibers"] > 12


@pytest.mark.parametrize("case, dataset", [("no_fibers", "/Fibers"), ("no_spectra", "/Spectra"),
                                           ("truncated", "/Detections, /Spectra, /Fibers")])
def test_run_fails_before_any_work_and_status_shows_it(bad_files, tmp_path, case, dataset):
    out = tmp_path / "run"
    rc = astroflow(["elixer", "run", "--detections", str(bad_files[case]), "--out", str(out), "--workers", "1",
                    "--no-progress"])
    assert rc != 0
    failure = json.loads((out / "classify" / "_failure.json").read_text())
    assert failure["error_type"] == "DetectionsFileError"
    assert failure["file"] == str(bad_files[case]) and failure["message"].startswith(dataset)
    assert not (out / "reports").exists() or not any((out / "reports").iterdir())  # nothing was drawn
    assert not (out / "elixer_cat.h5").exists()
    text = render_text(collect(out))
    assert "DetectionsFileError" in text and dataset in text and str(bad_files[case]) in text
