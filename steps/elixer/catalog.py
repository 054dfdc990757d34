"""``elixer_cat.h5``: ELiXer's catalogue layout, written with h5py so that PyTables reads it.

Tables and columns follow ELiXer's ``elixer_hdf5.py`` (catalogue version 0.8.1): ``Version``,
``Detections``, ``SpectraLines``, ``CalibratedSpectra``, ``Aperture``, ``CatalogMatch``,
``ExtractedObjects``, ``ElixerApertures``.  Each is a 1-D compound dataset (chunked, gzip) with
fixed-length byte strings and subarray fields, the layout PyTables opens as a ``Table``.  Tables
this pipeline has no data for (imaging: Aperture, CatalogMatch, ...) exist with their columns and
no rows, as ELiXer's own merge expects them.  Unset values use ELiXer's sentinels (-999.999,
-99999, "").

Merging (runbook 18.3 ``--merge``) concatenates catalogues; ``merge_unique`` (18.6) keeps, per
detectid, the rows of the file whose ``elixer_datetime`` is newest, with that file's rows of every
other table.
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


def empty(table: str, n: int) -> np.ndarray:
    """``n`` rows of ``table`` filled with ELiXer's defaults."""
    arr = np.zeros(n, dtype=DTYPES[table])
    for name, value in DEFAULTS[table].items():
        arr[name] = value
    return arr


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
    """Append rows table by table into a new ``elixer_cat.h5`` (renamed into place on close)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self.h5 = h5py.File(tmp, "w")
        self.h5.attrs["TITLE"] = np.bytes_("ELiXer Detection Catalog")
        for name in TABLES:
            dt = DTYPES[name]
            chunk = max(1, min(4096, 2**20 // dt.itemsize))
            self.h5.create_dataset(name, shape=(0,), dtype=dt, maxshape=(None,), chunks=(chunk,),
                                   compression="gzip", compression_opts=4, shuffle=True)
        self.append("Version", to_records("Version", [{"version": VERSION, "version_pytables": "h5py " + h5py.__version__}]))

    def append(self, table: str, data: np.ndarray) -> None:
        if data is None or not len(data):
            return
        ds = self.h5[table]
        n = ds.shape[0]
        ds.resize((n + len(data),))
        ds[n:] = conform(table, data)

    def close(self, ok: bool = True) -> Path:
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


def _newest_rows(dets: np.ndarray) -> np.ndarray:
    """Index of the newest row (``elixer_datetime``, then position) for each detectid."""
    order = np.lexsort((np.arange(len(dets)), dets["elixer_datetime"], dets["detectid"]))
    ids = dets["detectid"][order]
    last = np.r_[ids[1:] != ids[:-1], True]
    return np.sort(order[last])


def merge_catalogs(out: str | Path, files: list[str | Path]) -> dict[str, int]:
    """Join catalogues (dispatch parts or whole runs) into one; a detectid present more than once
    keeps its newest row, with the other tables' rows from the same file.  Returns row counts."""
    parts = []
    for i, fn in enumerate(files):
        cat = read_catalog(fn)
        cat["_src"] = np.full(len(cat.get("Detections", [])), i)
        parts.append(cat)
    dets = np.concatenate([p.get("Detections", empty("Detections", 0)) for p in parts])
    src = np.concatenate([p["_src"] for p in parts]) if parts else np.zeros(0, int)
    keep = _newest_rows(dets) if len(dets) else np.zeros(0, int)
    chosen = {(int(d), int(s)) for d, s in zip(dets["detectid"][keep], src[keep])}
    merged = {"Detections": dets[keep]}
    for name in TABLES:
        if name in ("Version", "Detections"):
            continue
        pieces = []
        for i, p in enumerate(parts):
            data = p.get(name)
            if data is None or not len(data):
                continue
            mask = np.array([(int(d), i) in chosen for d in data["detectid"]], bool)
            pieces.append(data[mask])
        merged[name] = np.concatenate(pieces) if pieces else empty(name, 0)
    write_catalog(out, merged)
    return {k: len(v) for k, v in merged.items()}


def merge_unique(out: str | Path, file1: str | Path, file2: str | Path) -> dict[str, int]:
    """ELiXer ``--merge_unique out,file1,file2``: one row per detectid, the newest of the two."""
    return merge_catalogs(out, [file1, file2])
