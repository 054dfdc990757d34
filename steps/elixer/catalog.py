"""``elixer_cat.h5``: ELiXer's catalogue layout, written with h5py so that PyTables reads it.

Tables and columns follow ELiXer's ``elixer_hdf5.py`` (catalogue version 0.8.1): ``Version``,
``Detections``, ``SpectraLines``, ``CalibratedSpectra``, ``ClassificationExtraFeatures`` (one row
per detection: each indicator's value, vote and weight; ELiXer's columns where ELiXer has the
indicator, plus this classifier's own, with their ln likelihood ratios), ``Aperture``,
``CatalogMatch``, ``ExtractedObjects``, ``ElixerApertures``.  Each is a 1-D compound dataset (chunked, gzip) with
fixed-length byte strings and subarray fields, the layout PyTables opens as a ``Table``.  Tables
this pipeline has no data for (imaging: Aperture, CatalogMatch, ...) exist with their columns and
no rows, as ELiXer's own merge expects them.  Unset values use ELiXer's sentinels (-999.999,
-99999, "").

Merging (runbook 18.3 ``--merge``) concatenates catalogues; ``merge_unique`` (18.6) keeps, per
detectid, the rows of the file whose ``elixer_datetime`` is newest, with that file's rows of every
other table.  Both stream: a first pass reads only each file's (detectid, elixer_datetime) to
choose the rows, a second copies the chosen rows table by table in chunks of ``CHUNK_BYTES``, so
memory stays flat whatever the catalogues' size.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from astroflow.atomic import atomic_path

VERSION = "0.8.1"
UNSET_FLOAT, UNSET_INT = -999.999, -99999

_F = "f4=-999.999"
SPEC = {
    "Version": "version:S16 version_pytables:S16",
    "Detections": (
        "detectid:i8 elixer_version:S16 elixer_datetime:S21 shotid:i8 obsid:i4 specid:S3 ifuslot:S3 ifuid:S3 amp:S2 "
        "multiframe:S20 seeing_fwhm:F response:F apcor_4500:F fieldname:S32 ra:F dec:F wavelength_obs:F "
        "wavelength_obs_err:F z_best:f4=-1 z_best_pz:f4=0 z_best_plya_thresh:f4=-1 z_best_2:f4=-1 z_best_pz_2:f4=0 "
        "z_best_plya_thresh_2:f4=-1 z_best_3:f4=-1 z_best_pz_3:f4=0 z_best_plya_thresh_3:f4=-1 flags:i4=0 review:i1=0 "
        "cluster_parent:i8=0 flux_line:F flux_line_err:F fwhm_line_aa:F fwhm_line_aa_err:F fwhm_line_kms:F "
        "fwhm_line_kms_err:F sn:F sn_err:F chi2:F chi2_err:F continuum_line:F continuum_line_err:F eqw_rest_lya_line:F "
        "eqw_rest_lya_line_err:F plae_line:F plae_line_max:F plae_line_min:F continuum_wide:F continuum_wide_err:F "
        "mag_g_wide:F mag_g_wide_err:F mag_g_wide_limit:f4=24.8 eqw_rest_lya_wide:F eqw_rest_lya_wide_err:F "
        "plae_wide:F plae_wide_max:F plae_wide_min:F continuum_masked:F continuum_masked_err:F multiline_flag:?=0 "
        "multiline_z:F multiline_rest_w:F multiline_prob:F multiline_raw_score:F multiline_frac_score:F "
        "multiline_name:S16 pseudo_color_flag:i8=0 pseudo_color_blue_flux:F pseudo_color_blue_flux_err:F "
        "pseudo_color_red_flux:F pseudo_color_red_flux_err:F pseudo_color_rvb_ratio:F pseudo_color_rvb_ratio_err:F "
        "combined_plae:F combined_plae_lo:F combined_plae_hi:F plya_classification:F spurious_reason:S32 "
        "combined_continuum:F combined_continuum_err:F combined_continuum_err_stat:F "
        "combined_continuum_nondetect:i4=-99999 combined_eqw_rest_lya:F combined_eqw_rest_lya_err:F spectral_slope:F "
        "spectral_slope_err:f4=0 ccd_adjacent_mag:f4=99.9 central_single_fiber_mag:f4=99.9 ffsky_subtraction:?=0 "
        "classification_labels:S32 color_ug:f4x3=nan color_ur:f4x3=nan color_gr:f4x3=nan"
    ),
    "SpectraLines": (
        "detectid:i8 wavelength:F type:i4=-99999 score:F sn:F chi2:F flux_line:F flux_line_err:F used:?=0 "
        "sol_num:i4=-1 sigma:F sigma_err:F continuum:F continuum_err:F"
    ),
    "CalibratedSpectra": (
        "detectid:i8 wavelength:f4x1036 flux:f4x1036 flux_err:f4x1036 aperture_radius:F sky_background:i4=-99999 "
        "num_fibers:i4=-99999"
    ),
    "ClassificationExtraFeatures": (
        "detectid:i8 plae_poii_combined:F plae_poii_combined_hi:F plae_poii_combined_lo:F "
        "plae_poii_combined_midpoint:F plae_poii_combined_vote:F plae_poii_combined_weight:F "
        "ew_rest_lya_combined:F ew_rest_lya_combined_err:F ew_rest_lya_combined_vote:F ew_rest_lya_combined_weight:F "
        "dex_gmag:F dex_gmag_bright:F dex_gmag_faint:F gmag_thresh_bright:F gmag_thresh_faint:F dex_gmag_vote:F "
        "dex_gmag_weight:F dex_flam_slope_vote:F dex_flam_slope_weight:F dex_flam_slope:F dex_flam_slope_err:F "
        "size_in_psf:F diam_in_arcsec:F oii_size_in_kpc:F lya_size_in_kpc:F size_in_psf_vote:F size_in_psf_weight:F "
        "rb_flux_asym:F rb_flux_asym_err:F rb_flux_asym_vote:F rb_flux_asym_weight:F "
        "line_sigma:F line_sigma_err:F line_sigma_vote:F line_sigma_weight:F "
        "bright_continuum_vote:F bright_continuum_weight:F multiline_votes:f4x9=nan multiline_weights:f4x9=-1 "
        "combined_ln_odds:F plae_poii_combined_ln_lr:F "
        "companion_lines_vote:F companion_lines_weight:F companion_lines_ln_lr:F companion_oii_ln_lr:F "
        "companion_lya_ln_lr:F neiii_sn:F balmer_sn:F oiii_sn:F civ_sn:F "
        "line_shape_vote:F line_shape_weight:F line_shape_ln_lr:F line_asym:F oii_doublet_ratio:F "
        "line_shape_chi2_lya:F line_shape_chi2_oii:F line_sigma_ln_lr:F "
        "continuum_shape_vote:F continuum_shape_weight:F continuum_shape_ln_lr:F continuum_beta_lya:F "
        "continuum_igm_scale:F continuum_beta_oii:F continuum_d4000:F forest_ratio:F forest_ratio_err:F "
        "d4000_n:F d4000_n_err:F multiline_other_vote:F multiline_other_weight:F multiline_other_ln_lr:F"
    ),
    "Aperture": (
        "detectid:i8 ra:F dec:F catalog_name:S16 filter_name:S16 image_depth_mag:f4=99.9 pixel_scale:F radius:F mag:F "
        "mag_err:F aperture_area_pix:F sky_area_pix:F eqw_rest_lya:F eqw_rest_lya_err:F plae:f4=nan plae_max:f4=nan "
        "plae_min:f4=nan aperture_cts:F sky_cts:F sky_average:F"
    ),
    "CatalogMatch": (
        "detectid:i8 ra:F dec:F selected:?=0 catalog_name:S16 filter_name:S16 match_num:i4=-1 separation:F "
        "prob_match:F specz:F photz:F flux:F flux_err:F mag:F mag_err:F eqw_rest_lya:F eqw_rest_lya_err:F plae:F "
        "plae_max:F plae_min:F"
    ),
    "ExtractedObjects": (
        "detectid:i8 ra:F dec:F catalog_name:S16 filter_name:S16 image_depth_mag:f4=99.9 pixel_scale:F selected:?=0 "
        "major:F minor:F theta:f4=0 mag:F mag_err:F background_cts:F background_err:F flux_cts:F flux_err:F flags:i4=0 "
        "dist_curve:F dist_baryctr:F image_flags:i8=0 fixed_aper_radius:F fixed_aper_mag:F fixed_aper_mag_err:F "
        "fixed_aper_flux_cts:F fixed_aper_flux_err:F fixed_aper_flags:i4=0"
    ),
    "ElixerApertures": (
        "detectid:i8 ra:F dec:F catalog_name:S16 filter_name:S16 image_depth_mag:f4=99.9 pixel_scale:F selected:?=0 "
        "radius:F mag:F mag_err:F background_cts:F background_err:F flux_cts:F flux_err:F flags:i4=0 image_flags:i8=0"
    ),
}
TABLES = list(SPEC)


def _parse(spec: str):
    dtype, defaults = [], {}
    for token in spec.replace(":F", ":" + _F).split():
        name, _, kind = token.partition(":")
        kind, _, dflt = kind.partition("=")
        code, _, shape = kind.partition("x")
        dtype.append((name, code, (int(shape),)) if shape else (name, code))
        if dflt:
            defaults[name] = float(dflt)
    return np.dtype(dtype), defaults


DTYPES, DEFAULTS = {}, {}
for _name, _spec in SPEC.items():
    DTYPES[_name], DEFAULTS[_name] = _parse(_spec)
DETECTION_COLUMNS = list(DTYPES["Detections"].names)


def empty(table: str, n: int) -> np.ndarray:
    """``n`` rows of ``table`` filled with ELiXer's defaults."""
    arr = np.zeros(n, dtype=DTYPES[table])
    for name, value in DEFAULTS[table].items():
        arr[name] = value
    return arr


