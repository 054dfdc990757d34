"""``astroflow vison config-check FILE`` (the core's CLI pattern: a tool of the vison pipeline): the
configuration against the data before any work; a missing day folder fails there."""

from __future__ import annotations

import json

from astroflow.cli import main


def _config(tmp_path, sample, extra: str = "") -> str:
    path = tmp_path / "vison.toml"
    path.write_text(f'[settings]\ndata_root = "{sample.parent}"\ntests = ["BIAS01", "DARK01"]\n'
                    f'serials = {{CCD2 = "CCD273-00000-00-00"}}\n{extra}')
    return str(path)


def test_a_good_configuration_passes_with_what_is_not_acquired_yet(tmp_path, sample, capsys):
    assert main(["vison", "config-check", _config(tmp_path, sample), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["problems"] == []
    assert any("DARK01: not in the EXP_LOG" in w for w in out["warnings"])
    assert any("CCD2 serial in the EXP_LOG (CCD273-14461-11-02)" in w for w in out["warnings"])


def test_a_missing_day_folder_fails_naming_it(tmp_path, sample, capsys):
    path = _config(tmp_path, sample, f'day_folders = ["{sample.name}", "03_Mar_19"]\n')
    assert main(["vison", "config-check", path]) == 2
    err = capsys.readouterr().err
    assert "day folder" in err and "03_Mar_19 does not exist" in err


def test_an_invalid_configuration_fails_before_the_data(tmp_path, sample, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f'[settings]\ndata_root = "{sample}"\ntests = ["FOO01"]\n')
    assert main(["vison", "config-check", str(path)]) == 2
    assert "names no vison Task" in capsys.readouterr().err


def test_cosmetics_without_a_block_is_warned(tmp_path, sample, capsys):
    path = tmp_path / "vison.toml"
    path.write_text(f'[settings]\ndata_root = "{sample.parent}"\ntests = ["COSMETICS00"]\n')
    assert main(["vison", "config-check", str(path), "--json"]) == 0
    assert any(w.startswith("block not set") for w in json.loads(capsys.readouterr().out)["warnings"])
    path.write_text(f'[settings]\ndata_root = "{sample.parent}"\ntests = ["COSMETICS00"]\nblock = "NAB"\n')
    assert main(["vison", "config-check", str(path), "--json"]) == 0
    assert not any(w.startswith("block") for w in json.loads(capsys.readouterr().out)["warnings"])

