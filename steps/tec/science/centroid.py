"""Per-pixel transit depth and its significance (TEC runbook step 18, centroid_form_basic.py).

Each pixel's time series is detrended on its own (divided by a running median over a window of
several transit durations, in-transit cadences excluded from the median), then the in-transit
mean depth is compared with the out-of-transit scatter: ``significance = depth / (std_oot /
sqrt(N_in))``.  A signal on the target sits on the target's pixels; a background eclipsing
binary lights up pixels elsewhere.  The figure only (the ranking uses the DV centroid offsets).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter


def in_transit(time, period: float, epoch: float, duration_h: float, scale: float = 0.5) -> np.ndarray:
    """Cadences within ``scale`` x duration of a mid-transit (0.5: the transit itself)."""
    dt = np.mod(np.asarray(time, float) - epoch + 0.5 * period, period) - 0.5 * period
    return np.abs(dt) < scale * duration_h / 24.0


def pixel_significance(time, flux, valid, period: float, epoch: float, duration_h: float,
                       window_durations: float = 5.0) -> dict:
    """Median image, depth image (relative, positive = dimming) and significance image.

    ``flux`` is (n_cadences, ny, nx); ``valid`` (n_cadences,) marks usable cadences.  Pixels with
    no positive median flux give NaN.
    """
    time = np.asarray(time, float)
    flux = np.asarray(flux, float)
    ok = np.asarray(valid, bool) & np.isfinite(time) & np.all(np.isfinite(flux), axis=(1, 2))
    t, f = time[ok], flux[ok]
    n, ny, nx = f.shape
    if n < 10:
        raise ValueError(f"only {n} valid cadences in the pixel data")
    med_img = np.median(f, axis=0)
    intr = in_transit(t, period, epoch, duration_h)
    near = in_transit(t, period, epoch, duration_h, scale=1.5)
    cad = float(np.median(np.diff(t))) if n > 1 else 1.0
    width = max(3, int(round(window_durations * duration_h / 24.0 / cad)) | 1)
    depth = np.full((ny, nx), np.nan)
    signif = np.full((ny, nx), np.nan)
    if intr.sum() == 0 or (~near).sum() < 5:
        return {"median": med_img, "depth": depth, "significance": signif, "n_in": int(intr.sum())}
    for j in range(ny):
        for i in range(nx):
            y = f[:, j, i]
            if not np.median(y) > 0:
                continue
            base = y.copy()
            base[near] = np.interp(t[near], t[~near], y[~near])  # bridge the transits
            trend = median_filter(base, size=width, mode="nearest")
            rel = y / trend - 1.0
            oot = rel[~near]
            sd = np.std(oot)
            depth[j, i] = -np.mean(rel[intr])
            signif[j, i] = depth[j, i] / (sd / np.sqrt(intr.sum())) if sd > 0 else np.nan
    return {"median": med_img, "depth": depth, "significance": signif, "n_in": int(intr.sum())}