def from_columns(table: str, columns: dict, n: int) -> np.ndarray:
    """``n`` rows of ``table`` from columns (numpy arrays or pyarrow arrays; nulls and NaN-free
    missing values take the table's defaults; strings encoded; list columns as 2-D arrays)."""
    import pyarrow as pa

    arr = empty(table, n)
    for name in arr.dtype.names:
        col = columns.get(name)
        if col is None:
            continue
        target = arr[name]
        if isinstance(col, (pa.Array, pa.ChunkedArray)):
            valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), bool)
            if target.ndim > 1:
                if valid.all() and len(col):
                    flat = np.asarray(pa.concat_arrays(col.chunks).flatten() if isinstance(col, pa.ChunkedArray)
                                      else col.flatten(), dtype=target.dtype)
                    if flat.size == target.size:
                        target[:] = flat.reshape(target.shape)
                        continue
                for i in np.flatnonzero(valid):
                    target[i] = np.asarray(col[int(i)].as_py(), dtype=target.dtype)
                continue
            values = col.to_numpy(zero_copy_only=False)
        else:
            values = col if isinstance(col, np.ndarray) and col.dtype != object else _objects(col)
            valid = np.array([v is not None for v in values], bool) if values.dtype == object else np.ones(n, bool)
            if target.ndim > 1 and values.dtype == object:
                for i in np.flatnonzero(valid):
                    target[i] = np.asarray(values[i], dtype=target.dtype)
                continue
        if not valid.any():
            continue
        values = values[valid]
        if target.dtype.kind == "S":
            values = np.array([v.encode() if isinstance(v, str) else bytes(v) for v in values], dtype=target.dtype)
        elif values.dtype == object:
            values = values.astype(target.dtype)
        target[valid] = values
    return arr


