"""``redex --display``: the spaxels inside a drawn outline, and no window without a display."""

from __future__ import annotations

import numpy as np

from steps.sedm.draw_region import spaxels_inside
from steps.sedm.redex import main


def test_the_spaxels_inside_the_outline():
    x, y = np.meshgrid(np.arange(-3.0, 4.0), np.arange(-3.0, 4.0))
    x, y = x.ravel(), y.ravel()
    square = [(-1.5, -1.5), (1.5, -1.5), (1.5, 1.5), (-1.5, 1.5)]
    inside = spaxels_inside(x, y, square)
    assert len(inside) == 9 and all(abs(x[i]) <= 1 and abs(y[i]) <= 1 for i in inside)
    triangle = [(0.5, -0.5), (3.5, -0.5), (3.5, 2.5)]  # (1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2)
    assert sorted((int(x[i]), int(y[i])) for i in spaxels_inside(x, y, triangle)) == [
        (1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    assert spaxels_inside(x, y, [(0, 0), (1, 1)]) == []  # a click, not an outline


def test_without_a_display_it_says_so_and_names_region(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["04_05_10", "--run", str(tmp_path), "--display", "--reject"]) == 2
    err = capsys.readouterr().err
    assert "--display needs a display" in err and "--region SPEC|FILE" in err
