"""Argo Events: the EventSources and Sensors that start a pipeline's workflow when a frame arrives.

At a site, data that arrive over time are fed by Argo Events (locally, ``astroflow watch`` does
the same job).  The Helm chart renders, for each ``events`` entry of a site whose pipeline is
installed, one EventSource and one Sensor named ``astroflow-<entry>``:

* ``file``: an EventSource pod mounting the raw-data claim read-only at ``/data`` and polling one
  directory (inotify sees no writes made by other hosts of a network filesystem);
* ``amqp``: a queue bound to an exchange, e.g. LCO's archive fanout exchange, whose JSON messages
  name the archived file (``body.path``);
* ``calendar``: a schedule, e.g. a catch-up sweep of last night's folder after the night.

The Sensor's trigger submits a Workflow that runs the installed ``astroflow-<pipeline>``
WorkflowTemplate with ``arrival`` (the event's path, mapped under ``/data``), ``partition`` (the
night, taken from the path, or ``last-night`` resolved by the Sensor for a schedule) and
``run-name`` = ``<pipeline>-<partition>``, so every frame of a night lands in one run directory;
the template's mutex of that run (:data:`astroflow.argo.RUN_MUTEX`) makes the night's workflows
queue instead of planning the same run at once.  The workflow's ``init`` admits the frame once
complete and the plans grow by it, so each frame is processed once, however many events name it.

Hera has no models for Argo Events: the pydantic models below cover exactly the subset the chart
emits, from the Argo Events CRD (``api/openapi-spec/swagger.json`` and
``pkg/apis/events/v1alpha1/{eventsource,sensor}_types.go`` of argoproj/argo-events), and refuse
any other key.  :func:`validate` checks one object against them; :func:`lint` checks what the
schema cannot: dependencies that name an EventSource and an event it defines, triggers that run
an installed WorkflowTemplate with only the parameters it declares, parameter destinations that
exist in the Workflow, and the raw data mounted read-only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from hera.workflows import models as m
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from astroflow import argo
from astroflow.errors import AstroflowError

API_VERSION = "argoproj.io/v1alpha1"
EVENT_KINDS = ("file", "amqp", "calendar")


class _Spec(BaseModel):
    """camelCase keys only, as the CRD spells them; unknown keys refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)


# --- shared ------------------------------------------------------------------------------------------
class Metadata(_Spec):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Container(_Spec):
    """The event source's or sensor's own container (``Template.container``)."""

    env: list[m.EnvVar] | None = None
    env_from: list[m.EnvFromSource] | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    resources: m.ResourceRequirements | None = None
    security_context: m.SecurityContext | None = None
    volume_mounts: list[m.VolumeMount] | None = None


class Template(_Spec):
    """The pod of an EventSource or a Sensor."""

    metadata: Metadata | None = None
    container: Container | None = None
    volumes: list[m.Volume] | None = None
    security_context: m.PodSecurityContext | None = None
    service_account_name: str | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[m.Toleration] | None = None
    image_pull_secrets: list[m.LocalObjectReference] | None = None


class Backoff(_Spec):
    duration: str | int | None = None  # nanoseconds or "10s"
    factor: float | None = None
    jitter: float | None = None
    steps: int | None = None


class SecretKeySelector(_Spec):
    name: str
    key: str
    optional: bool | None = None


# --- EventSource ---------------------------------------------------------------------------------------
class WatchPathConfig(_Spec):
    directory: str
    path: str | None = None
    path_regexp: str | None = None


class FileEventSource(_Spec):
    event_type: Literal["CREATE", "WRITE", "REMOVE", "RENAME", "CHMOD"]
    watch_path_config: WatchPathConfig
    polling: bool | None = None


class AMQPQueueDeclareConfig(_Spec):
    name: str | None = None
    durable: bool | None = None
    auto_delete: bool | None = None
    exclusive: bool | None = None
    no_wait: bool | None = None
    arguments: str | None = None


class BasicAuth(_Spec):
    username: SecretKeySelector | None = None
    password: SecretKeySelector | None = None


class AMQPEventSource(_Spec):
    url: str | None = None
    url_secret: SecretKeySelector | None = None
    exchange_name: str
    exchange_type: Literal["fanout", "direct", "topic", "headers"]
    routing_key: str
    json_body: bool | None = None
    connection_backoff: Backoff | None = None
    queue_declare: AMQPQueueDeclareConfig | None = None
    auth: BasicAuth | None = None


class CalendarEventSource(_Spec):
    schedule: str | None = None
    interval: str | None = None
    timezone: str | None = None


class EventSourceSpec(_Spec):
    event_bus_name: str | None = None
    template: Template | None = None
    file: dict[str, FileEventSource] | None = None
    amqp: dict[str, AMQPEventSource] | None = None
    calendar: dict[str, CalendarEventSource] | None = None