def _objects(values) -> np.ndarray:
    """A 1-D object array of ``values`` (lists stay elements, not a second dimension)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def to_records(table: str, rows: list[dict]) -> np.ndarray:
    """Dicts (any subset of the columns; str or bytes strings; None = default) to a structured array."""
    arr = empty(table, len(rows))
    names = set(arr.dtype.names)
    for i, row in enumerate(rows):
        for k, v in row.items():
            if k not in names or v is None:
                continue
            if isinstance(v, str):
                v = v.encode()
            arr[i][k] = v
    return arr


def conform(table: str, data: np.ndarray) -> np.ndarray:
    """Rows of another catalogue (older or newer columns) in this layout, matched by column name."""
    out = empty(table, len(data))
    for name in out.dtype.names:
        if data.dtype.names and name in data.dtype.names:
            try:
                out[name] = data[name]
            except (ValueError, TypeError):
                pass
    return out


class CatalogWriter:
    """Append rows table by table into a new ``elixer_cat.h5`` (renamed into place on close);
    ``attrs`` go on the file's root (the run's provenance, :mod:`astroflow.provenance`).

    Rows wait in a buffer of at most one chunk per table and go to the file in whole chunks, so
    that each compressed chunk is written once (appending into a partly filled chunk would make
    HDF5 read, decompress and recompress it at every append)."""

    def __init__(self, path: str | Path, attrs: dict | None = None):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self.h5 = h5py.File(tmp, "w")
        self.h5.attrs["TITLE"] = np.bytes_("ELiXer Detection Catalog")
        self.h5.attrs.update(attrs or {})  # provenance (ctx.provenance_attrs()) when a step writes it
        self._pending: dict[str, list[np.ndarray]] = {}
        self._chunk: dict[str, int] = {}
        for name in TABLES:
            dt = DTYPES[name]
            chunk = max(1, min(4096, 2**20 // dt.itemsize))
            self._chunk[name], self._pending[name] = chunk, []
            self.h5.create_dataset(name, shape=(0,), dtype=dt, maxshape=(None,), chunks=(chunk,),
                                   compression="gzip", compression_opts=4, shuffle=True)
        self.append("Version", to_records("Version", [{"version": VERSION, "version_pytables": "h5py " + h5py.__version__}]))

    def append(self, table: str, data: np.ndarray) -> None:
        if data is None or not len(data):
            return
        pending = self._pending[table]
        pending.append(conform(table, data))
        held = sum(len(x) for x in pending)
        chunk = self._chunk[table]
        if held >= chunk:
            rows = np.concatenate(pending)
            whole = (len(rows) // chunk) * chunk
            self._write(table, rows[:whole])
            self._pending[table] = [rows[whole:]] if whole < len(rows) else []

    def _write(self, table: str, rows: np.ndarray) -> None:
        if not len(rows):
            return
        ds = self.h5[table]
        n = ds.shape[0]
        ds.resize((n + len(rows),))
        ds[n:] = rows

    def flush(self) -> None:
        for table, pending in self._pending.items():
            if pending:
                self._write(table, np.concatenate(pending))
                self._pending[table] = []

    def close(self, ok: bool = True) -> Path:
        if ok:
            self.flush()
        self.h5.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)
        return False


def write_catalog(path: str | Path, tables: dict[str, np.ndarray]) -> Path:
    """Write ``elixer_cat.h5`` atomically; missing tables are written empty."""
    with CatalogWriter(path) as w:
        for name in TABLES:
            if name != "Version" and tables.get(name) is not None:
                w.append(name, tables[name])
    return Path(path)


def read_catalog(path: str | Path, tables=None) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        for name in tables or TABLES:
            if name in f:
                out[name] = conform(name, f[name][:])
    return out


CHUNK_BYTES = 16 * 2**20  # rows copied at a time by the merges


def _chunks(ds, nbytes: int = CHUNK_BYTES):
    step = max(1, nbytes // max(ds.dtype.itemsize, 1))
    for lo in range(0, ds.shape[0], step):
        yield lo, ds[lo:lo + step]


def _newest_rows(detectid: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Index of the newest row (``elixer_datetime``, then position) for each detectid."""
    order = np.lexsort((np.arange(len(detectid)), when, detectid))
    ids = detectid[order]
    last = np.r_[ids[1:] != ids[:-1], True]
    return np.sort(order[last])


