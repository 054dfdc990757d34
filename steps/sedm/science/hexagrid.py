"""The hexagonal spaxel grid from the trace positions (pysedm's ``HexaGrid``), found blind.

The lenslets of a TIGER-type IFU are imaged on the CCD as a hexagonal lattice: the trace
centres (one point per spaxel, its trace's middle) lie on ``origin + q a + r b`` with ``b`` the
vector ``a`` turned by 60 degrees.  :func:`fit_grid` finds it with no prior on the pitch or the
angle: the nearest-neighbour vectors of every point (those under 1.3 times the median nearest
distance) give the three lattice directions (the circular mean of six times their angle), ``a``
the one nearest the +x axis; the point nearest the centroid is the origin; each point takes the
rounded solution of ``P - origin = q a + r b``; ``origin``, ``a`` and ``b`` are then refitted
to every point by least squares and the indices rounded again.  The grid position of a spaxel in
spaxel units is the axial lattice ``(q + r / 2, r * sqrt(3) / 2)`` (the CCD lattice turned by
``-angle``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


class NoHexagonalGrid(ValueError):
    """The trace positions do not form a hexagonal lattice."""


@dataclass(frozen=True)
class HexaGrid:
    q: np.ndarray
    r: np.ndarray
    origin: np.ndarray  # px
    a: np.ndarray  # px, the first lattice vector
    b: np.ndarray  # px
    residual: np.ndarray  # px, each point from its lattice node

    @property
    def pitch(self) -> float:
        return float(np.hypot(*self.a))

    @property
    def angle_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.a[1], self.a[0])))

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid positions in spaxel units."""
        return self.q + 0.5 * self.r, self.r * np.sqrt(3.0) / 2.0


def fit_grid(points: np.ndarray, max_residual: float = 0.25) -> HexaGrid:
    """The lattice of ``points`` (n, 2) px; raises :class:`NoHexagonalGrid` when fewer than 7
    points are given, the neighbour directions are not hexagonal, or nodes repeat, or the mean
    residual passes ``max_residual`` of the pitch."""
    pts = np.asarray(points, float)
    if len(pts) < 7:
        raise NoHexagonalGrid(f"{len(pts)} trace positions: a hexagonal grid needs at least 7")
    tree = cKDTree(pts)
    dist, idx = tree.query(pts, k=7)
    nearest = float(np.median(dist[:, 1]))
    vec = (pts[idx[:, 1:]] - pts[:, None, :]).reshape(-1, 2)
    vec = vec[np.hypot(*vec.T) < 1.3 * nearest]
    theta = np.arctan2(vec[:, 1], vec[:, 0])
    phase = np.mean(np.exp(6j * theta))
    if abs(phase) < 0.8:
        raise NoHexagonalGrid(f"the neighbour directions are not sixfold (coherence {abs(phase):.2f})")
    phi0 = float(np.angle(phase) / 6.0)  # in (-30, 30] degrees
    a = _direction(vec, theta, phi0)
    b = _direction(vec, theta, phi0 + np.pi / 3)
    origin = pts[int(np.argmin(np.hypot(*(pts - pts.mean(axis=0)).T)))]
    for _ in range(2):
        qr = np.rint(np.linalg.solve(np.column_stack([a, b]), (pts - origin).T)).T
        design = np.column_stack([np.ones(len(pts)), qr])
        coef, *_ = np.linalg.lstsq(design, pts, rcond=None)
        origin, a, b = coef
    qr = np.rint(np.linalg.solve(np.column_stack([a, b]), (pts - origin).T)).T.astype(int)
    residual = np.hypot(*(pts - origin - qr @ np.vstack([a, b])).T)
    if len({tuple(v) for v in qr}) < len(qr):
        raise NoHexagonalGrid("two traces fall on one lattice node")
    if residual.mean() > max_residual * np.hypot(*a):
        raise NoHexagonalGrid(f"mean residual {residual.mean():.2f} px for a pitch of {np.hypot(*a):.1f} px")
    return HexaGrid(qr[:, 0], qr[:, 1], origin, a, b, residual)


def _direction(vec: np.ndarray, theta: np.ndarray, phi: float) -> np.ndarray:
    """The mean of the neighbour vectors along ``phi`` (those pointing the other way flipped)."""
    d = np.angle(np.exp(1j * (theta - phi)))
    along = np.abs(d) < np.radians(15)
    against = np.abs(np.abs(d) - np.pi) < np.radians(15)
    return np.concatenate([vec[along], -vec[against]]).mean(axis=0)
