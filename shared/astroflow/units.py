"""Units and descriptions of a step's columns, kept in the Parquet schema and read back as a QTable.

A step declares them once, in its output schema::

    from astroflow.units import column, schema

    SCHEMA = schema(
        column("tic", pa.int64(), description="TESS Input Catalog id"),
        column("period", pa.float64(), "d", "orbital period"),
        column("depth", pa.float64(), "ppm", "transit depth"),
        column("time", pa.list_(pa.float64()), "d", "BTJD of each cadence"),
    )

The unit (an astropy unit string: ``d``, ``ppm``, ``erg / (s cm2)``, ``deg``...) and the
description go into the Arrow field's metadata (keys ``unit`` and ``description``), which Parquet
keeps in the file's schema; the executor stamps them on every part file a step writes, whatever
shape its rows came in (:func:`annotate`).  :func:`astroflow.read` returns the committed rows as an
``astropy.table.QTable``: numeric columns with a unit become ``Quantity`` columns, list columns of
one length a 2-D ``Quantity``, ragged list columns an object ``Column`` that still carries the
unit, and every column its description.  A dimensionless ratio declares ``""``, a column without a
unit (an id, a flag, a name) declares none.

Nothing here imports astropy until a QTable is asked for: a step module stays cheap to import.
Astropy's default units lack ``ppm`` (parts per million, TESS's depths and noise); astroflow
defines it (``1e-6``, dimensionless) and enables it while it parses declared units.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

UNIT, DESCRIPTION = b"unit", b"description"


def column(name: str, type: pa.DataType, unit: str | None = None, description: str | None = None,
           nullable: bool = True) -> pa.Field:
    """An Arrow field carrying its unit and description in its metadata."""
    meta = {}
    if unit is not None:
        meta[UNIT] = unit.encode()
    if description:
        meta[DESCRIPTION] = description.encode()
    return pa.field(name, type, nullable=nullable, metadata=meta or None)


def schema(*fields: pa.Field | tuple, metadata: Mapping | None = None) -> pa.Schema:
    """A schema of :func:`column` fields (or ``(name, type)`` pairs, without a unit)."""
    return pa.schema([f if isinstance(f, pa.Field) else pa.field(*f) for f in fields], metadata=metadata)


def with_units(base: pa.Schema, units: Mapping[str, str | tuple[str | None, str]]) -> pa.Schema:
    """``base`` with units (and descriptions) set on the named columns: ``{"period": "d",
    "depth": ("ppm", "transit depth")}`` -- for a schema built from lists of names."""
    unknown = sorted(set(units) - set(base.names))
    if unknown:
        raise KeyError(f"no column(s) {unknown} in the schema")
    fields = []
    for f in base:
        spec = units.get(f.name)
        if spec is None:
            fields.append(f)
            continue
        unit, desc = (spec, None) if isinstance(spec, str) else spec
        fields.append(column(f.name, f.type, unit, desc, f.nullable))
    return pa.schema(fields, metadata=base.metadata)


def unit_of(field: pa.Field) -> str | None:
    meta = field.metadata or {}
    return meta[UNIT].decode() if UNIT in meta else None


def description_of(field: pa.Field) -> str | None:
    meta = field.metadata or {}
    return meta[DESCRIPTION].decode() if DESCRIPTION in meta else None


def declared(schema: pa.Schema | None) -> dict[str, tuple[str | None, str | None]]:
    """``{column: (unit, description)}`` of the columns of ``schema`` that declare either."""
    if schema is None:
        return {}
    return {f.name: (unit_of(f), description_of(f)) for f in schema if f.metadata and (UNIT in f.metadata or
                                                                                      DESCRIPTION in f.metadata)}


def annotate(table: pa.Table | None, schema: pa.Schema | None) -> pa.Table | None:
    """``table`` with the unit and description metadata of ``schema``'s fields on its columns of
    the same name (rows given as a Table, or concatenated, lose them otherwise)."""
    if table is None or schema is None:
        return table
    wanted = {f.name: f.metadata for f in schema if f.metadata}
    if not wanted:
        return table
    fields = [f.with_metadata({**(f.metadata or {}), **wanted[f.name]}) if f.name in wanted else f
              for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def extra_units() -> list:
    """Units astroflow's steps declare that astropy does not define by default."""
    import astropy.units as u

    global _EXTRA
    if _EXTRA is None:
        found = u.get_current_unit_registry().registry.get("ppm")
        _EXTRA = [found if found is not None else u.def_unit("ppm", 1e-6 * u.dimensionless_unscaled,
                                                             doc="parts per million")]
    return _EXTRA


_EXTRA = None


def parse(unit: str):
    """An astropy unit from a declared unit string (astroflow's extra units enabled)."""
    import astropy.units as u

    with u.add_enabled_units(extra_units()):
        return u.Unit(unit, parse_strict="raise")


def check(schema: pa.Schema | None) -> list[str]:
    """Problems with the declared units (those astropy cannot parse), for a pipeline's tests."""
    problems = []
    for name, (unit, _) in declared(schema).items():
        if unit is None:
            continue
        try:
            parse(unit)
        except ValueError as exc:
            problems.append(f"column {name}: unit {unit!r}: {exc}")
    return problems


def to_qtable(table: pa.Table):
    """An ``astropy.table.QTable`` of an Arrow table, with the units and descriptions of its
    schema (see the module's docstring for what each kind of column becomes)."""
    import warnings

    import astropy.units as u
    from astropy.table import Column, MaskedColumn, QTable

    out = QTable(meta={k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()
                       if not k.startswith(b"ARROW:") and k != b"pandas"})
    for f in table.schema:
        col = table.column(f.name)
        unit, desc = unit_of(f), description_of(f)
        values, mask = _values(col, f.type)
        if unit is not None and values.dtype.kind in "fiuc":
            unit_ = parse(unit)
            q = getattr(unit_, "_quantity_class", u.Quantity)(values, unit_)  # dex(cm / s2): a Dex quantity
            if mask is not None and mask.any():
                from astropy.utils.masked import Masked

                q = Masked(q, mask=mask)
            out[f.name] = q
            out[f.name].info.description = desc
        else:
            kw = {"name": f.name, "description": desc, "unit": None if unit is None else parse(unit)}
            c = MaskedColumn(values, mask=mask, **kw) if mask is not None and mask.any() else Column(values, **kw)
            with warnings.catch_warnings():  # a ragged list column with a unit stays a Column (with its unit)
                warnings.simplefilter("ignore", u.UnitsWarning)
                warnings.filterwarnings("ignore", message=".*kept as a Column.*")
                out.add_column(c)
    return out


def _values(col: pa.ChunkedArray, type_: pa.DataType):
    """(numpy values, null mask or None) of one Arrow column."""
    import numpy as np

    nulls = col.null_count > 0
    mask = col.is_null().to_numpy(zero_copy_only=False) if nulls else None
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        items = col.to_pylist()
        arrays = [None if v is None else np.asarray(v) for v in items]
        lengths = {a.shape for a in arrays if a is not None}
        if not nulls and len(lengths) == 1 and arrays and arrays[0].dtype.kind in "fiub":
            return np.stack(arrays), None
        obj = np.empty(len(arrays), dtype=object)
        obj[:] = arrays
        return obj, mask
    if pa.types.is_integer(type_) and nulls:
        filled = col.fill_null(0).to_numpy()
        return filled, mask
    if pa.types.is_boolean(type_) and nulls:
        return col.fill_null(False).to_numpy(zero_copy_only=False), mask
    values = col.to_numpy()
    if pa.types.is_floating(type_):
        return values, None  # nulls are NaN
    return values, mask
