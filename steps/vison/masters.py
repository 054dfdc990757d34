"""The vison master products (master bias, master dark) as FITS files in the frame's own layout,
registered in the calibration library, stamped with their provenance.

:func:`place` puts canonical quadrants back where the frame has them (the inverse of
:meth:`steps.vison.elvis.Frame.quadrant`); :func:`write_master` registers the product (its type,
matching attributes, observation date and frames), stamps each extension with
``ctx.stamp_fits`` (creation date, code version, pipeline, step, run, configuration hash, the
calibrations the item used) and writes it atomically.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from astropy.io import fits

from astroflow.atomic import atomic_path
from steps.vison import elvis


def place(quadrants: dict[str, np.ndarray], geometry: elvis.Geometry, dtype=np.float32, fill=np.nan) -> np.ndarray:
    """The frame (NAXIS2, NAXIS1) from canonical quadrants (each whole, or its image area only,
    the rest ``fill``): the inverse of :meth:`elvis.Frame.quadrant`."""
    h, w = geometry.height, geometry.width
    if next(iter(quadrants.values())).shape != (h, w):
        rows, cols = geometry.region("image")
        whole = {}
        for q, image in quadrants.items():
            whole[q] = np.full((h, w), fill, dtype=dtype)
            whole[q][rows, cols] = image
        quadrants = whole
    out = np.full(geometry.shape, fill, dtype=dtype)
    out[:h, :w] = quadrants["H"]
    out[h:, :w] = quadrants["E"][::-1, :]
    out[h:, w:] = quadrants["F"][::-1, ::-1]
    out[:h, w:] = quadrants["G"][:, ::-1]
    return out


def read_quadrants(path: Path, geometry: elvis.Geometry, extension: int = 1) -> dict[str, np.ndarray]:
    """A master's canonical quadrants (whole: prescan, image, overscans), checked against ``geometry``."""
    data = fits.getdata(path, extension).astype(np.float32)
    if data.shape != geometry.shape:
        raise elvis.ElvisFormatError(path, f"master of shape {data.shape}, the frames are {geometry.shape}")
    frame = elvis.Frame(Path(path), 0, dt.datetime(2000, 1, 1), 1, 0, fits.Header(), data, geometry)
    return {q: frame.quadrant(q) for q in elvis.QUADRANTS}


def write_master(ctx, ctype: str, relpath: Path, when: dt.datetime, attributes: dict, obsids: list[int],
                 extensions: list[tuple[np.ndarray, dict]]) -> Path:
    """Register ``relpath`` as a calibration of type ``ctype`` and write it: an empty primary HDU
    and one image extension per ``(data, cards)``, each with the provenance stamp."""
    path = ctx.register_calibration(ctype, relpath, when, attributes, frames=[str(o) for o in obsids])
    hdus = [fits.PrimaryHDU(header=ctx.stamp_fits(fits.Header()))]
    for data, cards in extensions:
        head = fits.Header()
        for key, value in cards.items():
            head[key] = value
        hdus.append(fits.ImageHDU(data, header=ctx.stamp_fits(head)))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path
