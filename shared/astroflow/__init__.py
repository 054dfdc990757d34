"""astroflow: declared observatory pipelines that run on one machine or on Argo Workflows."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "read", "read_table"]


def read_table(run_dir, step: str, columns: list[str] | None = None, where: dict | None = None):
    """The committed rows of ``step`` in the run directory ``run_dir`` as one ``pyarrow.Table``
    (the ledger applied: superseded rows and uncommitted part files left out); ``where`` maps a
    column to a value or a list of values.  Column units and descriptions are in the fields'
    metadata (:mod:`astroflow.units`)."""
    from pathlib import Path

    from astroflow.errors import AstroflowError
    from astroflow.rundir import Ledger

    step_dir = Path(run_dir) / step
    if not step_dir.is_dir():
        raise AstroflowError(f"{run_dir}: no step {step!r} in this run directory")
    return Ledger(step_dir).read(columns=columns, where=where)


def read(run_dir, step: str, columns: list[str] | None = None, where: dict | None = None):
    """The committed rows of ``step`` as an ``astropy.table.QTable``: columns that declare a unit
    are ``Quantity`` columns, and every column carries its declared description::

        >>> import astroflow
        >>> t = astroflow.read("runs/demo-tec", "ses_mes")
        >>> t["cdpp_ppm"].unit
        Unit("ppm")
    """
    from astroflow.units import to_qtable

    return to_qtable(read_table(run_dir, step, columns=columns, where=where))
