"""Where the vison Tasks' products go in the run directory (the issue's output contract).

``RUN/<session>/<TEST>/<dataset>/<step>-ccd<n>.parquet``: each fan-out item writes its own part
of the contract datasets (``offsets``, ``ron``, ``gain``, ``dark``, ``defects``, ``flags``,
``hk``...; read a folder back as one dataset with ``pyarrow.dataset``), atomically, under one
name per item, so that a rerun replaces its part and never duplicates rows.
``RUN/<session>/<TEST>/products/`` holds the FITS products (master bias, master dark).  The
steps' own datasets (``RUN/<step>/``) are the ledger's copy of the same rows.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from astroflow.atomic import write_table

CONTRACT = {
    "offsets": pa.schema([("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
                          ("region", pa.string()), ("offset_adu", pa.float64()), ("std_adu", pa.float64())]),
    "ron": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("ron_adu", pa.float64()),
                      ("ron_err_adu", pa.float64()), ("n_frames", pa.int32())]),
    "flags": pa.schema([("task", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("flags", pa.int64()),
                        ("flag_names", pa.list_(pa.string())), ("reasons", pa.list_(pa.string()))]),
    "fluences": pa.schema([("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
                           ("exptime", pa.float64()), ("offset_adu", pa.float64()), ("fluence_adu", pa.float64()),
                           ("n_saturated", pa.int64())]),
    "gain": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("gain_e_per_adu", pa.float64()),
                       ("gain_err", pa.float64()), ("fwc_adu", pa.float64()), ("n_pairs", pa.int32())]),
    "dark": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("dark_adu_per_s", pa.float64()),
                       ("dark_err_adu_per_s", pa.float64()), ("n_frames", pa.int32()), ("n_hot_pixels", pa.int32()),
                       ("n_hot_columns", pa.int32())]),
    "defects": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("x", pa.int32()), ("y", pa.int32()),
                          ("kind", pa.string())]),
    # FLAT01: one row per fluence level (nominal % of the full well), CCD and quadrant
    "prnu": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("fluence", pa.float64()),
                       ("prnu_pct", pa.float64()), ("prnu_raw_pct", pa.float64()), ("noise_pct", pa.float64()),
                       ("fluence_adu", pa.float64()), ("wave_nm", pa.int32()), ("n_frames", pa.int32())]),
    "hk": pa.schema([("obsid", pa.int64()), ("key", pa.string()), ("mean", pa.float64()), ("std", pa.float64()),
                     ("min", pa.float64()), ("max", pa.float64()), ("ool", pa.bool_())]),
    "chinj": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("id_dly", pa.float64()),
                        ("threshold_v", pa.float64()), ("threshold_err_v", pa.float64()),
                        ("slope_adu_per_v", pa.float64()), ("notch_adu", pa.float64()), ("n_points", pa.int32())]),
    "traps": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("x", pa.int32()), ("y", pa.int32()),
                        ("tau", pa.float64()), ("pc", pa.float64())]),
    "nonlinearity": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("coeffs", pa.list_(pa.float64())),
                               ("max_nl_pct", pa.float64())]),
}
# PTC02WAVE's ``gain``: the contract's columns after the wavelength (one row per wavelength, CCD, quadrant)
GAIN_WAVE = pa.schema([("wave_nm", pa.int32()), *CONTRACT["gain"]])


def task_folder(session: str, test: str) -> Path:
    return Path(session) / test


def write_part(ctx, dataset: str, test: str, part: str, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    """Write one item's rows of a contract dataset (only the contract's columns, or ``schema``'s)."""
    schema = CONTRACT[dataset] if schema is None else schema
    table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)
    path = ctx.product(task_folder(ctx.settings.session, test) / dataset / f"{part}.parquet")
    write_table(path, table)
    return path


def product_path(ctx, test: str, name: str) -> Path:
    return task_folder(ctx.settings.session, test) / "products" / name