def merge_catalogs(out: str | Path, files: list[str | Path]) -> dict[str, int]:
    """Join catalogues (dispatch parts or whole runs) into one; a detectid present more than once
    keeps its newest row, with the other tables' rows from the same file.  Returns row counts.

    Streams: only the detectids and datetimes of every file are held at once."""
    ids, when, src = [], [], []
    for i, fn in enumerate(files):
        with h5py.File(fn, "r") as f:
            if "Detections" in f and f["Detections"].shape[0]:
                ds = f["Detections"]
                ids.append(ds.fields("detectid")[:].astype("i8"))
                when.append(ds.fields("elixer_datetime")[:] if "elixer_datetime" in ds.dtype.names
                            else np.zeros(ds.shape[0], "S21"))
                src.append(np.full(ds.shape[0], i))
    if ids:
        ids, when, src = np.concatenate(ids), np.concatenate(when), np.concatenate(src)
        keep = np.zeros(len(ids), bool)
        keep[_newest_rows(ids, when)] = True
    else:
        ids, src, keep = np.zeros(0, "i8"), np.zeros(0, int), np.zeros(0, bool)
    counts = {name: 0 for name in TABLES if name != "Version"}
    with CatalogWriter(out) as w:
        for name in counts:
            for i, fn in enumerate(files):
                mine = src == i
                chosen = np.unique(ids[mine & keep])
                with h5py.File(fn, "r") as f:
                    if name not in f or not f[name].shape[0]:
                        continue
                    ds = f[name]
                    own_keep = keep[mine]
                    for lo, chunk in _chunks(ds):
                        if name == "Detections":
                            chunk = chunk[own_keep[lo:lo + len(chunk)]]
                        else:
                            chunk = chunk[np.isin(chunk["detectid"], chosen)]
                        w.append(name, chunk)
                        counts[name] += len(chunk)
    return counts


def merge_unique(out: str | Path, file1: str | Path, file2: str | Path) -> dict[str, int]:
    """ELiXer ``--merge_unique out,file1,file2``: one row per detectid, the newest of the two."""
    return merge_catalogs(out, [file1, file2])
