"""Hera is an optional dependency (the `argo` extra): the step images do not carry it, and the
commands that need it say so in one line and exit 2 instead of failing with a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

import astroflow
from astroflow import cli


@pytest.fixture
def without_hera(monkeypatch):
    monkeypatch.delattr(astroflow, "argo", raising=False)
    monkeypatch.delitem(sys.modules, "astroflow.argo", raising=False)
    for name in [m for m in sys.modules if m == "hera" or m.startswith("hera.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hera", None)  # `import hera` now raises ImportError


@pytest.mark.parametrize("argv", [["render", "tec", "--out", "OUT"], ["submit", "tec"]])
def test_render_and_submit_without_hera_exit_2_with_the_install_hint(without_hera, tmp_path, capsys, argv):
    argv = [str(tmp_path / "x") if a == "OUT" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "needs Hera" in err and "pip install 'astroflow[argo]'" in err
    assert not (tmp_path / "x").exists()


def test_every_pipeline_loads_without_hera():
    """In a fresh interpreter where `import hera` fails, as in the step images."""
    code = ("import sys; sys.modules['hera'] = None\n"
            "from astroflow.registry import PIPELINES, get_pipeline\n"
            "assert all(get_pipeline(p).steps for p in PIPELINES), PIPELINES\n"
            "assert not any(m.startswith('hera') for m in sys.modules if sys.modules[m] is not None)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
