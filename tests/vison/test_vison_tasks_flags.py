"""The Task registry's name rules, the flag bits and the settings' validation."""

from __future__ import annotations

import pytest
from conftest import task_flags
from pydantic import ValidationError

from steps.vison import flags, tasks
from steps.vison.settings import VisonSettings


def test_specific_names_resolve_to_generic_tasks():
    assert tasks.resolve("BIAS01") is tasks.BIAS0X and tasks.resolve("BIAS02") is tasks.BIAS0X
    assert tasks.generic("BIAS02_fwd") == "BIAS02" and tasks.resolve("bias01_retake") is tasks.BIAS0X
    assert tasks.generic("PTC02_730") == "PTC02WAVE"
    assert tasks.structure("BIAS02_x").frames == 10
    assert tasks.resolve("PTC01") is tasks.PTC0X and tasks.structure("PTC01").frames == 92
    assert [n for _, n in tasks.structure("PTC01").levels] == [10] * 8 + [4] * 3
    assert tasks.resolve("DARK01") is tasks.DARK01 and tasks.structure("DARK01").exptime == 565.0
    assert tasks.resolve("PTC02_730") is tasks.PTC02WAVE
    with pytest.raises(tasks.UnknownTest, match="no Task implemented yet"):
        tasks.resolve("CHINJ02_ig1")
    with pytest.raises(tasks.UnknownTest, match="names no vison Task"):
        tasks.resolve("FOO01")


def test_flag_bits_are_vison_s():
    expected = {"MISSDATA": 0, "POORQUALDATA": 1, "BADDATA": 2, "WRONG_ROE_CONF": 4, "HK_OOL": 8, "CCDTEMP_OOL": 9,
                "RON_OOL": 18, "FLUENCE_OOL": 19, "SUBTASKCRASH": 26, "BADFIT": 27, "SATURATION": 28,
                "LOSTPIXELS": 29}
    for name, bit in expected.items():
        assert flags.FLAGS[name] == 2**bit
    assert len(set(flags.FLAGS.values())) == len(flags.FLAGS)
    mask = flags.value(["MISSDATA", "RON_OOL"])
    assert mask == 2**0 + 2**18 and flags.names(mask) == ["MISSDATA", "RON_OOL"]
    book = flags.FlagBook()
    book.add("RON_OOL", "basic", "RON", ccd=2, quadrant="F", value=1.52, limit=(0.86, 1.44))
    book.add("HK_OOL", "hk", "CCD1_OD_T", ccd=2)
    assert book.mask(2, "F") == flags.value(["RON_OOL", "HK_OOL"]) and book.mask(2, "E") == flags.FLAGS["HK_OOL"]
    assert str(book.of(2, "F")[0]) == "RON_OOL [basic] CCD2 F: RON = 1.52 (limit [0.86, 1.44])"
    with pytest.raises(KeyError):
        book.add("NOT_A_FLAG", "x", "y")


def test_settings_refuse_unknown_tests_serials_and_offset_keys(sample):
    base = {"data_root": str(sample), "tests": ["BIAS01"]}
    assert VisonSettings(**base).folders() == [sample]
    with pytest.raises(ValidationError, match="names no vison Task"):
        VisonSettings(**{**base, "tests": ["FOO"]})
    with pytest.raises(ValidationError, match="serial keys"):
        VisonSettings(**base, serials={"CCD4": "x"})
    with pytest.raises(ValidationError, match="offset keys"):
        VisonSettings(**base, limits={"offsets_adu": {"CCD1_Z": 1.0}})
    assert VisonSettings(data_root=str(sample.parent), tests=["BIAS01"]).folders() == [sample]


@pytest.mark.parametrize("task", ["CHINJ01", "TP01"])
def test_flags_of_a_complete_injection_task(vison_injection_run, task):
    task_flags(vison_injection_run[0], task, {"MISSDATA", "BADDATA", "WRONG_ROE_CONF", "SUBTASKCRASH", "BADFIT",
                                              "POORQUALDATA", "SATURATION", "LOSTPIXELS"})
