"""The HETDEX H5 layouts as hetdex_api reads them (../reference/hetdex-h5.md): numpy dtypes
(fixed-length byte strings, subarray columns) and a writer of 1-D compound tables with h5py.

PyTables opens these compound datasets as Tables (no CLASS attributes needed); strings are
``S<n>``; every table gets at least one row.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
# Intel ISA-L's deflate: the same zlib streams as zlib.compress (HDF5's gzip filter reads them),
# about six times faster at level 1
from isal.isal_zlib import compress as deflate

N3 = (3,)
SHOT = np.dtype([
    ("shotid", "<i8"), ("field", "S12"), ("objid", "S18"), ("date", "<i4"), ("obsid", "<i4"), ("ra", "<f8"),
    ("dec", "<f8"), ("pa", "<f8"), ("n_ifu", "<i4"), ("datevobs", "S12"), ("trajcra", "<f4"), ("trajcdec", "<f4"),
    ("trajcpa", "<f4"), ("structaz", "<f4"), ("time", "S7"), ("ambtemp", "<f4"), ("humidity", "<f4"),
    ("dewpoint", "<f4"), ("pressure", "<f4"), ("expnum", "<i4", N3), ("exptime", "<f4", N3), ("darktime", "<f4", N3),
    ("mjd", "<f4", N3), ("fwhm_virus", "<f4"), ("fwhm_virus_err", "<f4"), ("nstars_fit_fwhm", "<i4"),
    ("relflux_virus", "<f4", N3), ("response_4540", "<f4"), ("xditherpos", "<f4", N3), ("yditherpos", "<f4", N3),
    ("xoffset", "<f4", N3), ("yoffset", "<f4", N3), ("xrms", "<f4", N3), ("yrms", "<f4", N3), ("nstars_fit", "<i4", N3),
    ("obsind", "<i4"),
])
R, N = (1036,), (1032,)
FIBERS = np.dtype([
    ("multiframe", "S20"), ("fiber_id", "S38"), ("obsind", "<i4"), ("fibidx", "<i4"), ("fibnum", "<i4"),
    ("ifux", "<f4"), ("ifuy", "<f4"), ("fpx", "<f4"), ("fpy", "<f4"), ("ra", "<f4"), ("dec", "<f4"),
    ("spectrum", "<f4", N), ("wavelength", "<f4", N), ("fiber_to_fiber", "<f4", N), ("chi2", "<f4", N),
    ("rms", "<f4", N), ("trace", "<f4", N), ("sky_subtracted", "<f4", N), ("sky_spectrum", "<f4", N),
    ("error1D", "<f4", N), ("calfib", "<f4", R), ("calfibe", "<f4", R), ("calfib_ffsky", "<f4", R),
    ("calfib_counts", "<f4", R), ("calfibe_counts", "<f4", R), ("ifuslot", "S3"), ("ifuid", "S3"), ("specid", "S3"),
    ("contid", "S8"), ("amp", "S2"), ("expnum", "<i4"),
])
FIBER_INDEX_SHOT = np.dtype([
    ("multiframe", "S20"), ("fiber_id", "S38"), ("fibidx", "<i4"), ("fibnum", "<i4"), ("ifux", "<f4"), ("ifuy", "<f4"),
    ("fpx", "<f4"), ("fpy", "<f4"), ("ra", "<f4"), ("dec", "<f4"), ("expnum", "<i4"),
])
IMAGES = np.dtype([
    ("obsind", "<i4"), ("multiframe", "S20"), ("image", "<f4", (1032, 1032)), ("error", "<f4", (1032, 1032)),
    ("clean_image", "<f4", (1032, 1032)), ("ifuslot", "S3"), ("ifuid", "S3"), ("specid", "S3"), ("contid", "S8"),
    ("amp", "S2"), ("expnum", "<i4"),
])
FPLANE = np.dtype([("ifuslot", "S3"), ("fpx", "<f8"), ("fpy", "<f8"), ("specid", "S3"), ("specslot", "S3"),
                   ("ifuid", "S3"), ("ifurot", "<f8"), ("platesc", "<f8")])
STARCAT = np.dtype([("ignore", "<i8"), ("star_ID", "S28"), ("ra_cat", "<f8"), ("dec_cat", "<f8"), ("u", "<f8"),
                    ("g", "<f8"), ("r", "<f8"), ("i", "<f8"), ("z", "<f8")])
THROUGHPUT = np.dtype([("wavelength", "<f4"), ("throughput", "<f4"), ("tp_low", "<f4"), ("tp_high", "<f4"),
                       ("rat_poly", "<f4"), ("tp_gband", "<f4")])
FIBER_INDEX = np.dtype([
    ("multiframe", "S20"), ("fiber_id", "S38"), ("shotid", "<i8"), ("datevobs", "S12"), ("date", "<i8"),
    ("healpix", "<i8"), ("ifuslot", "S3"), ("ifuid", "S3"), ("specid", "S3"), ("amp", "S2"), ("fibidx", "<i4"),
    ("fibnum", "<i4"), ("ifux", "<f4"), ("ifuy", "<f4"), ("fpx", "<f4"), ("fpy", "<f4"), ("ra", "<f4"), ("dec", "<f4"),
    ("expnum", "<i4"),
])
FIBER_FLAGS = np.dtype([("fiber_id", "S38"), ("flag", "?"), ("flag_badamp", "?"), ("flag_badfib", "?")])
DETECTIONS = np.dtype([
    ("detectid", "<i8"), ("shotid", "<i8"), ("date", "<i4"), ("obsid", "<i4"), ("fiber_id", "S38"), ("ra", "<f4"),
    ("dec", "<f4"), ("wave", "<f4"), ("wave_err", "<f4"), ("flux", "<f4"), ("flux_err", "<f4"), ("linewidth", "<f4"),
    ("linewidth_err", "<f4"), ("continuum", "<f4"), ("continuum_err", "<f4"), ("sn", "<f4"), ("sn_err", "<f4"),
    ("chi2", "<f4"), ("chi2_err", "<f4"), ("noise_ratio", "<f4"), ("inputid", "S40"), ("x_raw", "<i4"), ("y_raw", "<i4"),
    ("x_ifu", "<f4"), ("y_ifu", "<f4"), ("weight", "<f4"), ("fibnum", "<i4"), ("multiframe", "S20"), ("specid", "S3"),
    ("ifuslot", "S3"), ("ifuid", "S3"), ("amp", "S2"), ("expnum", "<i4"), ("chi2fib", "<f4"), ("apcor", "<f4"),
    ("sn_cen", "<f4"), ("flux_noise_1sigma", "<f4"), ("sn_3fib", "<f4"), ("sn_3fib_cen", "<f4"),
])
CONTINUUM = np.dtype(DETECTIONS.descr[:5] + [("detectname", "S40")] + DETECTIONS.descr[5:35])
SPECTRA = np.dtype([("detectid", "<i8")] + [(n, "<f4", R) for n in (
    "wave1d", "spec1d", "spec1d_err", "counts1d", "counts1d_err", "apsum_counts", "apsum_counts_err", "spec1d_nc",
    "spec1d_nc_err", "apcor", "flag_pix", "spec1d_ffsky")])
DET_FIBERS = np.dtype([
    ("detectid", "<i8"), ("ra", "<f4"), ("dec", "<f4"), ("x_ifu", "<f4"), ("y_ifu", "<f4"), ("multiframe", "S20"),
    ("fibnum", "<i4"), ("fiber_id", "S38"), ("expnum", "<i4"), ("distance", "<f4"), ("wavein", "<f4"),
    ("timestamp", "S17"), ("date", "<i4"), ("obsid", "<i4"), ("flag", "<i4"), ("weight", "<f4"), ("ADC", "<f4", (5,)),
    ("specid", "S3"), ("ifuslot", "S3"), ("ifuid", "S3"), ("amp", "S2"), ("x_raw", "<i4"), ("y_raw", "<i4"),
])


def rows(dtype: np.dtype, records: list[dict]) -> np.ndarray:
    """A structured array from dicts (missing fields stay zero / empty)."""
    arr = np.zeros(len(records), dtype)
    for i, rec in enumerate(records):
        for k, v in rec.items():
            if k in dtype.names:
                arr[k][i] = v.encode() if isinstance(v, str) else v
    return arr


def table(group: h5py.Group, name: str, data: np.ndarray, compress: bool = True) -> h5py.Dataset:
    """Write a 1-D compound table (at least one row)."""
    if len(data) == 0:
        data = np.zeros(1, data.dtype)
    kw = {"chunks": True, "compression": "gzip", "compression_opts": 4, "shuffle": True} if compress else {}
    return group.create_dataset(name, data=data, maxshape=(None,), **kw)


def empty_table(group: h5py.Group, name: str, dtype: np.dtype, n: int, chunk_rows: int, compress: bool = True) -> h5py.Dataset:
    kw = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if compress else {}
    return group.create_dataset(name, shape=(max(n, 1),), dtype=dtype, chunks=(max(1, min(chunk_rows, n)),), **kw)


def _shuffle_deflate(chunk: np.ndarray, level: int) -> bytes:
    """A chunk as HDF5's shuffle then deflate filters store it: byte k of every element
    together (the element is the whole compound row), then a zlib stream (ISA-L's deflate:
    other bytes than zlib's at the same level, the same data for any inflate, the same size)."""
    raw = np.ascontiguousarray(chunk).view(np.uint8).reshape(len(chunk), chunk.dtype.itemsize)
    return deflate(np.ascontiguousarray(raw.T).tobytes(), level)


class ChunkWriter:
    """Rows appended in order to a 1-D chunked table made by :func:`empty_table`, compressed a
    whole chunk at a time on several threads (deflate releases the GIL) and stored with
    ``write_direct_chunk``: chunks that inflate to what h5py's own filter pipeline would store,
    without compressing a shot file's 100,000 spectra on one core.  Use it as a context manager."""

    def __init__(self, dset: h5py.Dataset, threads: int | None = None):
        if dset.compression != "gzip" or not dset.shuffle or dset.chunks is None or dset.ndim != 1:
            raise ValueError(f"{dset.name}: ChunkWriter needs a 1-D chunked table with shuffle and gzip")
        self.dset, self.rows, self.level = dset, dset.chunks[0], dset.compression_opts
        self.threads = threads or max(1, min(4, len(os.sched_getaffinity(0))))
        self.pool = ThreadPoolExecutor(self.threads)
        self.pending: list = []
        self.buf, self.fill, self.start = np.zeros(self.rows, dset.dtype), 0, 0

    def append(self, rows: np.ndarray) -> None:
        i = 0
        while i < len(rows):
            take = min(self.rows - self.fill, len(rows) - i)
            self.buf[self.fill:self.fill + take] = rows[i:i + take]
            self.fill, i = self.fill + take, i + take
            if self.fill == self.rows:
                self._submit()

    def _submit(self) -> None:
        self.pending.append((self.start, self.pool.submit(_shuffle_deflate, self.buf, self.level)))
        self.buf, self.fill, self.start = np.zeros(self.rows, self.dset.dtype), 0, self.start + self.rows
        while len(self.pending) > 2 * self.threads:  # bounded memory: a few chunks in flight
            self._write_one()

    def _write_one(self) -> None:
        offset, fut = self.pending.pop(0)
        self.dset.id.write_direct_chunk((offset,), fut.result())

    def __enter__(self) -> "ChunkWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        try:
            if exc_type is None:
                if self.fill:  # the last, partial chunk (its padding lies beyond the rows written)
                    self._submit()
                while self.pending:
                    self._write_one()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