class EventSource(_Spec):
    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["EventSource"]
    metadata: m.ObjectMeta
    spec: EventSourceSpec


# --- Sensor ---------------------------------------------------------------------------------------------
class DataFilter(_Spec):
    path: str
    type: Literal["string", "number", "bool"]
    value: list[str]
    comparator: Literal[">=", ">", "=", "!=", "<", "<="] | None = None
    template: str | None = None


class EventDependencyFilter(_Spec):
    data: list[DataFilter] | None = None
    data_logical_operator: Literal["and", "or"] | None = None


class EventDependency(_Spec):
    name: str
    event_source_name: str
    event_name: str
    filters: EventDependencyFilter | None = None


class TriggerParameterSource(_Spec):
    dependency_name: str
    data_key: str | None = None
    data_template: str | None = None
    context_key: str | None = None
    context_template: str | None = None
    value: str | None = None
    use_raw_data: bool | None = None


class TriggerParameter(_Spec):
    src: TriggerParameterSource
    dest: str
    operation: Literal["prepend", "overwrite", "append"] | None = None


class ArtifactLocation(_Spec):
    resource: dict  # the Workflow: checked by astroflow.argo.validate


class ArgoWorkflowTrigger(_Spec):
    operation: Literal["submit", "submit-from", "resubmit", "resume", "retry", "suspend", "terminate", "stop"] | None = None
    source: ArtifactLocation
    parameters: list[TriggerParameter] | None = None


class TriggerTemplate(_Spec):
    name: str
    argo_workflow: ArgoWorkflowTrigger


class Trigger(_Spec):
    template: TriggerTemplate
    retry_strategy: Backoff | None = None
    at_least_once: bool | None = None


class SensorSpec(_Spec):
    event_bus_name: str | None = None
    template: Template | None = None
    dependencies: list[EventDependency]
    triggers: list[Trigger]


class Sensor(_Spec):
    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["Sensor"]
    metadata: m.ObjectMeta
    spec: SensorSpec


MODELS = {"EventSource": EventSource, "Sensor": Sensor}


# --- checks -------------------------------------------------------------------------------------------
class EventsValidationError(AstroflowError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid Argo Events manifest:\n  " + "\n  ".join(problems))


def schema_problems(doc: dict) -> list[str]:
    """The strict schema of one EventSource or Sensor (unknown keys, wrong types, bad enums)."""
    name = f"{doc.get('kind')} {(doc.get('metadata') or {}).get('name')}"
    model = MODELS.get(doc.get("kind", ""))
    if model is None:
        return [f"{name}: kind is not one of {', '.join(MODELS)}"]
    try:
        model.model_validate(doc, extra="forbid")
    except ValidationError as exc:
        return [f"{name}: schema: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []


def validate(docs: Iterable[dict]) -> None:
    """Schema and :func:`lint` over a set of objects (EventSources, Sensors, WorkflowTemplates);
    raises with every problem."""
    docs = list(docs)
    problems = [p for d in docs if d.get("kind") in MODELS for p in schema_problems(d)]
    problems += lint(docs)
    if problems:
        raise EventsValidationError(problems)


def events_of(source: dict) -> dict[str, str]:
    """Event name -> kind, for one EventSource."""
    spec = source.get("spec") or {}
    return {name: kind for kind in EVENT_KINDS for name in spec.get(kind) or {}}


def lint(docs: Iterable[dict]) -> list[str]:
    """Cross-object checks of EventSources and Sensors against each other and the WorkflowTemplates."""
    docs = list(docs)
    sources = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "EventSource"}
    templates = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "WorkflowTemplate"}
    problems = [p for s in sources.values() for p in _lint_source(s)]
    for sensor in (d for d in docs if d.get("kind") == "Sensor"):
        problems += _lint_sensor(sensor, sources, templates)
    return problems


