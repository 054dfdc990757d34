"""The HETDEX detections file (``detect_<rel>.h5``, hetdex_api layout) as ELiXer reads it.

Tables ``/Detections`` (one row per line detection), ``/Spectra`` (detectid + 1036-pixel arrays on
the 3470 + 2 i A grid, in 1e-17 erg/s/cm^2 per 2 A pixel) and ``/Fibers`` (the fibers of each
detection, with weights).  Fixed-length byte strings, compound datasets; any writer of that layout
(hetdex_api's h5tools, the reduction pipeline, :mod:`steps.elixer.simulate`) will do.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from astroflow.errors import ItemError

DETECTION_FIELDS = [
    ("detectid", "<i8"), ("shotid", "<i8"), ("date", "<i4"), ("obsid", "<i4"), ("fiber_id", "S38"),
    ("ra", "<f4"), ("dec", "<f4"), ("wave", "<f4"), ("wave_err", "<f4"), ("flux", "<f4"), ("flux_err", "<f4"),
    ("linewidth", "<f4"), ("linewidth_err", "<f4"), ("continuum", "<f4"), ("continuum_err", "<f4"),
    ("sn", "<f4"), ("sn_err", "<f4"), ("chi2", "<f4"), ("chi2_err", "<f4"), ("noise_ratio", "<f4"),
    ("inputid", "S40"), ("x_raw", "<i4"), ("y_raw", "<i4"), ("x_ifu", "<f4"), ("y_ifu", "<f4"), ("weight", "<f4"),
    ("fibnum", "<i4"), ("multiframe", "S20"), ("specid", "S3"), ("ifuslot", "S3"), ("ifuid", "S3"), ("amp", "S2"),
    ("expnum", "<i4"), ("chi2fib", "<f4"), ("apcor", "<f4"), ("sn_cen", "<f4"), ("flux_noise_1sigma", "<f4"),
    ("sn_3fib", "<f4"), ("sn_3fib_cen", "<f4"),
]
SPECTRA_ARRAYS = ["wave1d", "spec1d", "spec1d_err", "counts1d", "counts1d_err", "apsum_counts", "apsum_counts_err",
                  "spec1d_nc", "spec1d_nc_err", "apcor", "flag_pix", "spec1d_ffsky"]
SPECTRA_FIELDS = [("detectid", "<i8")] + [(k, "<f4", (1036,)) for k in SPECTRA_ARRAYS]
FIBER_FIELDS = [
    ("detectid", "<i8"), ("ra", "<f4"), ("dec", "<f4"), ("x_ifu", "<f4"), ("y_ifu", "<f4"), ("multiframe", "S20"),
    ("fibnum", "<i4"), ("fiber_id", "S38"), ("expnum", "<i4"), ("distance", "<f4"), ("wavein", "<f4"),
    ("timestamp", "S17"), ("date", "<i4"), ("obsid", "<i4"), ("flag", "<i4"), ("weight", "<f4"), ("ADC", "<f4", (5,)),
    ("specid", "S3"), ("ifuslot", "S3"), ("ifuid", "S3"), ("amp", "S2"), ("x_raw", "<i4"), ("y_raw", "<i4"),
]
NEEDED = ("detectid", "wave", "flux")
# what this reader needs of the hetdex_api layout (reference/hetdex-h5.md): dataset -> scalar fields,
# subarray fields (one spectrum each, all of one length)
LAYOUT = {
    "Detections": (("detectid", "shotid", "ra", "dec", "wave", "flux", "flux_err", "linewidth", "sn"), ()),
    "Spectra": (("detectid",), ("wave1d", "spec1d", "spec1d_err")),
    "Fibers": (("detectid", "ra", "dec"), ()),
}


class DetectionsFileError(ItemError):
    """The detections file is not the hetdex_api layout ELiXer reads: the message names the dataset
    and what is wrong with it, ``path`` the file (``astroflow status`` shows both)."""

    def __init__(self, path: str | Path, dataset: str, problem: str):
        self.dataset = dataset
        super().__init__(f"{dataset}: {problem}", path=str(path))


def check_layout(path: str | Path, ffsky: bool = False) -> dict[str, int]:
    """Check, before any work, that ``path`` holds the datasets and fields this reader needs, each
    readable to its last row; returns their row counts.  Raises :class:`DetectionsFileError`."""
    path = Path(path)
    wanted = {k: (scalars, arrays + (("spec1d_ffsky",) if ffsky and k == "Spectra" else ()))
              for k, (scalars, arrays) in LAYOUT.items()}
    names = ", ".join(f"/{k}" for k in wanted)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise DetectionsFileError(path, names, "the file does not exist") from None
    except OSError as exc:
        raise DetectionsFileError(path, names, f"cannot be read: the file is truncated or not HDF5 (h5py: {exc})") from None
    counts = {}
    with f:
        for name, (scalars, arrays) in wanted.items():
            ds = f.get(name)
            where = f"/{name}"
            if ds is None:
                raise DetectionsFileError(path, where, "missing (a HETDEX detections file has /Detections, /Spectra "
                                                       "and /Fibers, as hetdex_api writes them)")
            if not isinstance(ds, h5py.Dataset) or ds.dtype.names is None or ds.ndim != 1:
                raise DetectionsFileError(path, where, f"not a table (a 1-D compound dataset): {ds!r}")
            missing = [k for k in (*scalars, *arrays) if k not in ds.dtype.names]
            if missing:
                raise DetectionsFileError(path, where, f"lacks the field(s) {', '.join(missing)}")
            shapes = {k: ds.dtype[k].shape for k in arrays}
            if arrays and (len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1
                           or next(iter(shapes.values()))[0] < 10):
                raise DetectionsFileError(path, where, f"the spectra fields are not one length: {shapes}")
            if ds.shape[0] == 0:
                raise DetectionsFileError(path, where, "has no rows")
            try:
                ds[0], ds[ds.shape[0] - 1]
                if name == "Detections":
                    ds.fields("detectid")[:]
            except (OSError, ValueError, KeyError) as exc:
                raise DetectionsFileError(path, where, f"cannot be read (truncated or corrupt; h5py: {exc})") from None
            counts[name] = int(ds.shape[0])
    return counts


def _plain(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_detectids(path: str | Path) -> list[int]:
    """A one-column list of detectids (blank lines and ``#`` comments ignored)."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        try:
            out.append(int(float(text.split()[0].split(",")[0])))
        except ValueError:
            raise ValueError(f"{path}:{n}: not a detectid: {text!r}") from None
    return out


def detection_rows(path: str | Path, detectids: list[int] | None = None) -> list[dict]:
    """The /Detections rows (as plain dicts), optionally only ``detectids`` in that order."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DetectionsFileError(path, "/Detections", f"cannot be read: the file is truncated or not HDF5 (h5py: {exc})") from None
    with f:
        if not isinstance(f.get("Detections"), h5py.Dataset):
            raise DetectionsFileError(path, "/Detections", "missing (not a HETDEX detections file)")
        try:
            table = f["Detections"][:]
        except (OSError, ValueError) as exc:
            raise DetectionsFileError(path, "/Detections", f"cannot be read (truncated or corrupt; h5py: {exc})") from None
    names = table.dtype.names or ()
    missing = [k for k in NEEDED if k not in names]
    if missing:
        raise DetectionsFileError(path, "/Detections", f"lacks the field(s) {', '.join(missing)}")
    rows = {int(r["detectid"]): {k: _plain(r[k]) for k in names if r[k].ndim == 0} for r in table}
    if detectids is None:
        return list(rows.values())
    return [rows[d] if d in rows else {"detectid": d, "_missing": True} for d in detectids]


class DetectionsFile:
    """Random access to one detection's spectrum and fibers (opened once per shard)."""

    def __init__(self, path: str | Path, check: bool = True):
        self.path = Path(path)
        if check:
            check_layout(self.path)
        self.h5 = h5py.File(self.path, "r")
        ids = self.h5["Spectra"].fields("detectid")[:] if "Spectra" in self.h5 else np.array([], "i8")
        self.spec_row = {int(d): i for i, d in enumerate(ids)}
        self.fibers = None
        if "Fibers" in self.h5:
            fid = self.h5["Fibers"].fields("detectid")[:]
            order = np.argsort(fid, kind="stable")
            self.fiber_ids, self.fiber_order = fid[order], order

    def spectrum(self, detectid: int) -> dict:
        i = self.spec_row.get(int(detectid))
        if i is None:
            raise ItemError(f"detectid {detectid}: no row in /Spectra", str(self.path))
        try:
            row = self.h5["Spectra"][i]
        except (OSError, ValueError) as exc:
            raise DetectionsFileError(self.path, "/Spectra", f"row {i} (detectid {detectid}) cannot be read: {exc}") from None
        names = row.dtype.names
        if not all(k in names for k in ("wave1d", "spec1d", "spec1d_err")):
            raise DetectionsFileError(self.path, "/Spectra", "lacks wave1d, spec1d or spec1d_err")
        return {k: np.asarray(row[k], float) for k in names if k != "detectid"}

    def fiber_rows(self, detectid: int) -> np.ndarray | None:
        if "Fibers" not in self.h5:
            return None
        lo, hi = np.searchsorted(self.fiber_ids, [detectid, detectid + 1])
        if hi <= lo:
            return None
        return self.h5["Fibers"][np.sort(self.fiber_order[lo:hi])]

    def close(self):
        self.h5.close()
