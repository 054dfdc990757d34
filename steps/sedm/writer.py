"""Where SEDM products go, and the one way they are written: never under a raw root.

The night directory is ``{redux_root}/{date}`` (pysedm's ``/scr2/sedmdrp/redux/20180907``), or
``RUN/redux/{date}`` when no reduced root is configured.  Every product and every link passes
:func:`guard`: a path that is, or resolves (links followed) to, a place inside one of the
settings' raw roots is refused with :class:`RawDataWrite`, so a link in the night directory can
never be written through into the raw frame it points to.  Files are written atomically
(:mod:`astroflow.atomic`); links are made under a temporary name and renamed into place.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.errors import AstroflowError


class RawDataWrite(AstroflowError):
    """A step tried to write inside a raw-data root."""


def night_dir(settings) -> Path:
    """The night directory, relative to the run directory (no reduced root) or absolute."""
    if settings.redux_root is None:
        return Path("redux") / settings.date
    return Path(os.path.abspath(settings.redux_root)) / settings.date


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def guard(path: str | Path, raw_roots) -> Path:
    """``path`` itself, unless it (or, links followed, what it resolves to) lies in a raw root."""
    path = Path(os.path.abspath(path))
    candidates = {path, Path(os.path.realpath(path.parent)) / path.name}
    if path.is_symlink() or path.exists():
        candidates.add(Path(os.path.realpath(path)))
    for root in raw_roots:
        for r in {Path(os.path.abspath(root)), Path(os.path.realpath(root))}:
            for c in candidates:
                if _inside(c, r):
                    raise RawDataWrite(f"refusing to write {path}: it is inside the raw data root {root} "
                                       "(raw data is read-only)")
    return path


def product(ctx, name: str) -> Path:
    """The path of a product ``name`` in the night directory, recorded for the ledger and guarded."""
    path = ctx.product(night_dir(ctx.settings) / name)
    return guard(path, ctx.settings.raw_roots())


def write_fits(path: Path, raw_roots, hdus: list) -> Path:
    guard(path, raw_roots)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


def header_wavelengths(head, n: int) -> np.ndarray:
    """The linear vacuum wavelength grid (A) that a product's CRVAL1, CDELT1 and CRPIX1 (default 1) name."""
    return head["CRVAL1"] + head["CDELT1"] * (np.arange(n) + 1 - head.get("CRPIX1", 1.0))


def image_hdu(data: np.ndarray, header: fits.Header | None = None, primary: bool = True, name: str | None = None):
    cls = fits.PrimaryHDU if primary else fits.ImageHDU
    hdu = cls(np.ascontiguousarray(data), header=header)
    if name and not primary:
        hdu.name = name
    return hdu


def link(target: Path, path: Path, raw_roots) -> Path:
    """A symbolic link ``path`` -> ``target`` (kept when it already points there)."""
    guard(path, raw_roots)
    target = Path(os.path.abspath(target))
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.link-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.symlink(target, tmp)
    os.replace(tmp, path)
    return path
