"""``astroflow sedm redex HH_MM_SS --display``: draw the extraction region on the IFU by hand.

Replaces the runbook's region-drawing window of pysedm's ``extractstar.py --display`` ("a window
appears in which you can draw a region around the target").  The frame's cube summed over the
PSF band (4000-8000 A) is shown spaxel by spaxel, with the earlier extraction's centroid; the
person draws a lasso around the target and closes the window; the spaxels whose centres fall
inside the drawn outline are the region (``--region``).  It needs a display: without ``DISPLAY``
(or ``WAYLAND_DISPLAY``) it says so and names ``--region`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from astroflow.errors import ConfigError

BAND = (4000.0, 8000.0)


def spaxels_inside(x: np.ndarray, y: np.ndarray, outline) -> list[int]:
    """The indices of the spaxels whose centres (``x``, ``y``) fall inside the closed polygon
    ``outline`` (a sequence of (x, y) vertices), sorted."""
    from matplotlib.path import Path as Polygon

    vertices = np.asarray(outline, dtype=float)
    if vertices.ndim != 2 or len(vertices) < 3:
        return []
    inside = Polygon(vertices).contains_points(np.column_stack([x, y]))
    return [int(i) for i in np.flatnonzero(inside)]


def require_display() -> None:
    """A ``ConfigError`` naming ``--region`` where no display is there to draw on."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("--display needs a display (DISPLAY is not set): give the region as --region SPEC|FILE")


def draw(cube_path: Path, title: str, centroid: tuple[float, float] | None = None) -> list[int]:
    """Show the cube's IFU image, let the person lasso the target, return the spaxels inside."""
    require_display()
    import matplotlib

    try:
        matplotlib.use("TkAgg", force=True)
    except ImportError as exc:
        raise ConfigError(f"--display needs a window toolkit (tkinter: {exc}): give the region as --region") from None
    import matplotlib.pyplot as plt
    from matplotlib.widgets import LassoSelector

    from steps.sedm.cube import read_cube

    cube = read_cube(cube_path)
    band = (cube["wavelength"] >= BAND[0]) & (cube["wavelength"] <= BAND[1])
    image = np.nansum(cube["flux"][band], axis=0)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.scatter(cube["x"], cube["y"], c=image, s=120, marker="h", cmap="viridis")
    if centroid is not None:
        ax.plot(*centroid, "rx", ms=12, label="earlier centroid")
        ax.legend(loc="upper right")
    ax.set(title=f"{title}: draw around the target, then close the window", xlabel="arcsec east",
           ylabel="arcsec north", aspect="equal")
    drawn: list = []
    selector = LassoSelector(ax, onselect=lambda verts: drawn.__setitem__(slice(None), verts))
    plt.show()
    selector.disconnect_events()
    region = spaxels_inside(cube["x"], cube["y"], drawn)
    if not region:
        raise ConfigError("no region drawn (no spaxel inside the outline): nothing redone")
    return region
