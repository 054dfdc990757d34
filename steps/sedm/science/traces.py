"""Blind trace finding on a dome flat: each spaxel's short spectrum as a ridge, its centre line
and a polygon around it (pysedm's TraceMatch, found from the data alone).

``find_traces(image, columns)``: the image is smoothed along dispersion (x) over ``smooth`` px;
a pixel is on a ridge where it is a local maximum across dispersion (y) above ``nsigma`` times
the spread of the smoothed image about its median (robust: the image is mostly the dark gaps
between traces); ridge pixels connected in 8-connectivity form one piece.  For each piece at
least ``min_length`` px long, the flux-weighted centroid across dispersion of every column (the
unsmoothed image within ``half_window`` rows of the ridge, the lower end of the window as
background) is fitted with a straight line ``y = y_mid + tilt * (x - x_mid)`` with 4-sigma
rejection.  A trace whose lamp spectrum dips below the threshold breaks into pieces along one
line; two pieces are one trace when the second starts within ``max_gap`` columns after the first
ends, their lines meet within ``max_offset`` rows, and the gap between them is lit (its median
flux along the line above ``lit_sigma`` times the pixel noise: two spaxels' traces that follow
one another along a row have a dark gap).  Each trace's ends are then followed outwards along its
line while the light there (3 rows) is lit and until the smoothed light rises again (the next
trace on the row): the ridge threshold is relative to the whole image's spread, which in a dense
IFU is large, and cut the faint blue end of the independent sample's traces (128 of their ~237
px found before).  Nothing is assumed about the number, the spacing or the pattern of the traces.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage


@dataclass(frozen=True)
class Trace:
    x_min: int
    x_max: int  # inclusive
    x_mid: float
    y_mid: float
    tilt: float  # rows per column
    sigma: float  # px, cross-dispersion rms
    flux: float  # median flux per column (e-)
    rms: float  # px, scatter of the column centroids about the line
    pieces: int = 1

    def y(self, x) -> np.ndarray:
        return self.y_mid + self.tilt * (np.asarray(x, dtype=float) - self.x_mid)

    def polygon(self, width_sigma: float = 2.5) -> list[tuple[float, float]]:
        h = width_sigma * self.sigma
        a, b = self.x_min - 0.5, self.x_max + 0.5
        return [(a, float(self.y(a)) - h), (b, float(self.y(b)) - h), (b, float(self.y(b)) + h),
                (a, float(self.y(a)) + h)]


def find_traces(image: np.ndarray, columns: slice, *, smooth: int = 9, nsigma: float = 10.0, min_length: int = 10,
                half_window: int = 3, max_gap: int = 40, max_offset: float = 1.0, lit_sigma: float = 10.0) -> list[Trace]:
    data = np.asarray(image, dtype=np.float64)[:, columns]
    x_offset = columns.start or 0
    s = ndimage.uniform_filter1d(data, size=smooth, axis=1, mode="nearest")
    med = float(np.median(s))
    spread = float(mad_std(s))
    ridge = s > med + nsigma * max(spread, 1e-6)
    ridge[1:-1] &= (s[1:-1] >= s[:-2]) & (s[1:-1] > s[2:])
    ridge[[0, -1]] = False
    labels, _ = ndimage.label(ridge, structure=np.ones((3, 3)))
    dx = np.diff(data, axis=1)
    pixel_noise = float(mad_std(dx) / np.sqrt(2.0))
    ny, width = data.shape
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    keys = lab.astype(np.int64) * width + xs
    uniq, inv = np.unique(keys, return_inverse=True)
    y_ridge = np.rint(np.bincount(inv, ys) / np.bincount(inv)).astype(np.int64)
    col_lab, col_x = uniq // width, uniq % width
    offsets = np.arange(-half_window, half_window + 1)
    rows = np.clip(y_ridge[:, None] + offsets[None, :], 0, ny - 1)
    window = data[rows, col_x[:, None]]
    w = np.clip(window - np.minimum(window[:, :1], window[:, -1:]), 0.0, None)
    total = w.sum(axis=1)
    ok = total > 0
    cy = np.where(ok, (w * rows).sum(axis=1) / np.where(ok, total, 1.0), np.nan)
    cw = np.sqrt(np.where(ok, (w * (rows - cy[:, None]) ** 2).sum(axis=1) / np.where(ok, total, 1.0), np.nan))
    order = np.argsort(col_lab, kind="stable")
    bounds = np.searchsorted(col_lab[order], np.arange(1, labels.max() + 2))
    pieces = []
    for k in range(labels.max()):
        idx = order[bounds[k]:bounds[k + 1]]
        idx = idx[ok[idx]]
        if idx.size < min_length or col_x[idx].max() - col_x[idx].min() + 1 < min_length:
            continue
        pieces.append((col_x[idx].astype(float), cy[idx], cw[idx], total[idx]))
    fits_ = [_line(*p) for p in pieces]
    groups = _groups(data, pieces, fits_, max_gap, max_offset, lit_sigma * pixel_noise, ny)
    out = []
    for g in groups:
        pts = [np.concatenate([pieces[i][k] for i in g]) for k in range(4)]
        out.append(_extend(_trace(*pts, 0, len(g)), data, s, lit_sigma * pixel_noise, x_offset))
    return sorted(out, key=lambda t: (t.y_mid, t.x_mid))


def _extend(t: Trace, data: np.ndarray, smoothed: np.ndarray, lit_level: float, x_offset: int,
            rise: float = 0.2) -> Trace:
    """The trace's ends moved outwards along its line over the faint end of its spectrum that the
    ridge threshold left out (in a dense IFU the spread of the image is large, and a dome lamp's
    blue end is faint): column by column while the light on the line (3 rows) is lit, and until
    the smoothed light rises again by more than ``rise`` of its lowest value (the next trace on
    the row), the end put back at that lowest point."""
    ny, width = data.shape
    ends = []
    for start, step in ((t.x_min, -1), (t.x_max, 1)):
        x, end = start + step, start
        low, low_x = np.inf, start
        while 0 <= x < width:
            yc = int(np.rint(t.y(x)))
            if not 1 <= yc < ny - 1:
                break
            if data[yc - 1:yc + 2, x].sum() <= lit_level * np.sqrt(3.0):
                break
            v = smoothed[yc, x]
            if v > low * (1.0 + rise) + lit_level:
                end = low_x
                break
            if v < low:
                low, low_x = v, x
            end = x
            x += step
        ends.append(end)
    return replace(t, x_min=int(ends[0]) + x_offset, x_max=int(ends[1]) + x_offset, x_mid=t.x_mid + x_offset)


def _line(cx, cy, cw, cf):
    """(x_mid, y_mid, tilt, keep) of a straight-line fit with 4-sigma rejection."""
    keep = np.ones(cx.size, bool)
    for _ in range(5):
        xm = float(np.average(cx[keep], weights=cf[keep]))
        tilt, y_mid = np.polyfit(cx[keep] - xm, cy[keep], 1, w=np.sqrt(cf[keep]))
        resid = cy - (y_mid + tilt * (cx - xm))
        sd = float(np.std(resid[keep]))
        new = np.abs(resid) < max(4.0 * sd, 0.05)
        if (new == keep).all():
            break
        keep = new
    return xm, float(y_mid), float(tilt), keep


def _groups(data, pieces, lines, max_gap, max_offset, lit_level, ny) -> list[list[int]]:
    """Pieces joined into traces (union of lit, collinear, short-gap successors)."""
    n = len(pieces)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    x_min = np.array([p[0].min() for p in pieces]) if n else np.zeros(0)
    x_max = np.array([p[0].max() for p in pieces]) if n else np.zeros(0)
    for i in range(n):
        xm, ym, tilt, _ = lines[i]
        gap = x_min - x_max[i]
        cand = np.nonzero((gap >= 1) & (gap <= max_gap))[0]
        best, best_d = None, max_offset
        for j in cand:
            xj = 0.5 * (x_max[i] + x_min[j])
            xmj, ymj, tj, _ = lines[j]
            d = abs((ym + tilt * (xj - xm)) - (ymj + tj * (xj - xmj)))
            if d < best_d:
                best, best_d = j, d
        if best is None:
            continue
        xs = np.arange(int(x_max[i]) + 1, int(x_min[best]))
        rows = np.clip(np.round(ym + tilt * (xs - xm)).astype(int), 0, ny - 1)
        if xs.size == 0 or np.median(data[rows, xs]) > lit_level:
            parent[root(best)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _trace(cx, cy, cw, cf, x_offset, n_pieces) -> Trace:
    xm, y_mid, tilt, keep = _line(cx, cy, cw, cf)
    resid = cy - (y_mid + tilt * (cx - xm))
    return Trace(x_min=int(cx.min()) + x_offset, x_max=int(cx.max()) + x_offset, x_mid=xm + x_offset, y_mid=y_mid,
                 tilt=tilt, sigma=float(np.median(cw[keep])), flux=float(np.median(cf[keep])),
                 rms=float(np.std(resid[keep])), pieces=n_pieces)
