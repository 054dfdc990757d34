"""Shared readers of the run's TCE table for the TEC steps (no science here)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from steps.tec.products import find_products

EPHEMERIS = ["tic", "planet_number", "ra", "dec", "mes", "eph_period", "eph_epoch", "eph_duration_h",
             "eph_depth_ppm", "pulsedur"]


def tce_rows(ctx, extra: list[str] | None = None) -> list[dict]:
    """TCEs sorted by (tic, planet_number) with the ephemeris as ``period, epoch, duration``."""
    rows = ctx.rows("gather", columns=EPHEMERIS + (extra or []))
    for r in rows:
        r.update(period=r["eph_period"], epoch=r["eph_epoch"], duration=r["eph_duration_h"])
    return sorted(rows, key=lambda r: (r["tic"], r["planet_number"]))


def data_span(ctx) -> tuple[float, float]:
    """First and last valid time (BTJD) over the binned light curves of the run."""
    times = ctx.table("resample", columns=["time"]).column("time")
    flat = pc.list_flatten(times)
    lo, hi = pc.min(flat).as_py(), pc.max(flat).as_py()
    if lo is None or not np.isfinite([lo, hi]).all():
        raise ValueError("no valid time in the resampled light curves")
    return float(lo), float(hi)


def sector_products(ctx, kind: str, sector=None) -> dict:
    """The run's products of one kind (:func:`find_products`; ``sector`` defaults to the DV
    sectors), the data root's files recorded for the ledger: a product that appears later makes
    the step's item list stale."""
    s = ctx.settings
    return find_products(ctx.lists(s.data_root), s.dv_sectors if sector is None else sector, kind, s.naming())


def product_items(ctx, kind: str) -> list[dict]:
    """One item per TIC for a kind of DV product of the run's sector(s) (``tic``, ``path``)."""
    return [{"tic": tic, "path": str(path)} for tic, path in sector_products(ctx, kind).items()]