def _lint_source(source: dict) -> list[str]:
    where = f"EventSource {source['metadata']['name']}"
    spec = source.get("spec") or {}
    problems = []
    if not events_of(source):
        problems.append(f"{where}: defines no event")
    files = spec.get("file") or {}
    if files:
        template = spec.get("template") or {}
        raw = [v for v in template.get("volumes") or [] if "persistentVolumeClaim" in v]
        mounts = {mt["mountPath"]: mt for mt in (template.get("container") or {}).get("volumeMounts") or []}
        if any(not (v["persistentVolumeClaim"].get("readOnly")) for v in raw):
            problems.append(f"{where}: the raw-data claim is not readOnly")
        if argo.DATA_MOUNT not in mounts or not mounts[argo.DATA_MOUNT].get("readOnly"):
            problems.append(f"{where}: the raw data are not mounted read-only at {argo.DATA_MOUNT}")
        for name, f in files.items():
            directory = (f.get("watchPathConfig") or {}).get("directory", "")
            if not (directory == argo.DATA_MOUNT or directory.startswith(argo.DATA_MOUNT + "/")):
                problems.append(f"{where}: event {name} watches {directory!r}, not a folder under {argo.DATA_MOUNT}")
            regexp = (f.get("watchPathConfig") or {}).get("pathRegexp")
            problems += [f"{where}: event {name}: {p}" for p in _regex_problems(regexp, groups=0)]
    for name, a in (spec.get("amqp") or {}).items():
        if not (a.get("url") or a.get("urlSecret")):
            problems.append(f"{where}: event {name} has neither url nor urlSecret")
    for name, c in (spec.get("calendar") or {}).items():
        if not (c.get("schedule") or c.get("interval")):
            problems.append(f"{where}: event {name} has neither schedule nor interval")
        if c.get("timezone"):
            problems += [f"{where}: event {name}: {p}" for p in argo.parameter_value_problems("timezone", c["timezone"])]
    return problems


def _regex_problems(pattern: str | None, groups: int) -> list[str]:
    """A Go (RE2) regular expression: Python's ``re`` agrees on the subset worth writing here."""
    if pattern is None:
        return []
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return [f"regular expression {pattern!r} does not compile: {exc}"]
    if groups and compiled.groups < groups:
        return [f"regular expression {pattern!r} needs a capture group (the partition)"]
    return []


def _lint_sensor(sensor: dict, sources: dict[str, dict], templates: dict[str, dict]) -> list[str]:
    where = f"Sensor {sensor['metadata']['name']}"
    spec = sensor.get("spec") or {}
    problems = []
    deps = {d.get("name"): d for d in spec.get("dependencies") or []}
    for name, dep in deps.items():
        source = sources.get(dep.get("eventSourceName"))
        if source is None:
            problems.append(f"{where}: dependency {name} names EventSource {dep.get('eventSourceName')!r}, "
                            f"which is not installed (EventSources: {', '.join(sources) or 'none'})")
        elif dep.get("eventName") not in events_of(source):
            problems.append(f"{where}: dependency {name} names event {dep.get('eventName')!r}, which EventSource "
                            f"{dep['eventSourceName']} does not define ({', '.join(events_of(source))})")
        for f in (dep.get("filters") or {}).get("data") or []:
            if f.get("type") == "string":
                for v in f.get("value") or []:
                    problems += [f"{where}: dependency {name}: {p}" for p in _regex_problems(v, groups=1)]
    for trigger in spec.get("triggers") or []:
        t = trigger.get("template") or {}
        tw = f"{where}: trigger {t.get('name')}"
        wf_trigger = t.get("argoWorkflow") or {}
        workflow = (wf_trigger.get("source") or {}).get("resource") or {}
        if (wf_trigger.get("operation") or "submit") != "submit":
            problems.append(f"{tw}: operation {wf_trigger['operation']!r}; astroflow submits new workflows only")
        problems += _lint_workflow(tw, workflow, templates)
        for p in wf_trigger.get("parameters") or []:
            dep = (p.get("src") or {}).get("dependencyName")
            if dep not in deps:
                problems.append(f"{tw}: a parameter reads dependency {dep!r}, which the sensor does not declare")
            if not _path_exists(workflow, p.get("dest", "")):
                problems.append(f"{tw}: parameter destination {p.get('dest')!r} does not exist in the Workflow")
    return problems


def _lint_workflow(where: str, workflow: dict, templates: dict[str, dict]) -> list[str]:
    """The Workflow a trigger submits: valid, runs an installed template, declared parameters only,
    and queues on the mutex of its run folder (the template's: :func:`astroflow.argo.lint_reference`)."""
    if workflow.get("kind") != "Workflow":
        return [f"{where}: submits a {workflow.get('kind')!r}, not a Workflow"]
    problems = []
    try:
        argo.validate(workflow)
    except argo.ArgoValidationError as exc:
        problems += [f"{where}: {p}" for p in exc.problems]
    ref = ((workflow.get("spec") or {}).get("workflowTemplateRef") or {}).get("name")
    if ref not in templates:
        problems.append(f"{where}: runs WorkflowTemplate {ref!r}, which is not installed "
                        f"(installed: {', '.join(templates) or 'none'})")
    else:
        problems += [f"{where}: {p}" for p in argo.lint_reference(workflow, templates[ref])]
    return problems


def _path_exists(obj, dest: str) -> bool:
    """Whether the dotted path ``dest`` (sjson syntax: list indices as numbers) names a value of ``obj``."""
    for key in dest.split(".") if dest else [None]:
        if key is None:
            return False
        if isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        elif isinstance(obj, dict) and key in obj:
            obj = obj[key]
        else:
            return False
    return True
