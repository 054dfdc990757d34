"""Script writer and session builder (issue 12, item 3): ``astroflow vison mkscripts`` and
``astroflow vison mksession``.  CHECK_SUMS verify with md5sum; the inventory's totals are the sums
of what the scripts hold; the scripts re-read with openpyxl have the registers, cumulative frames
and End; mksession refuses missing, duplicated and altered scripts, naming them."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from astroflow.errors import ConfigError
from steps.vison import mkscripts, mksession
from steps.vison.science import scripts as sc

SERIALS = {"sn_ccd1": "14311-17-01", "sn_ccd2": "14461-11-02", "sn_ccd3": "CCD273-14471-10-01",
           "sn_roe": "FM15", "sn_rpsu": "FM16"}
FIRST_WAVE = ["BIAS01", "BIAS02", "DARK01", "PTC01", "PTC02WAVE", "NL02", "FLAT01", "CHINJ01", "TP01",
              "COSMETICS00"]
DAY = dt.date(2019, 4, 22)
TAG = "22Apr19"

# The cook-book's inputs, with its '#' comments, one inside a string, and a commented-out last
# entry that leaves a trailing comma.
INPUTS_JSON = """{
    "equipment": {
        "sn_roe": "FM15", # substitute NN with the right serial.
        "sn_rpsu": "FM16", # substitute NN with the right serial.
        "operator": "unk", # do not modify
        "sn_ccd1": "14311-17-01",
        "sn_ccd2": "14461-11-02",
        "sn_ccd3": "CCD273-14471-10-01"  # substitute NN with the right serial
    },
    "elvis": "7.5.X", # elvis version
    "CHAMBER": "B_NOSTROMO", # used to compute the exposure times
    "camptype": "Full",      # Always "Full" for FM Calibration campaign.
    "outpath": "%(out)s", # not a # comment inside a string
    "date": "2019-04-22",
    "toWrite": {   # 1 means write the script(s) and 0 do not write.
        %(tests)s
        "PSF01": 0,
        # "FOCUS00": 1,
    }
}
"""


def write_inputs(folder: Path, out: Path, tests=FIRST_WAVE) -> Path:
    path = folder / "scripts_inputs_NOSTROMO_APR19_W17.json"
    path.write_text(INPUTS_JSON % {"out": out, "tests": " ".join(f'"{t}": 1,' for t in tests)})
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mkscripts")
    out = folder / "Scripts_NOSTROMO_APR19_W17"
    assert mkscripts.main(["--inputs", str(write_inputs(folder, out))]) == 0
    return out


def script(out: Path, test: str) -> list[list]:
    return mkscripts.read_script(out / sc.script_name(test, DAY, "7.5.X"))


def value(table, key):
    i = table[0].index(key)
    return [col[i] for col in table[1:-1]]


def test_check_sums_verify_with_md5sum(written, tmp_path):
    if shutil.which("md5sum") is None:
        pytest.skip("md5sum not installed")
    sums = written / f"CHECK_SUMS_{TAG}.txt"
    run = subprocess.run(["md5sum", "-c", sums.name], cwd=written, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    checked = re.findall(r"^(vis_CalCamp_\S+\.xlsx): OK$", run.stdout, re.MULTILINE)
    assert sorted(checked) == sorted(p.name for p in written.glob("vis_CalCamp_*.xlsx"))
    assert len(checked) == 12  # ten labels, PTC02WAVE at three wavelengths
    copy = tmp_path / "copy"
    shutil.copytree(written, copy)
    altered = copy / sc.script_name("BIAS01", DAY, "7.5.X")
    altered.write_bytes(altered.read_bytes() + b"\0")
    run = subprocess.run(["md5sum", "-c", sums.name], cwd=copy, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and f"{altered.name}: FAILED" in run.stdout


def test_inventory_totals_are_the_scripts_frames_and_minutes(written):
    timing = json.loads(mkscripts.REGISTERS_FILE.read_text())["timing"]
    text = (written / f"TESTS_INVENTORY_{TAG}.txt").read_text()
    lines = re.findall(r"^(\S+): (\d+) \[([\d.]+) min\] (\d+) frames, cols: \[([\d, ]+)\]$", text, re.MULTILINE)
    assert len(lines) == 12
    total_frames = total_minutes = 0
    for test, ncols, minutes, nframes, per_col in lines:
        columns = sc.columns_of_table(script(written, test))
        frames = [c["frames"] for c in columns]
        assert [int(f) for f in per_col.split(",")] == frames
        assert int(ncols) == len(columns) and int(nframes) == sum(frames)
        assert script(written, test)[-2][0] == sum(frames)  # the last column's cumulative frames
        recomputed = sum(sc.column_seconds(c, timing) for c in columns) / 60
        assert float(minutes) == pytest.approx(recomputed, abs=0.005)
        total_frames += sum(frames)
        total_minutes += recomputed
    assert int(re.search(r"^ (\d+) Frames Total$", text, re.MULTILINE).group(1)) == total_frames
    assert float(re.search(r"^ ([\d.]+) Minutes Total$", text, re.MULTILINE).group(1)) == pytest.approx(total_minutes,
                                                                                                abs=0.005)
    # vison's chronos for BIAS01 by hand: 10 x (0.5 s invert flush + 2066 x 4 x 143 us flush
    # + 2086 lines x (4 x 1000 us + 14.3 us x 2128 px) + 20 s) = 934.9 s
    assert re.search(r"^BIAS01: 1 \[15\.58 min\] 10 frames", text, re.MULTILINE)
    assert f"checksumf: CHECK_SUMS_{TAG}.txt" in text and "chamber_B_NOSTROMO.json version 1" in text

    wb = load_workbook(written / f"TESTS_SCHEDULER_{TAG}.xlsx", read_only=True)
    rows = list(wb["Tests"].iter_rows(values_only=True))
    assert rows[0] == ("Test", "Ncols", "Nframes", "Duration_min")
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [(t, int(c), int(n)) for t, c, _, n, _ in lines]
    meta = dict(wb["Meta"].iter_rows(values_only=True))
    assert meta["Nframes"] == total_frames and meta["Total_duration"] == pytest.approx(total_minutes, abs=0.005)


def test_scripts_have_registers_cumulative_frames_and_end(written):
    registers = json.loads(mkscripts.REGISTERS_FILE.read_text())["registers"]["6.5.X"]
    tfwc800 = 3.5  # chamber_B_NOSTROMO.json, flat source at 800 nm
    bias = script(written, "BIAS01")
    assert bias[0] == registers["keys"] and len(bias) == 3 and bias[-1][0] == "End"
    assert all(v is None for v in bias[-1][1:])
    assert value(bias, "frames") == [10] and value(bias, "shuttr") == [0] and value(bias, "test") == ["BIAS01"]
    assert value(script(written, "BIAS02"), "rdmode") == ["rwd_bas_v"]

    ptc = script(written, "PTC01")
    per_col = [10] * 8 + [4] * 3
    assert value(ptc, "frames") == np.cumsum(per_col).tolist()
    pct = np.array([5, 10, 20, 30, 50, 70, 80, 90, 100, 110, 120])
    np.testing.assert_allclose(value(ptc, "exptime"), pct / 100 * tfwc800, atol=5e-4)
    assert set(value(ptc, "wave")) == {4}
    for key, serial in SERIALS.items():
        assert set(value(ptc, key)) == {serial}
    assert set(value(script(written, "PTC02_590"), "exptime")) >= {round(0.9 * 12.4, 3)}

    nl = script(written, "NL02")
    assert value(nl, "comments")[:4] == ["BGD", "STAB", "Fluence1", "STAB"]
    assert value(nl, "wave")[2] == 6 and value(nl, "wave")[1] == 5  # no filter (F6), 880 nm (F5)
    assert value(nl, "frames")[-1] == 3 + 1 + 8 * 5 + 11 * 5

    chinj = script(written, "CHINJ01")
    ig1 = value(chinj, "IG1_3_B")
    assert ig1 == value(chinj, "IG1_1_T") and len(ig1) == 42
    np.testing.assert_allclose(ig1[:21], np.arange(2.0, 7.01, 0.25))
    assert set(value(chinj, "id_dly")[:21]) == {1250} and set(value(chinj, "id_dly")[21:]) == {750}
    tp = script(written, "TP01")
    assert len(tp) == 2 + 42 and value(tp, "v_tpump").count(0) == 2
    assert value(tp, "v_tpmod")[1:5] == [123, 234, 341, 412] and value(tp, "toi_tp")[1:5] == [200] * 4


def test_mksession_builds_sessions_and_publishes(written, tmp_path):
    share = tmp_path / "MSSL3M_D5"
    share.mkdir()
    inputs = tmp_path / "sessions.yaml"
    inputs.write_text(f"inpath: {written}  # scripts from mkscripts\noutpath: {tmp_path / 'SEQ'}\n"
                      "sessions:\n  D11: [COSMETICS00, PTC02_730]  # no point source\n"
                      "  D12: [BIAS02, BIAS01, CHINJ01, TP01, PTC01, NL02, FLAT01, DARK01, PTC02_590, PTC02_880]\n")
    stale = tmp_path / "SEQ" / "D11" / "vis_CalCamp_OLD_01Jan19_v7.5.X.xlsx"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale")
    assert mksession.main(["--inputs", str(inputs), "--publish", str(share)]) == 0
    for folder in (tmp_path / "SEQ" / "D12", share / "D12"):
        sequence = (folder / "TEST_SEQUENCE_D12.txt").read_text().splitlines()
        assert [sc.parse_script_name(n)["test"] for n in sequence] == [
            "BIAS02", "BIAS01", "CHINJ01", "TP01", "PTC01", "NL02", "FLAT01", "DARK01", "PTC02_590", "PTC02_880"]
        assert all((folder / n).read_bytes() == (written / n).read_bytes() for n in sequence)
        if shutil.which("md5sum"):
            assert subprocess.run(["md5sum", "-c", "CHECK_SUMS_D12.txt"], cwd=folder, capture_output=True,
                                  check=False).returncode == 0
    assert not stale.exists()  # a rebuilt session holds exactly its scripts
    assert sorted(p.name for p in (share / "D11").iterdir()) == sorted(
        ["CHECK_SUMS_D11.txt", "TEST_SEQUENCE_D11.txt", sc.script_name("COSMETICS00", DAY, "7.5.X"),
         sc.script_name("PTC02_730", DAY, "7.5.X")])
    assert not [p for p in share.iterdir() if p.name.startswith(".")]


def test_mksession_refuses_missing_and_duplicated_scripts(written, tmp_path, capsys):
    scripts = tmp_path / "scripts"
    shutil.copytree(written, scripts)
    older = scripts / "vis_CalCamp_BIAS01_01Feb19_v7.5.X.xlsx"
    shutil.copyfile(scripts / sc.script_name("BIAS01", DAY, "7.5.X"), older)
    inputs = tmp_path / "sessions.json"
    inputs.write_text(json.dumps({"inpath": str(scripts), "outpath": str(tmp_path / "SEQ"),
                                  "sessions": {"D11": ["COSMETICS00", "FOCUS00_800"], "D12": ["BIAS02", "BIAS01"]}}))
    assert mksession.main(["--inputs", str(inputs)]) == 2
    err = capsys.readouterr().err
    assert "session D11: no script for test FOCUS00_800" in err
    assert (f"session D12: 2 scripts for test BIAS01 in {scripts}: {older.name}, "
            f"{sc.script_name('BIAS01', DAY, '7.5.X')}") in err
    assert "BIAS02" not in err and not (tmp_path / "SEQ").exists()  # nothing written

    older.unlink()
    altered = scripts / sc.script_name("BIAS02", DAY, "7.5.X")
    altered.write_bytes(altered.read_bytes() + b"\0")
    with pytest.raises(mksession.SessionError, match=f"script {altered} for test BIAS02 does not match"):
        mksession.build_sessions(mksession.SessionInputs(inpath=scripts, outpath=tmp_path / "SEQ",
                                                         sessions={"D12": ["BIAS02", "BIAS01"]}))
    with pytest.raises(mksession.SessionError, match="is not a folder"):
        mksession.build_sessions(mksession.SessionInputs(inpath=scripts, outpath=tmp_path / "SEQ",
                                                         sessions={"D12": ["BIAS01"]}), publish=tmp_path / "nope")


def test_comments_never_break_the_inputs(tmp_path):
    path = write_inputs(tmp_path, tmp_path / "out#W17", ["BIAS01", "PTC02_730"])
    inputs = mkscripts.validated(mkscripts.ScriptInputs, mkscripts.read_inputs(path), path)
    assert inputs.selected() == ["BIAS01", "PTC02_730"] and inputs.equipment.operator == "unk"
    assert str(inputs.outpath) == str(tmp_path / "out#W17")  # '#' inside a string is kept
    toml = tmp_path / "inputs.toml"
    toml.write_text(f'elvis = "7.5.2"  # a patch release of 7.5\nchamber = "A_JULES"\noutpath = "{tmp_path}/t"\n'
                    'tests = ["DARK01"]  # one test\n[equipment]  # serials\n'
                    + "".join(f'{k} = "{v}"\n' for k, v in SERIALS.items()))
    result = mkscripts.write_scripts(mkscripts.validated(mkscripts.ScriptInputs, mkscripts.read_inputs(toml), toml))
    assert result["scripts"] == [sc.script_name("DARK01", dt.datetime.now(dt.UTC).date(), "7.5.2")]
    assert result["nframes"] == 4


@pytest.mark.parametrize("change, message", [
    ({"equipment": {**SERIALS, "sn_ccd1": "14XXX-XX-XX"}}, "equipment.sn_ccd1: sn_ccd1 '14XXX-XX-XX' is the template"),
    ({"equipment": {**SERIALS, "sn_roe": "FMNN"}}, "sn_roe 'FMNN' is the template's placeholder"),
    ({"equipment": {**SERIALS, "sn_ccd2": "14311-17-01"}}, "the three CCD serials must differ"),
    ({"elvis": "5.0.0"}, "ELVIS version '5.0.0' has no register map"),
    ({"CHAMBER": "Z_NONE"}, "no chamber profile chamber_Z_NONE.json"),
    ({"toWrite": {"BIAS01": 1, "PSF01": 1}}, "test PSF01: astroflow does not write its script yet"),
    ({"toWrite": {"BIAS03": 1}}, "unknown test 'BIAS03'"),
    ({"chamber_version": 7}, "version 1, the inputs ask for version 7"),
])
def test_inputs_are_validated(tmp_path, change, message):
    data = {"equipment": SERIALS, "elvis": "7.5.X", "CHAMBER": "B_NOSTROMO", "outpath": str(tmp_path / "o"),
            "toWrite": {"BIAS01": 1}, **change}
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        mkscripts.write_scripts(mkscripts.validated(mkscripts.ScriptInputs, mkscripts.read_inputs(path), path))
    assert message in str(info.value)
    assert not (tmp_path / "o").exists()


# Frames of each first-wave structure: vison's defaults, as the issue gives them.
FRAMES = {"BIAS01": 10, "BIAS02": 10, "DARK01": 4, "PTC01": 92, "PTC02_590": 24, "PTC02_730": 24, "PTC02_880": 24,
          "NL02": 99, "FLAT01": 170, "CHINJ01": 42, "TP01": 42, "COSMETICS00": 10}


@pytest.mark.parametrize("chamber", mkscripts.chambers())
def test_every_chamber_profile_writes_every_first_wave_test(chamber, tmp_path):
    inputs = mkscripts.ScriptInputs(equipment=SERIALS, elvis="7.5.X", CHAMBER=chamber, outpath=tmp_path,
                                    tests=FIRST_WAVE)
    built = mkscripts.build(inputs)
    assert {name: sum(c["frames"] for c in cols) for name, cols in built.items()} == FRAMES
    profile = mkscripts.load_profile(inputs)
    assert [c["exptime"] for c in built["DARK01"]] == [565.0]
    assert built["COSMETICS00"][1]["exptime"] == round(0.5 * profile["tFWC_flat_s"]["800"], 3)


def test_a_structure_naming_no_register_is_a_named_error():
    reg_data = json.loads(mkscripts.REGISTERS_FILE.read_text())
    profile = json.loads(mkscripts.chamber_file("B_NOSTROMO").read_text())
    spec = {"common": {}, "columns": [{"frames": 2, "exptim": 1.0}]}
    with pytest.raises(sc.StructureError, match="DARK09: column spec 1: 'exptim' is not an ELVIS register"):
        sc.build_test("DARK09", spec, reg_data["registers"]["6.5.X"], profile, reg_data["sumwell"], {})
    spec = {"wave_nm": 640, "common": {}, "columns": [{"fluences": [50], "frames": 1}]}
    with pytest.raises(sc.StructureError, match="no flat-source full-well time at 640 nm"):
        sc.build_test("PTC09", spec, reg_data["registers"]["6.5.X"], profile, reg_data["sumwell"], {})


def test_a_second_date_in_the_same_outpath_is_warned(tmp_path):
    data = {"equipment": SERIALS, "elvis": "7.5.X", "CHAMBER": "B_NOSTROMO", "outpath": tmp_path, "tests": ["BIAS01"]}
    first = mkscripts.write_scripts(mkscripts.ScriptInputs(**data, date=DAY))
    assert first["warnings"] == []
    second = mkscripts.write_scripts(mkscripts.ScriptInputs(**data, date=DAY + dt.timedelta(days=1)))
    assert second["warnings"] and first["scripts"][0] in second["warnings"][0]
    assert len(mkscripts.find_scripts(tmp_path)["BIAS01"]) == 2
