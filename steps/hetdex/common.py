"""Helpers the HETDEX steps share: the frame inventory, amp names, FITS products, calibration loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError
from steps.hetdex import library
from steps.hetdex.rawdata import read_frame
from steps.hetdex.science import ccd


def multiframe(specid: str, ifuslot: str, ifuid: str, amp: str) -> str:
    return f"multi_{specid}_{ifuslot}_{ifuid}_{amp}"


def frames(ctx, **where) -> list[dict]:
    """Inventory rows (one per amplifier frame) matching ``where`` (column == value, or in a
    list); specid and ifuid are the configured swaps' (``ifu_swaps``), not the headers'."""
    wanted = {k: list(v) if isinstance(v, (list, tuple, set)) else [v] for k, v in where.items()}
    where = {k: v for k, v in wanted.items() if k not in ("specid", "ifuid")}  # those after the swaps
    rows = ctx.rows("inventory", where=where or None)
    for r in rows:
        r["specid"], r["ifuid"] = ctx.settings.mapping(r["ifuslot"], r["date"], r["specid"], r["ifuid"])
    rows = [r for r in rows if all(r[k] in wanted[k] for k in ("specid", "ifuid") if k in wanted)]
    return sorted(rows, key=lambda r: (r["date"], r["obs"], r["exp"]))


def month_selected(ctx, month: str) -> bool:
    return not ctx.settings.months or month in ctx.settings.months


def write_fits(path: Path, hdus: list, *, ctx) -> Path:
    """Write ``hdus`` atomically, the primary header stamped with the item's provenance (DATE,
    PIPEVER, RUNNAME, CONFHASH, CAL<TYPE>...: :mod:`astroflow.provenance`)."""
    ctx.stamp_fits(hdus[0].header)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


def mbias_name(specid: str, contid: str, amp: str) -> str:
    return f"masterbias_{specid}_{contid}_{amp}.fits"


def pflat_name(specid: str, amp: str) -> str:
    return f"pixelflat_cam{specid}_{amp}.fits"


def cal_name(ifuslot: str, specid: str, amp: str) -> str:
    return f"cal_{ifuslot}_{specid}_{amp}.fits"


def bkg_name(specid: str, amp: str) -> str:
    return f"bkg_{specid}_{amp}.fits"


def load_master_bias(ctx, row: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """(smoothed master bias, trap mask, read noise ADU) for a frame's night, controller and amp."""
    path = ctx.calibration("bias", library.night(row["date"]), specid=row["specid"], contid=row["contid"], amp=row["amp"])
    with fits.open(path) as h:
        mb = h[0].data.astype(np.float32)
        mask = h["TRAPMASK"].data.astype(bool)
        rn = float(h[0].header.get("RDNOISE", 4.0))
    return mb, mask, rn


def load_pixel_flat(ctx, row: dict) -> np.ndarray | None:
    try:
        path = ctx.calibration("pixflat", library.night(row["date"]), specid=row["specid"], amp=row["amp"])
    except ItemError:
        return None
    return fits.getdata(path).astype(np.float32)


def processed(ctx, row: dict, mbias: np.ndarray | None = None, pflat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A frame trimmed, overscan and bias subtracted, flat-fielded, in electrons; and its variance.

    Pixels of the trap mask and of zero pixel flat are NaN.
    """
    raw = read_frame(ctx.uses(row["tar"]), row["member"])
    mbias, trapmask, rn = load_master_bias(ctx, row) if mbias is None else (mbias, np.zeros_like(mbias, bool), 4.0)
    img = (ccd.trim(raw) - mbias) * row["gain"]
    var = np.maximum(img, 0) + (rn * row["gain"]) ** 2
    if pflat is not None:
        bad = pflat <= 0
        img = np.where(bad, np.nan, img / np.where(bad, 1, pflat))
        var = np.where(bad, np.nan, var / np.where(bad, 1, pflat) ** 2)
    img[trapmask] = np.nan
    var[trapmask] = np.nan
    return img.astype(np.float32), var.astype(np.float32)
