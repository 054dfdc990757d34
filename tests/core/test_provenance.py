"""Units in the Parquet schema and astroflow.read's QTable; provenance in FITS and HDF5 products;
a closed stdout pipe."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import astropy.units as u
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

import astroflow
from astroflow import config, executor, runner, units
from astroflow.errors import AstroflowError
from astroflow.registry import get_pipeline


def run_toy(run_dir, **settings):
    toy = get_pipeline("toy")
    cfg = config.resolve(toy, settings=settings, runner={"workers": 1})
    res = runner.run(toy, cfg, run_dir, progress=False)
    assert res.ok, res.steps
    return cfg


def test_read_returns_a_qtable_with_the_declared_units(tmp_path):
    run_toy(tmp_path)
    t = astroflow.read(tmp_path, "square")
    assert t["sq"].unit == u.m ** 2 and isinstance(t["sq"], u.Quantity)
    assert t["sq"].info.description.startswith("its square")
    assert t["i"].info.description == "the number" and t["i"].unit is None
    assert sorted(t["i"].tolist()) == [i for i in range(20) if i != 3]
    assert (t["sq"].to_value(u.m ** 2) == np.asarray(t["i"]) ** 2).all()
    part = next((tmp_path / "square").glob("part-*.parquet"))  # the file itself carries them
    assert units.unit_of(pq.read_schema(part).field("sq")) == "m2"
    small = astroflow.read(tmp_path, "square", columns=["i", "sq"], where={"i": [4, 5]})
    assert small.colnames == ["i", "sq"] and sorted(small["i"].tolist()) == [4, 5]
    assert astroflow.read(tmp_path, "total")["sum"][0] == sum(i * i for i in range(20)) - 9  # no units declared
    with pytest.raises(AstroflowError, match="no step 'nope'"):
        astroflow.read(tmp_path, "nope")


def test_units_survive_rows_given_as_tables_and_all_column_kinds():
    s = units.schema(units.column("p", pa.float64(), "d", "period"),
                     units.column("t", pa.list_(pa.float64()), "d", "ragged times"),
                     units.column("w", pa.list_(pa.float32()), "Angstrom", "a fixed grid"),
                     units.column("n", pa.int64(), "", "a count"), ("name", pa.string()))
    table = pa.table({"p": [1.5, None], "t": [[1.0, 2.0], [3.0]], "w": [[1.0, 2.0], [3.0, 4.0]], "n": [1, None],
                      "name": ["a", None]})
    q = units.to_qtable(units.annotate(table, s))
    assert q["p"].unit == u.d and np.isnan(q["p"][1].value)
    assert q["t"].unit == u.d and list(q["t"][1]) == [3.0]  # ragged: an object column with its unit
    assert q["w"].shape == (2, 2) and q["w"].unit == u.AA  # equal lengths: a 2-D Quantity
    assert q["n"].unit == u.dimensionless_unscaled and bool(q["n"].mask[1])
    assert q["name"].info.description is None and q["name"].mask[1]
    assert units.check(s) == [] and units.check(units.schema(units.column("x", pa.float64(), "furlongs"))) != []
    assert units.declared(units.with_units(pa.schema([("a", pa.float64())]), {"a": ("s", "exposure")})) == {
        "a": ("s", "exposure")}


def test_provenance_cards_and_attrs(tmp_path):
    cfg = run_toy(tmp_path / "run-s33")
    _, ctx = executor.context(tmp_path / "run-s33", "square")
    ctx.item_id = "7"
    ctx.calibrations_used["7"] = [{"type": "bias", "id": 12, "path": "/lib/masterbias_1.fits"}]
    cards = {k: (v, c) for k, v, c in ctx.provenance_cards()}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", cards["DATE"][0])  # the FITS standard's DATE
    assert cards["PIPEVER"][0] == runner.code_version() and cards["PIPELINE"][0] == "toy"
    assert cards["PIPESTEP"][0] == "square" and cards["RUNNAME"][0] == "run-s33"
    assert cards["CONFHASH"][0] == cfg.config_hash() == config.load(tmp_path / "run-s33").config_hash()
    assert cards["CALBIAS"][0] == "masterbias_1.fits"
    head = ctx.stamp_fits(fits.Header())
    path = tmp_path / "p.fits"
    fits.PrimaryHDU(header=head).writeto(path)
    assert fits.getheader(path)["CONFHASH"] == cfg.config_hash()
    with h5py.File(tmp_path / "p.h5", "w") as h:
        ctx.stamp_h5(h)
        ctx.calibrations_used["7"] = [{"type": "flat", "id": 3, "path": "/lib/flat.fits"}]
        ctx.stamp_h5(h)  # a file written from two items keeps both items' calibrations
    with h5py.File(tmp_path / "p.h5") as h:
        assert h.attrs["pipeline"] == "toy" and h.attrs["config_hash"] == cfg.config_hash()
        assert json.loads(h.attrs["calibrations"]) == {"bias": ["masterbias_1.fits"], "flat": ["flat.fits"]}


def test_config_hash_ignores_the_runner_and_the_code_version():
    toy = get_pipeline("toy")
    a = config.resolve(toy, settings={"n": 5}, runner={"workers": 1})
    b = config.resolve(toy, settings={"n": 5}, runner={"workers": 3})
    b.code_version = "other"
    assert a.config_hash() == b.config_hash() != config.resolve(toy, settings={"n": 6}).config_hash()


def test_a_closed_stdout_pipe_ends_quietly(tmp_path):
    """``astroflow status RUN --json | head``: no BrokenPipeError, exit status 0."""
    run_toy(tmp_path, n=400)
    proc = subprocess.Popen([sys.executable, "-m", "astroflow.cli", "status", str(tmp_path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "BrokenPipe" not in err and "Traceback" not in err, err


def test_long_names_fit_their_cards_without_a_warning():
    """A long run name or calibration file name cuts the comment, never the 80-column card
    (astropy would truncate with a VerifyWarning, or refuse)."""
    import warnings

    from astroflow.provenance import fitted

    header = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for card in [fitted("RUNNAME", "test_ifu_swap_renames_the_cali0", "astroflow run (the run directory's name)"),
                     fitted("CALWAVEL", "w" * 90, "WAVELENGTH id 3"), fitted("PIPESTEP", "rv", "astroflow step")]:
            header[card[0]] = card[1:]
            assert len(header.cards[card[0]].image) == 80
    assert header["CALWAVEL"] == "w" * 68 and header.comments["PIPESTEP"] == "astroflow step"
