"""One validated run configuration: a TOML or YAML file plus command-line overrides.

Layout of the file (every section optional)::

    pipeline = "tec"
    [run]            # runner options: workers, max_failed_fraction, max_shards
    workers = 2
    [settings]       # the pipeline's settings (the runbook's hand edits)
    sector = 33
    data_root = "/data/tess"
    [steps.ses_mes]  # one step's parameters
    shard_size = 40

The resolved configuration is written to ``RUN/run.json`` and every later command on that run
(``status``, ``--retry-failed``, an Argo pod) reads it from there.  Paths in the settings are
made absolute (relative to the working directory), so a run resumes from anywhere.  A later
command with other values never silently overwrites it: each change is appended to
``RUN/_history.jsonl``, and the ledger recomputes what the change reaches.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from astroflow import __version__
from astroflow.atomic import write_json
from astroflow.errors import ConfigError
from astroflow.pipeline import Pipeline, Settings
from astroflow.step import StepParams

RUN_FILE = "run.json"


class RunnerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    max_failed_fraction: float = Field(0.5, ge=0.0, le=1.0)
    max_shards: int = Field(1000, ge=1)
    db_url: str | None = Field(None, description="calibration database (default: env ASTROFLOW_DB_URL, "
                               "else SQLite in the run directory)")


class RunConfig(BaseModel):
    """The resolved configuration of one run."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    pipeline: str
    run: RunnerOptions = RunnerOptions()
    settings: dict[str, Any] = {}
    steps: dict[str, dict[str, Any]] = {}
    code_version: str = __version__

    def typed_settings(self, pipeline: Pipeline) -> Settings:
        return pipeline.settings.model_validate(self.settings)

    def step_params(self, pipeline: Pipeline, step: str) -> StepParams:
        return pipeline.step(step).params.model_validate(self.steps.get(step, {}))

    def config_hash(self) -> str:
        """A short hash of what the run computes with: the pipeline, its settings and its step
        parameters (not the code version, not the runner's options such as workers or db_url).
        Products carry it (``CONFHASH``, :mod:`astroflow.provenance`)."""
        from astroflow.rundir import digest

        return digest({"pipeline": self.pipeline, "settings": self.settings, "steps": self.steps})

    def enabled_steps(self, pipeline: Pipeline) -> set[str]:
        return {s.name for s in pipeline.steps if self.step_params(pipeline, s.name).enabled}


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a table of keys")
    return data


def resolve(
    pipeline: Pipeline,
    file_data: dict | None = None,
    settings: dict | None = None,
    runner: dict | None = None,
    steps: dict | None = None,
) -> RunConfig:
    """Merge file values with overrides (overrides win) and validate everything."""
    data = dict(file_data or {})
    if data.get("pipeline", pipeline.name) != pipeline.name:
        raise ConfigError(f"configuration is for pipeline {data['pipeline']!r}, not {pipeline.name!r}")
    data["pipeline"] = pipeline.name
    data["run"] = {**data.get("run", {}), **(runner or {})}
    from_env = {field: os.environ[var] for var, field in pipeline.settings.environment.items()
                if os.environ.get(var) not in (None, "")}
    data["settings"] = {**data.get("settings", {}), **from_env, **(settings or {})}
    merged_steps = {k: dict(v) for k, v in data.get("steps", {}).items()}
    for name, params in (steps or {}).items():
        merged_steps.setdefault(name, {}).update(params)
    data["steps"] = merged_steps
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc)) from None
    try:
        validated = cfg.typed_settings(pipeline)
    except ValidationError as exc:
        raise ConfigError(explain(exc, "settings")) from None
    cfg.settings = json.loads(_absolute_paths(validated).model_dump_json())
    for name in cfg.steps:
        if name not in pipeline.by_name:
            raise ConfigError(f"[steps.{name}]: pipeline {pipeline.name} has no step {name!r}")
        try:
            cfg.step_params(pipeline, name)
        except ValidationError as exc:
            raise ConfigError(explain(exc, f"steps.{name}")) from None
    return cfg


def _absolute_paths(settings: Settings) -> Settings:
    """The settings with every relative Path made absolute (relative to the working directory)."""
    update = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, Path):
            update[name] = Path(os.path.abspath(value))
        elif isinstance(value, list) and value and all(isinstance(v, Path) for v in value):
            update[name] = [Path(os.path.abspath(v)) for v in value]
    return settings.model_copy(update=update)


def explain(exc: ValidationError, section: str = "", heading: str = "invalid configuration:") -> str:
    """A pydantic error as lines a person reads: ``heading``, then ``  where: what`` per problem
    (``where`` the dotted path under ``section``)."""
    lines = [heading]
    for err in exc.errors():
        where = ".".join(str(p) for p in ((section,) if section else ()) + tuple(err["loc"])) or "(file)"
        lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


HISTORY = "_history.jsonl"


def changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``["settings.sector: 33 -> 34", ...]`` between two configurations (code version aside)."""
    out = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key == "code_version":
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")
    return out


def save(cfg: RunConfig, run_dir: Path) -> list[str]:
    """Write ``RUN/run.json``; a change to an existing one is appended to ``RUN/_history.jsonl``
    (time, the changes, the previous configuration).  Returns the changes."""
    new = json.loads(cfg.model_dump_json())
    path = Path(run_dir) / RUN_FILE
    try:
        old = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        old = None
    diff = changes(old, new) if old is not None else []
    if diff:
        import time

        with open(Path(run_dir) / HISTORY, "a") as fh:
            fh.write(json.dumps({"time": time.time(), "changes": diff, "previous": old}) + "\n")
    if old != new:
        write_json(path, new)
    return diff


def load(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / RUN_FILE
    try:
        return RunConfig.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: not a run directory (no {RUN_FILE})") from None
