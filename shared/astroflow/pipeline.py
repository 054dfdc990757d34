"""A pipeline: the ordered list of steps of one runbook, its settings model and its simulator.

The order a newcomer reads is the runbook's order; the order of execution is derived from the
declared inputs (a step runs once every step whose dataset it reads has finished).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from astroflow.errors import AstroflowError
from astroflow.step import StepBase


class RawData:
    """Marks a settings field as raw input: read-only, and no run directory may lie inside it."""

    def __repr__(self) -> str:
        return "RawData()"


DataRoot = Annotated[Path, RawData()]  # a folder of raw data


class Settings(BaseModel):
    """Pipeline-wide settings (the runbook's hand edits): subclass per pipeline.

    Every field is also a command-line flag of ``astroflow run PIPELINE`` (``--data-root``...).
    Folders of raw data are typed :data:`DataRoot`.  ``environment`` maps the environment
    variables an original pipeline was configured with to fields: when set, they override the
    configuration file (flags still win), and the resolved value is what the run records.
    """

    model_config = ConfigDict(extra="forbid")
    environment: ClassVar[dict[str, str]] = {}

    def data_roots(self) -> list[Path]:
        """The raw-data folders among the settings (fields typed ``DataRoot``)."""
        out = []
        for name, f in type(self).model_fields.items():
            if _is_raw(f.annotation, f.metadata) and getattr(self, name) is not None:
                out.append(Path(getattr(self, name)))
        return out


def _is_raw(annotation, metadata=()) -> bool:
    """Whether a field type is (or, in a union, contains) ``DataRoot``."""
    if any(isinstance(m, RawData) for m in metadata):
        return True
    if typing.get_origin(annotation) is Annotated:
        return any(isinstance(m, RawData) for m in typing.get_args(annotation)[1:])
    return any(_is_raw(a) for a in typing.get_args(annotation))


@dataclass(frozen=True)
class Pipeline:
    """One runbook as data.

    ``simulate(out_dir, options) -> dict`` writes a simulated data set in the real formats and
    returns the settings that run the pipeline on it (the demo); ``simulate_options`` is its
    options model (each field a flag of ``astroflow simulate`` and ``astroflow demo``).
    ``report(run_dir) -> str`` returns the pipeline's own HTML section of the run report (a
    function, or ``"module:function"`` so that drawing libraries are imported only when a report
    is written).
    ``tools`` are the pipeline's own commands (``astroflow PIPELINE TOOL ...``): name ->
    ``"module:function"``, the function taking the remaining arguments and returning an exit code.
    ``calibrations`` declares the look-up policy of each calibration type the steps use
    (:class:`astroflow.calib.CalibType`), ``db_migrations`` the Alembic folders (or packages) of
    the pipeline's own tables in the same database; ``arrivals`` what ``astroflow watch`` waits for
    (:class:`astroflow.arrivals.Arrivals`); ``partition`` the settings field that partitions runs
    (a night, a DAY-OBS, a test session).
    """

    name: str
    steps: Sequence[StepBase]
    settings: type[Settings] = Settings
    simulate: Callable | None = None
    simulate_options: type[BaseModel] | None = None
    report: Callable | str | None = None
    tools: Mapping[str, str] = field(default_factory=dict)
    calibrations: Mapping[str, Any] = field(default_factory=dict)
    db_migrations: tuple[str, ...] = ()
    arrivals: Any = None
    partition: str | None = None
    doc: str = ""
    by_name: dict[str, StepBase] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = [s.name for s in self.steps]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise AstroflowError(f"pipeline {self.name}: duplicate step names {sorted(dupes)}")
        object.__setattr__(self, "by_name", {s.name: s for s in self.steps})
        for s in self.steps:
            unknown = [i for i in (*s.inputs, *s.optional_inputs) if i not in self.by_name]
            if unknown:
                raise AstroflowError(f"pipeline {self.name}: step {s.name} reads unknown {unknown}")
        self.order()  # raises on cycles
        if self.partition is not None and self.partition not in self.settings.model_fields:
            raise AstroflowError(f"pipeline {self.name}: partition {self.partition!r} is not a settings field")

    def step(self, name: str) -> StepBase:
        try:
            return self.by_name[name]
        except KeyError:
            raise AstroflowError(
                f"pipeline {self.name} has no step {name!r}; steps: {', '.join(self.by_name)}"
            ) from None

    def upstream(self, step: StepBase, enabled: set[str] | None = None) -> list[str]:
        """Names of the steps whose datasets ``step`` reads (optional inputs when enabled)."""
        deps = list(step.inputs)
        deps += [i for i in step.optional_inputs if enabled is None or i in enabled]
        return deps

    def order(self) -> list[str]:
        """Topological order, ties kept in declaration (runbook) order."""
        done: list[str] = []
        pending = [s.name for s in self.steps]
        while pending:
            ready = [n for n in pending if all(d in done for d in self.upstream(self.by_name[n]))]
            if not ready:
                raise AstroflowError(f"pipeline {self.name}: dependency cycle among {pending}")
            done.append(ready[0])
            pending.remove(ready[0])
        return done

    def downstream_closure(self, name: str) -> set[str]:
        out = {name}
        for n in self.order():
            if any(d in out for d in self.upstream(self.by_name[n])):
                out.add(n)
        return out

    def upstream_closure(self, name: str) -> set[str]:
        out = {name}
        for n in reversed(self.order()):
            if n in out:
                out.update(self.upstream(self.by_name[n]))
        return out

    def select(self, only: str | None = None, start: str | None = None, until: str | None = None) -> list[str]:
        """Steps to run for ``--only`` / ``--from`` / ``--until``, in execution order."""
        chosen = set(self.by_name)
        if only:
            self.step(only)
            chosen = {only}
        if start:
            self.step(start)
            chosen &= self.downstream_closure(start)
        if until:
            self.step(until)
            chosen &= self.upstream_closure(until)
        return [n for n in self.order() if n in chosen]
