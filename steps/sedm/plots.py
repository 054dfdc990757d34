"""The check plots of the afternoon calibrations: one value per spaxel at its trace's place on
the CCD (``{date}_wavesolution_dispersionmap.png``: the wavelength rms; ``{date}_flat3d.png``:
the throughput), the spaxels that are not good circled."""

from __future__ import annotations

import numpy as np

from astroflow.atomic import atomic_path


def trace_map(path, traces, values: np.ndarray, flagged: np.ndarray, *, title: str, label: str,
              limits: tuple[float, float] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([t.x_mid for t in traces])
    y = np.array([t.y_mid for t in traces])
    finite = values[np.isfinite(values)]
    lo, hi = limits or ((float(np.percentile(finite, 2)), float(np.percentile(finite, 98))) if finite.size
                        else (0.0, 1.0))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sc = ax.scatter(x, y, c=values, s=18, cmap="viridis", vmin=lo, vmax=hi)
    if flagged.any():
        ax.scatter(x[flagged], y[flagged], s=60, facecolors="none", edgecolors="red", label="not good")
        ax.legend(loc="upper right", fontsize="small")
    fig.colorbar(sc, ax=ax, label=label)
    ax.set_xlabel("trace centre column [px]")
    ax.set_ylabel("trace centre row [px]")
    ax.set_title(title, fontsize="medium")
    ax.set_aspect("equal")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
