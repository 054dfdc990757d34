"""Argo Workflows: compile a declared pipeline into one WorkflowTemplate, check it, submit it.

The pipeline declaration (steps, inputs, fan-out, resources) is the only input; nothing here
knows any science.  One pipeline becomes one ``WorkflowTemplate`` named ``astroflow-<pipeline>``
whose entrypoint is a DAG::

    init ──> plan-a ──> a (withParam: shard ids) ──> plan-b ──> b ──> ...

* ``init`` writes the resolved run configuration (``astroflow init``); for a partitioned
  pipeline it passes the ``partition`` parameter (a night, ``last-night``, or empty) with the
  site's ``timezone`` and ``restart-hour``, and for a pipeline that receives data over time the
  ``arrival`` parameter (the file or folder an event named, admitted once complete).
* every step, whole or fan-out, is a *plan* task that prints the JSON list of its shard ids
  (``astroflow plan``; at most ``max_shards`` ids, so the list stays a few KB) and a fan-out task
  running ``astroflow step --shard {{item}}`` once per id (a whole step has one shard, ``[0]``).
* ``plan-b`` depends on the fan-out tasks of the steps ``b`` reads, by bare task name, so a
  skipped step (a disabled optional step whose plan prints ``[]``) does not block its readers.

* ``exit`` (the ``onExit`` handler) writes ``RUN/status.json`` (``astroflow status --json``) and
  ``RUN/report.html`` (``astroflow report``) onto the run's storage, whatever the outcome.

Every pod gets the calibration library's database URL as ``ASTROFLOW_DB_URL`` from the Secret
named by the ``db-secret`` parameter (key ``db-secret-key``; optional, so a site without one uses
the run directory's SQLite library).  Every workflow takes the mutex of its run folder
(:data:`RUN_MUTEX`, ``astroflow-run-<run name>``), so two submissions never write one run
directory at once (the frames of one night, triggered one by one by a Sensor, queue on it); an
unnamed run has a folder, and a mutex, of its own.

What a cluster admits and an operator steers (:class:`astroflow.step.Resources`, overridable per
site by the chart's ``steps.<pipeline>.<step>``):

* every container has cpu and memory requests *and* limits, so a namespace whose ResourceQuota
  requires limits admits the pod (Argo's own init and wait containers take theirs from the
  controller's ``executor.resources`` or the namespace's LimitRange: see docs/site.md);
* retries only where they can help (:data:`RETRY_EXPRESSION`): an infrastructure error, a pod
  killed (137: OOM or eviction; 143: node drained), a unit that failed as a whole (3), a locked
  run (4) or a crash (1), never a configuration error or a plan refused because an input failed
  (2); with backoff, on another node (``retryStrategy.affinity.nodeAntiAffinity``), and with the
  memory of the attempt (:func:`memory_per_attempt`: a ``podSpecPatch`` indexed by ``retries``
  multiplies request and limit by the step's ``oom_factor`` per retry, up to its ``memory_cap``);
* ``activeDeadlineSeconds`` per pod (the step's ``deadline_s``) and per workflow
  (:data:`WORKFLOW_DEADLINE_S`); heavy steps' pods take the site's semaphore
  (:data:`SEMAPHORE_CONFIG_MAP`, key ``heavy``, a ConfigMap the chart renders);
* Prometheus metrics (:func:`step_metrics`, :func:`workflow_metrics`): per step the pods'
  duration and, from the unit summary ``astroflow step`` leaves in :data:`UNIT_SUMMARY_DIR`, the
  failed items and items per second; per workflow its duration and outcome.

The generated YAML is committed under ``argo/`` only; the Helm chart gets its copies when it is
built (:func:`sync_chart`, ``astroflow render --chart helm/astroflow`` or ``make render``), and the
tests compare argo/ with a fresh :func:`render`.  :func:`validate` is the
offline check: Hera's strict Argo models (misspelt keys, wrong types) plus :func:`lint`
(references between templates, tasks and parameters; astroflow's pod policy).

Run ``astroflow render [PIPELINE...] --out argo`` from the repository root to regenerate.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from hera.workflows import DAG, Container, Parameter, RetryStrategy, WorkflowTemplate
from hera.workflows import models as m
from pydantic import ValidationError

from astroflow import __version__
from astroflow.errors import ArgoRequestFailed, ArgoUnreachable, AstroflowError
from astroflow.config import RUN_FILE
from astroflow.cli import UNIT_SUMMARY_ENV
from astroflow.pipeline import Pipeline
from astroflow.step import Resources

# --- what every pod sees -------------------------------------------------------------------------
# The run-directory claim (read-write), one sub-folder per run.  Not /run: on Debian images
# /var/run is a link to /run, where Kubernetes mounts the service-account token
# (/var/run/secrets) and Argo's executor its files (/var/run/argo).
RUN_MOUNT = "/runs"
DATA_MOUNT = "/data"  # the raw-data claim, always read-only
CONFIG_MOUNT = "/config"  # the ConfigMap holding run.toml
TMP_MOUNT = "/tmp"  # an emptyDir: the root filesystem is read-only
RUN_VOLUME, DATA_VOLUME, CONFIG_VOLUME, TMP_VOLUME = "run", "raw-data", "run-config", "tmp"
UID = 1000  # the non-root user of the step images
SERVICE_ACCOUNT = "astroflow-workflow"  # created by the Helm chart (helm/astroflow)

# The run folder: -p run-name=NAME continues (or names) a run; empty means one folder per workflow,
# so every submission and every CronWorkflow firing gets its own run, and `argo retry` (same
# workflow name) resumes it.  An expression tag, as Argo does not expand tags nested in parameters.
RUN_NAME = "{{=sprig.default(workflow.name, workflow.parameters['run-name'])}}"
RUN_DIR = f"{RUN_MOUNT}/{RUN_NAME}"

# Workflow parameters and their defaults (the chart sets site defaults; -p overrides per run).
# The partition parameters exist in the templates of partitioned pipelines only, ``arrival`` in
# those of pipelines that receive data over time (see parameters_for).
PARAMETERS = {
    "run-name": ("", "run folder under the run claim; empty: the workflow's own name"),
    "run-claim": ("astroflow-run", "PersistentVolumeClaim holding run directories (read-write)"),
    "data-claim": ("astroflow-data", "PersistentVolumeClaim holding the raw data (mounted read-only)"),
    "config-map": (None, "ConfigMap whose key run.toml is the run configuration"),
    "registry": ("localhost:5000", "image registry of the step images"),
    "tag": (__version__, "image tag of the step images"),
    "db-secret": ("astroflow-db", "Secret holding the calibration database URL (optional: none means SQLite)"),
    "db-secret-key": ("url", "key of the database URL in db-secret"),
    "partition": ("", "the run's partition (a night YYYYMMDD, a session...), last-night or tonight; empty: unpartitioned"),
    "timezone": ("UTC", "the site's time zone (IANA name), for partition last-night and tonight"),
    "restart-hour": ("12", "the site's local hour at which one observing day ends, for partition last-night"),
    "arrival": ("", "a file (or a folder to sweep) under /data that arrived: admitted once complete"),
}
PARTITION_PARAMETERS = ("partition", "timezone", "restart-hour")
ARRIVAL_PARAMETERS = ("arrival",)
DB_URL_ENV = "ASTROFLOW_DB_URL"

PARALLELISM = 100  # pods at once per workflow; a site sets its own (chart value, submit option)
WORKFLOW_DEADLINE_S = 3 * 86400  # a workflow still running after this is failed (chart: activeDeadlineSeconds)
TTL = m.TTLStrategy(seconds_after_success=7 * 86400, seconds_after_failure=30 * 86400)
POD_GC = m.PodGC(strategy="OnPodSuccess")  # failed pods stay for their logs

# --- retries -------------------------------------------------------------------------------------
# Exit codes of the astroflow commands a pod runs (astroflow --help) that a retry can cure; 2 (a
# configuration error, or a plan refused because an input step failed) never is: retrying it
# would only fail again.  Units are idempotent, so redoing one is always safe.
RETRIED_EXIT_CODES = {
    1: "an unexpected crash (a traceback; often a file system that was briefly away)",
    3: "a unit failed as a whole",
    4: "another process was writing the run directory",
    137: "killed: out of memory (OOMKilled) or evicted",
    143: "terminated: the node was drained or the pod preempted",
}
NOT_RETRIED_EXIT_CODES = {2: "a configuration error, or a plan refused because an input step failed"}
RETRY_LIMIT = 3
RETRY_EXPRESSION = (  # ANDed with retryPolicy Always; "Error": the pod could not run (node lost, image pull)
    'lastRetry.status == "Error" || lastRetry.message contains "OOMKilled" || '
    f"asInt(lastRetry.exitCode) in [{', '.join(str(c) for c in RETRIED_EXIT_CODES)}]"
)
RETRY = RetryStrategy(
    limit=RETRY_LIMIT,
    retry_policy="Always",
    expression=RETRY_EXPRESSION,
    backoff=m.Backoff(duration="30s", factor=2, max_duration="30m"),
    affinity=m.RetryAffinity(node_anti_affinity=m.RetryNodeAntiAffinity()),  # the retry lands on another node
)
# What the workflow's own pods (init, exit) ask for: they load the pipeline and read the ledger.
CONTROL_RESOURCES = Resources(cpu="500m", memory="1Gi", deadline_s=3600)

# --- synchronization and metrics ------------------------------------------------------------------
SEMAPHORE_CONFIG_MAP = "astroflow-semaphores"  # rendered by the chart: key heavy = pods of heavy steps at once
HEAVY_SEMAPHORE = "heavy"
# Where `astroflow step` leaves its unit's figures, one number per file (items_failed,
# items_per_second), for the step's Prometheus metrics; in the pod's /tmp emptyDir.
UNIT_SUMMARY_DIR = f"{TMP_MOUNT}/astroflow-unit"
UNIT_FIGURES = {  # output parameter -> (file in UNIT_SUMMARY_DIR, metric, type, help)
    "items-failed": ("items_failed", "astroflow_step_items_failed", "counter", "items of the step that failed"),
    "items-per-second": ("items_per_second", "astroflow_step_items_per_second", "gauge",
                         "items per second of wall time of the step's last unit"),
}
DURATION_BUCKETS = [10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0]


# --- names -------------------------------------------------------------------------------------
def template_name(pipeline: str) -> str:
    return f"astroflow-{pipeline}"


def task_name(step: str) -> str:
    """Argo names allow letters, digits and '-' only: ``ses_mes`` -> ``ses-mes``."""
    return step.replace("_", "-").lower()


def image(pipeline: str, step: str) -> str:
    """The step's image (built by images/: one small image per step, FROM the base)."""
    return f"{{{{workflow.parameters.registry}}}}/astroflow-{pipeline}-{step}:{{{{workflow.parameters.tag}}}}"


def config_map_name(pipeline: str) -> str:
    """Default ConfigMap of a pipeline's run configuration (the chart's ``runConfigs.<pipeline>``)."""
    return f"astroflow-run-{pipeline}"


def run_mutex(run_name: str) -> str:
    """The Argo mutex that serialises the workflows writing the run folder ``run_name``."""
    return f"astroflow-run-{run_name}"


RUN_MUTEX = run_mutex(RUN_NAME)  # every workflow's: resolved by Argo from its run-name (or its own name)


def parameters_for(pipeline: Pipeline) -> list[str]:
    """The workflow parameters of ``pipeline``'s template, in the order of :data:`PARAMETERS`."""
    absent = set()
    if pipeline.partition is None:
        absent |= set(PARTITION_PARAMETERS)
    if pipeline.arrivals is None:
        absent |= set(ARRIVAL_PARAMETERS)
    return [k for k in PARAMETERS if k not in absent]


def init_command(pipeline: Pipeline) -> list[str]:
    """``astroflow init`` as the init task runs it: an empty partition or arrival means none."""
    command = ["astroflow", "init", pipeline.name, "--run-dir", RUN_DIR, "--config", f"{CONFIG_MOUNT}/run.toml"]
    if pipeline.partition is not None:
        command += ["--partition", "{{workflow.parameters.partition}}", "--timezone", "{{workflow.parameters.timezone}}",
                    "--restart-hour", "{{workflow.parameters.restart-hour}}"]
    if pipeline.arrivals is not None:
        command += ["--arrival", "{{workflow.parameters.arrival}}"]
    return command


def shard_ids(n_shards: int) -> str:
    """What ``astroflow plan`` prints and ``withParam`` reads: a JSON list of shard ids."""
    return json.dumps(list(range(n_shards)), separators=(",", ":"))


# --- the pod ----------------------------------------------------------------------------------
def _labels(pipeline: str, step: str | None = None, component: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "astroflow",
        "app.kubernetes.io/version": __version__,
        "astroflow.io/pipeline": pipeline,
    }
    if step:
        labels["astroflow.io/step"] = step
    if component:
        labels["app.kubernetes.io/component"] = component
    return labels


def _volumes() -> list[m.Volume]:
    return [
        m.Volume(
            name=RUN_VOLUME,
            persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                claim_name="{{workflow.parameters.run-claim}}"
            ),
        ),
        m.Volume(
            name=DATA_VOLUME,
            persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                claim_name="{{workflow.parameters.data-claim}}", read_only=True
            ),
        ),
        m.Volume(name=CONFIG_VOLUME, config_map=m.ConfigMapVolumeSource(name="{{workflow.parameters.config-map}}")),
        m.Volume(name=TMP_VOLUME, empty_dir=m.EmptyDirVolumeSource()),
    ]


MOUNTS = [
    m.VolumeMount(name=RUN_VOLUME, mount_path=RUN_MOUNT),
    m.VolumeMount(name=DATA_VOLUME, mount_path=DATA_MOUNT, read_only=True),
    m.VolumeMount(name=CONFIG_VOLUME, mount_path=CONFIG_MOUNT, read_only=True),
    m.VolumeMount(name=TMP_VOLUME, mount_path=TMP_MOUNT),
]
ENV = [
    m.EnvVar(name="HOME", value=TMP_MOUNT),
    m.EnvVar(name="MPLCONFIGDIR", value=TMP_MOUNT),
    m.EnvVar(name="PYTHONUNBUFFERED", value="1"),
    m.EnvVar(  # the calibration library at a site; a missing Secret leaves it unset (SQLite in the run)
        name=DB_URL_ENV,
        value_from=m.EnvVarSource(secret_key_ref=m.SecretKeySelector(
            name="{{workflow.parameters.db-secret}}", key="{{workflow.parameters.db-secret-key}}", optional=True)),
    ),
]
POD_SECURITY = m.PodSecurityContext(
    run_as_non_root=True,
    run_as_user=UID,
    run_as_group=UID,
    fs_group=UID,
    seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
)
CONTAINER_SECURITY = m.SecurityContext(
    run_as_non_root=True,
    run_as_user=UID,
    read_only_root_filesystem=True,
    allow_privilege_escalation=False,
    capabilities=m.Capabilities(drop=["ALL"]),
)


# --- resources and retries -----------------------------------------------------------------------
QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
# MiB per unit of a memory quantity (exact binary fractions, so the chart's helper
# astroflow.memoryPatch computes the same attempts as memory_per_attempt).
MIB = {None: 2.0**-20, "Ki": 2.0**-10, "Mi": 1.0, "Gi": 2.0**10, "Ti": 2.0**20, "Pi": 2.0**30,
       "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20, "T": 1e12 / 2**20, "P": 1e15 / 2**20}


def mebibytes(quantity: str) -> float:
    """A memory quantity (``4Gi``, ``500M``) in MiB."""
    found = QUANTITY.match(str(quantity))
    if not found:
        raise AstroflowError(f"memory {quantity!r} is not a Kubernetes quantity (such as 512Mi or 4Gi)")
    return float(found.group(1)) * MIB[found.group(2)]


def limits(r: Resources) -> tuple[str, str]:
    """The cpu and memory limits of ``r`` (its requests where it declares none)."""
    return r.cpu_limit or r.cpu, r.memory_limit or r.memory


def memory_cap(r: Resources) -> str:
    """The most memory a retry may ask for: the declared cap, or twice the limit."""
    return r.memory_cap or f"{math.ceil(2 * mebibytes(limits(r)[1]))}Mi"


def memory_per_attempt(r: Resources, retries: int = RETRY_LIMIT) -> list[tuple[str, str]]:
    """(memory request, memory limit) of attempts 0..retries: the first as declared, each retry
    ``oom_factor`` times the one before, the limit capped at :func:`memory_cap` and the request
    at the limit (MiB, rounded up)."""
    request, limit = r.memory, limits(r)[1]
    req, lim, cap = mebibytes(request), mebibytes(limit), mebibytes(memory_cap(r))
    if req > lim:
        raise AstroflowError(f"memory request {request} is above the limit {limit}")
    if cap < lim:
        raise AstroflowError(f"memory_cap {memory_cap(r)} is below the memory limit {limit}")
    attempts = [(request, limit)]
    for _ in range(retries):
        req, lim = req * r.oom_factor, lim * r.oom_factor
        capped = min(lim, cap)
        attempts.append((f"{math.ceil(min(req, capped))}Mi", f"{math.ceil(capped)}Mi"))
    return attempts


def _by_retry(values: list[str]) -> str:
    """An Argo expression picking ``values[retries]`` (the last one after them)."""
    return "{{=[" + ",".join(f"'{v}'" for v in values) + f"][sprig.min(asInt(retries), {len(values) - 1})]}}}}"


def memory_patch(r: Resources, retries: int = RETRY_LIMIT) -> str:
    """The ``podSpecPatch`` giving the main container the memory of its attempt."""
    attempts = memory_per_attempt(r, retries)
    memory = {"requests": {"memory": _by_retry([a[0] for a in attempts])},
              "limits": {"memory": _by_retry([a[1] for a in attempts])}}
    return json.dumps({"containers": [{"name": "main", "resources": memory}]}, separators=(",", ":"))


def resource_requirements(r: Resources) -> m.ResourceRequirements:
    cpu_limit, memory_limit = limits(r)
    return m.ResourceRequirements(
        requests={"cpu": m.Quantity(r.cpu), "memory": m.Quantity(r.memory)},
        limits={"cpu": m.Quantity(cpu_limit), "memory": m.Quantity(memory_limit)},
    )


def step_metrics(pipeline: str, step: str) -> m.Metrics:
    """A step's Prometheus metrics: its pods' duration by outcome, and (from the unit summary of a
    pod that succeeded) its failed items and items per second."""
    labels = [m.MetricLabel(key="pipeline", value=pipeline), m.MetricLabel(key="step", value=step)]
    metrics = [m.Prometheus(
        name="astroflow_step_duration_seconds", help="wall time of the step's pods, by outcome",
        labels=labels + [m.MetricLabel(key="status", value="{{status}}")],
        histogram=m.Histogram(buckets=[m.Amount(b) for b in DURATION_BUCKETS], value="{{duration}}"),
    )]
    for param, (_, name, kind, text) in UNIT_FIGURES.items():
        value = f"{{{{outputs.parameters.{param}}}}}"
        metrics.append(m.Prometheus(
            name=name, help=text, labels=labels, when="{{status}} == Succeeded",
            **({"counter": m.Counter(value=value)} if kind == "counter" else {"gauge": m.Gauge(value=value, realtime=False)}),
        ))
    return m.Metrics(prometheus=metrics)


def _unit_outputs() -> list[Parameter]:
    return [Parameter(name=param, value_from=m.ValueFrom(path=f"{UNIT_SUMMARY_DIR}/{file}", default="0"))
            for param, (file, *_) in UNIT_FIGURES.items()]


def workflow_metrics(pipeline: str) -> m.Metrics:
    """The workflow's Prometheus metrics: its duration (in real time) and its outcome."""
    label = m.MetricLabel(key="pipeline", value=pipeline)
    return m.Metrics(prometheus=[
        m.Prometheus(name="astroflow_workflow_duration_seconds", help="wall time of the workflow", labels=[label],
                     gauge=m.Gauge(value="{{workflow.duration}}", realtime=True)),
        m.Prometheus(name="astroflow_workflow_result_total", help="workflows ended, by outcome",
                     labels=[label, m.MetricLabel(key="status", value="{{workflow.status}}")],
                     counter=m.Counter(value="1")),
    ])


def _container(name: str, pipeline: str, image_step: str, resources: Resources, command: list[str], component: str,
               step: str | None = None, **kw) -> Container:
    # what the chart needs to recompute the memory patch for a site's override of the step
    annotations = {"astroflow.io/oom-factor": f"{resources.oom_factor:g}",
                   **({"astroflow.io/memory-cap": resources.memory_cap} if resources.memory_cap else {})}
    return Container(
        name=name,
        image=image(pipeline, image_step),
        command=command,
        env=ENV + kw.pop("env", []),
        volume_mounts=MOUNTS,
        security_context=CONTAINER_SECURITY,
        resources=resource_requirements(resources),
        retry_strategy=RETRY,
        pod_spec_patch=memory_patch(resources),
        active_deadline_seconds=resources.deadline_s,
        labels=_labels(pipeline, step, component),
        annotations=annotations,
        **kw,
    )


def exit_command() -> list[str]:
    """The onExit handler: the run's status as JSON (written whole, then renamed) and its HTML
    report, onto the run's storage; nothing when init never made the run directory."""
    script = (f'test -e "$0/{RUN_FILE}" || {{ echo "no run directory $0: nothing to report"; exit 0; }}; '
              'astroflow status "$0" --json > "$0/.status.json.part"; '
              '[ $? -le 1 ] && mv "$0/.status.json.part" "$0/status.json"; '  # 1: incomplete, still a status
              'exec astroflow report "$0"')
    return ["sh", "-c", script, RUN_DIR]


# --- the workflow -------------------------------------------------------------------------------
def compile_pipeline(pipeline: Pipeline) -> WorkflowTemplate:
    """One WorkflowTemplate for ``pipeline``: init, then a plan task and a fan-out task per step,
    and the exit handler."""
    p = pipeline.name
    order = [pipeline.step(n) for n in pipeline.order()]
    defaults = {**{k: v for k, (v, _) in PARAMETERS.items()}, "config-map": config_map_name(p)}
    params = parameters_for(pipeline)
    with WorkflowTemplate(
        name=template_name(p),
        labels=_labels(p),
        annotations={
            "workflows.argoproj.io/title": f"astroflow {p}",
            "workflows.argoproj.io/description": (pipeline.doc or f"The {p} pipeline.").strip().splitlines()[0],
        },
        entrypoint="main",
        on_exit="exit",
        arguments=[Parameter(name=k, value=defaults[k], description=PARAMETERS[k][1]) for k in params],
        service_account_name=SERVICE_ACCOUNT,
        parallelism=PARALLELISM,
        active_deadline_seconds=WORKFLOW_DEADLINE_S,
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=RUN_MUTEX)]),
        metrics=workflow_metrics(p),
        pod_gc=POD_GC,
        ttl_strategy=TTL,
        security_context=POD_SECURITY,
        volumes=_volumes(),
        workflow_metadata=m.WorkflowMetadata(labels=_labels(p)),
    ) as wt:
        # init and exit run in the image of the first step: every step image carries the whole pipeline.
        first = order[0].name
        init = _container("init", p, first, CONTROL_RESOURCES, init_command(pipeline), "init")
        _container("exit", p, first, CONTROL_RESOURCES, exit_command(), "exit")
        plans, shards = {}, {}
        for step in order:
            t = task_name(step.name)
            plans[step.name] = _container(
                f"plan-{t}", p, step.name, step.resources, ["astroflow", "plan", p, step.name, "--run-dir", RUN_DIR],
                "plan", step.name,
            )
            heavy = [m.SemaphoreRef(config_map_key_ref=m.ConfigMapKeySelector(name=SEMAPHORE_CONFIG_MAP, key=HEAVY_SEMAPHORE))]
            shards[step.name] = _container(
                t, p, step.name, step.resources,
                ["astroflow", "step", p, step.name, "--run-dir", RUN_DIR, "--shard", "{{inputs.parameters.shard}}"],
                "shard", step.name,
                inputs=[Parameter(name="shard")],
                outputs=_unit_outputs(),
                env=[m.EnvVar(name=UNIT_SUMMARY_ENV, value=UNIT_SUMMARY_DIR)],
                metrics=step_metrics(p, step.name),
                synchronization=m.Synchronization(semaphores=heavy) if step.resources.heavy else None,
            )
        with DAG(name="main", fail_fast=False):  # one failed shard lets the others and other branches finish
            init(name="init")
            for step in order:
                t = task_name(step.name)
                upstream = [task_name(u) for u in pipeline.upstream(step)] or ["init"]
                plans[step.name](name=f"plan-{t}", depends=" && ".join(upstream))
                shards[step.name](
                    name=t,
                    depends=f"plan-{t}",
                    with_param=f"{{{{tasks.plan-{t}.outputs.result}}}}",
                    arguments={"shard": "{{item}}"},
                )
    return wt


HEADER = (
    "# Generated by astroflow.argo from the declaration of pipeline {name!r}: do not edit.\n"
    "# Regenerate: astroflow render {name} --out argo\n"
)


def to_yaml(pipeline: Pipeline) -> str:
    return HEADER.format(name=pipeline.name) + compile_pipeline(pipeline).to_yaml()


def render(pipeline_name: str, out_dir: str | Path) -> Path:
    """Compile the registered pipeline, check it and write ``out_dir/<pipeline>.yaml``."""
    from astroflow.registry import get_pipeline

    text = to_yaml(get_pipeline(pipeline_name))
    validate(yaml.safe_load(text))
    path = Path(out_dir) / f"{pipeline_name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sync_chart(argo_dir: str | Path, chart_dir: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Copy ``argo_dir/<name>.yaml`` (every one, or those of ``names``) into the chart's
    ``files/workflowtemplates/``; nothing else there is touched."""
    target = Path(chart_dir) / "files" / "workflowtemplates"
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(Path(argo_dir).glob("*.yaml")) if names is None else [Path(argo_dir) / f"{n}.yaml" for n in names]
    return [Path(shutil.copyfile(s, target / s.name)) for s in sources]


# --- checks ----------------------------------------------------------------------------------------
class ArgoValidationError(AstroflowError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid Argo manifest:\n  " + "\n  ".join(problems))


MODELS = {
    "WorkflowTemplate": m.WorkflowTemplate,
    "Workflow": m.Workflow,
    "CronWorkflow": m.CronWorkflow,
    "ClusterWorkflowTemplate": m.ClusterWorkflowTemplate,
}


def validate(doc: dict) -> None:
    """Strict Argo schema (Hera's models, unknown keys refused) plus :func:`lint`; raises with all problems."""
    problems: list[str] = []
    model = MODELS.get(doc.get("kind", ""))
    if model is None:
        problems.append(f"kind {doc.get('kind')!r} is not one of {', '.join(MODELS)}")
    else:
        try:
            model.model_validate(doc, extra="forbid")
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(x) for x in err["loc"])
                problems.append(f"schema: {where}: {err['msg']}")
    problems += lint(doc)
    if problems:
        raise ArgoValidationError(problems)


NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # Argo's rule for template and task names
TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
DEPENDS_TOKEN = re.compile(r"[A-Za-z0-9][-A-Za-z0-9]*(?:\.[A-Za-z]+)?")


def _spec(doc: dict) -> dict:
    if doc.get("kind") == "CronWorkflow":
        return (doc.get("spec") or {}).get("workflowSpec") or {}
    return doc.get("spec") or {}


def _tags(obj: Any) -> list[str]:
    return [t.strip() for t in TAG.findall(json.dumps(obj))]


def _workflow_params_used(tag: str) -> set[str]:
    if tag.startswith("="):  # expression: workflow.parameters['x'] or workflow.parameters.x
        return set(re.findall(r"workflow\.parameters\[['\"]([^'\"]+)['\"]\]", tag)) | set(
            re.findall(r"workflow\.parameters\.([A-Za-z0-9_-]+)", tag)
        )
    found = re.fullmatch(r"workflow\.parameters\.([A-Za-z0-9_.-]+)", tag)
    return {found.group(1)} if found else set()


def _depends_targets(expr: str) -> set[str]:
    """Task names in a ``depends`` expression (``a && (b.Succeeded || !c.Failed)``)."""
    return {tok.split(".")[0] for tok in DEPENDS_TOKEN.findall(expr)}


def lint(doc: dict) -> list[str]:
    """Semantic checks Argo's server would make, and astroflow's pod policy; returns problems."""
    problems: list[str] = []
    spec = _spec(doc)
    if spec.get("workflowTemplateRef"):  # runs an installed template: see lint_reference
        if spec.get("templates"):
            problems.append("a workflow that references a WorkflowTemplate must not define templates")
        return problems
    templates = {t.get("name"): t for t in spec.get("templates") or []}
    if len(templates) != len(spec.get("templates") or []):
        problems.append("template names are not unique")
    entry = spec.get("entrypoint")
    if not entry:
        problems.append("spec.entrypoint is missing")
    elif entry not in templates:
        problems.append(f"spec.entrypoint {entry!r} names no template")
    if spec.get("onExit") and spec["onExit"] not in templates:
        problems.append(f"spec.onExit {spec['onExit']!r} names no template")
    for name, tmpl in templates.items():
        where = f"template {name}"
        if not name or not NAME.match(name):
            problems.append(f"{where}: invalid name (letters, digits and '-' only)")
        for kind in ("inputs", "outputs"):
            declared = {p.get("name") for p in (tmpl.get(kind) or {}).get("parameters") or []}
            for tag in _tags(tmpl):
                found = re.fullmatch(kind + r"\.parameters\.([A-Za-z0-9_.-]+)", tag)
                if found and found.group(1) not in declared:
                    problems.append(f"{where}: uses {{{{{tag}}}}} but declares no {kind[:-1]} parameter {found.group(1)!r}")
        if tmpl.get("podSpecPatch"):
            try:
                json.loads(tmpl["podSpecPatch"])
            except ValueError as exc:
                problems.append(f"{where}: podSpecPatch is not JSON: {exc}")
        if "dag" in tmpl:
            problems += _lint_dag(name, tmpl["dag"], templates)
        if "container" in tmpl:
            problems += _lint_container(name, tmpl["container"], spec)
    declared = {p.get("name") for p in (spec.get("arguments") or {}).get("parameters") or []}
    problems += _lint_parameters(doc, declared)
    problems += _lint_raw_data(spec)
    return problems


def _lint_dag(name: str, dag: dict, templates: Mapping[str, dict]) -> list[str]:
    problems = []
    tasks = {t.get("name"): t for t in dag.get("tasks") or []}
    parents: dict[str, set[str]] = {}
    for tname, task in tasks.items():
        where = f"template {name}: task {tname}"
        if not tname or not NAME.match(tname):
            problems.append(f"{where}: invalid name (letters, digits and '-' only)")
        target = task.get("template")
        if target not in templates:
            problems.append(f"{where}: template {target!r} does not exist")
        deps = set(task.get("dependencies") or [])
        if task.get("depends"):
            deps |= _depends_targets(task["depends"])
        for d in sorted(deps - set(tasks)):
            problems.append(f"{where}: depends on unknown task {d!r}")
        parents[tname] = deps & set(tasks)
        supplied = {a.get("name") for a in (task.get("arguments") or {}).get("parameters") or []}
        if target in templates:
            for p in (templates[target].get("inputs") or {}).get("parameters") or []:
                if p.get("name") not in supplied and p.get("value") is None and p.get("default") is None:
                    problems.append(f"{where}: input parameter {p.get('name')!r} of {target} is not supplied")
        if "{{item" in json.dumps(task.get("arguments") or {}) and not (
            task.get("withParam") or task.get("withItems") or task.get("withSequence")
        ):
            problems.append(f"{where}: uses {{{{item}}}} without withParam/withItems/withSequence")
    for tname, task in tasks.items():
        ancestors = _ancestors(tname, parents)
        for tag in _tags(task):
            found = re.match(r"tasks\.([A-Za-z0-9-]+)\.outputs\.", tag)
            if not found:
                continue
            ref = found.group(1)
            if ref not in tasks:
                problems.append(f"template {name}: task {tname}: {{{{{tag}}}}} names no task {ref!r}")
            elif ref not in ancestors:
                problems.append(f"template {name}: task {tname}: {{{{{tag}}}}} but {ref} is not among its dependencies")
    cycle = [t for t in tasks if t in _ancestors(t, parents)]
    if cycle:
        problems.append(f"template {name}: dependency cycle through {sorted(cycle)}")
    return problems


def _ancestors(task: str, parents: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(parents.get(task, ()))
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(parents.get(t, ()))
    return seen


def _lint_container(name: str, c: dict, spec: dict) -> list[str]:
    problems = []
    where = f"template {name}"
    if not c.get("command"):
        problems.append(f"{where}: no explicit command (the emissary executor would look the image up in a registry)")
    sc, pod = c.get("securityContext") or {}, spec.get("securityContext") or {}
    if not (sc.get("runAsNonRoot") or pod.get("runAsNonRoot")):
        problems.append(f"{where}: does not run as non-root (runAsNonRoot)")
    if not sc.get("readOnlyRootFilesystem"):
        problems.append(f"{where}: root filesystem is not read-only")
    resources = c.get("resources") or {}
    for kind in ("requests", "limits"):  # a namespace whose quota requires limits refuses a pod without them
        missing = [r for r in ("cpu", "memory") if r not in (resources.get(kind) or {})]
        if missing:
            problems.append(f"{where}: no {' and '.join(missing)} {kind}")
    return problems


def _lint_parameters(doc: dict, declared: set[str]) -> list[str]:
    """Every {{workflow.parameters.x}} (or workflow.parameters['x'] in an expression) is declared."""
    problems = []
    used: set[str] = set()
    for tag in _tags(doc):
        used |= _workflow_params_used(tag)
    for p in sorted(used - declared):
        problems.append(f"{{{{workflow.parameters.{p}}}}} is used but spec.arguments declares no parameter {p!r}")
    return problems


def _lint_raw_data(spec: dict) -> list[str]:
    """The raw-data volume is read-only wherever it appears."""
    problems = []
    raw = {
        v.get("name")
        for v in spec.get("volumes") or []
        if v.get("name") == DATA_VOLUME or "data-claim" in json.dumps(v)
    }
    for v in spec.get("volumes") or []:
        if v.get("name") in raw and "persistentVolumeClaim" in v and not v["persistentVolumeClaim"].get("readOnly"):
            problems.append(f"volume {v['name']}: the raw-data claim is not readOnly")
    for t in spec.get("templates") or []:
        c = t.get("container") or t.get("script") or {}
        for mnt in c.get("volumeMounts") or []:
            if (mnt.get("name") in raw or mnt.get("mountPath") == DATA_MOUNT) and not mnt.get("readOnly"):
                problems.append(f"template {t.get('name')}: raw data mounted writable at {mnt.get('mountPath')}")
    return problems


def lint_reference(doc: dict, template: dict) -> list[str]:
    """A Workflow or CronWorkflow running ``template``: right name, only parameters it declares,
    literal values that ``astroflow init`` will accept (partition, timezone, restart-hour), and
    the template's mutex of the run folder left in force."""
    spec = _spec(doc)
    ref = (spec.get("workflowTemplateRef") or {}).get("name")
    problems = []
    if ref != template["metadata"]["name"]:
        problems.append(f"workflowTemplateRef {ref!r} is not {template['metadata']['name']!r}")
    if spec.get("synchronization") is not None:  # it would replace the template's, and with it the run's mutex
        problems.append("sets its own synchronization, which replaces the template's mutex of the run folder")
    mutexes = [x.get("name") for x in (template["spec"].get("synchronization") or {}).get("mutexes") or []]
    if RUN_MUTEX not in mutexes:
        problems.append(f"{template['metadata']['name']} does not queue its workflows on the mutex of their run folder")
    declared = {p["name"] for p in template["spec"].get("arguments", {}).get("parameters", [])}
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        if p.get("name") not in declared:
            problems.append(f"passes parameter {p.get('name')!r} that {ref} does not declare")
        elif p.get("value") is not None and "{{" not in str(p["value"]):
            problems += [f"parameter {p['name']}: {e}" for e in parameter_value_problems(p["name"], str(p["value"]))]
    return problems


PARTITION_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # it becomes part of run names


def parameter_value_problems(name: str, value: str) -> list[str]:
    """Why ``value`` would be refused for the workflow parameter ``name`` (empty when fine)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name == "restart-hour" and not (value.isdigit() and 0 <= int(value) <= 23):
        return [f"{value!r} is not an hour 0..23"]
    if name == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return [f"{value!r} is not an IANA time zone (such as America/Santiago)"]
    if name == "partition" and value and not PARTITION_VALUE.match(value):
        return [f"{value!r} is not a partition value (last-night, tonight, or letters, digits, '.', '_', '-')"]
    return []


# --- submission -----------------------------------------------------------------------------------
# Where the Argo Server is and who is asking come from the environment, as for the argo CLI
# (``argo --help``): ARGO_SERVER is host:port without a scheme (https unless ARGO_SECURE=false),
# ARGO_BASE_HREF a path prefix behind an ingress, ARGO_INSECURE_SKIP_VERIFY=true accepts a
# self-signed certificate, ARGO_TOKEN the token ("Bearer ..." or a bare token), ARGO_NAMESPACE the
# namespace.  The token has no flag: a flag shows in ``ps`` and in the shell's history.
SERVER_ENV, TOKEN_ENV, NAMESPACE_ENV = "ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE"
SECURE_ENV, INSECURE_ENV, BASE_HREF_ENV = "ARGO_SECURE", "ARGO_INSECURE_SKIP_VERIFY", "ARGO_BASE_HREF"
DEFAULT_NAMESPACE = "argo"
FINISHED = ("Succeeded", "Failed", "Error")  # a workflow's phases that end it


def _truthy(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def server_url(server: str, secure: bool = True, base_href: str = "") -> str:
    """``localhost:2746`` -> ``https://localhost:2746/`` (``http`` when not ``secure``); a URL
    with its own scheme is kept; ``base_href`` (``/argo``) is appended."""
    server = server.strip().rstrip("/")
    url = server if "://" in server else ("https://" if secure else "http://") + server
    href = base_href.strip().strip("/")
    return url + "/" + (href + "/" if href else "")


class Connection:
    """An Argo Server, the token and the namespace, as the argo CLI finds them."""

    def __init__(self, host: str, token: str | None = None, namespace: str = DEFAULT_NAMESPACE,
                 verify_ssl: bool = True, session=None):
        self.host, self.token, self.namespace, self.verify_ssl = host, token, namespace, verify_ssl
        self.session = session

    @classmethod
    def from_env(cls, server: str | None = None, namespace: str | None = None,
                 env: Mapping[str, str] | None = None, session=None) -> "Connection":
        """The connection of the environment (``ARGO_*``); ``server`` and ``namespace`` override it."""
        import os

        env = os.environ if env is None else env
        server = server or env.get(SERVER_ENV, "")
        if not server.strip():
            raise AstroflowError(f"no Argo Server: set {SERVER_ENV}=host:port (and {TOKEN_ENV}, {NAMESPACE_ENV}), "
                                 "or give --argo-server host:port")
        return cls(server_url(server, _truthy(env.get(SECURE_ENV), True), env.get(BASE_HREF_ENV, "")),
                   token=env.get(TOKEN_ENV) or None,
                   namespace=namespace or env.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE,
                   verify_ssl=not _truthy(env.get(INSECURE_ENV), False), session=session)

    def service(self):
        from hera.workflows import WorkflowsService

        return WorkflowsService(host=self.host, token=self.token, namespace=self.namespace,
                                verify_ssl=self.verify_ssl, session=self.session)

    def call(self, what: str, fn, *args, **kw):
        """``fn(*args, **kw)`` with the server's failures as one-line astroflow errors."""
        import requests
        from hera.exceptions import HeraException

        try:
            return fn(*args, **kw)
        except requests.exceptions.ConnectionError as exc:  # refused, DNS, TLS
            raise ArgoUnreachable(f"cannot reach the Argo Server at {self.host} to {what}: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise ArgoUnreachable(f"the Argo Server at {self.host} did not answer in time to {what}") from None
        except HeraException as exc:
            raise ArgoRequestFailed(f"the Argo Server at {self.host} refused to {what}: {exc}") from None


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, in a few words (``[Errno 111] Connection refused``)."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\][^'\")\]]*|Connection refused|Name or service not known"
                      r"|certificate verify failed[^'\")\]]*", text)
    return found.group(0).strip() if found else text.splitlines()[0][:200]


def workflow_from_template(
    pipeline_name: str, params: Mapping[str, str] | None = None, parallelism: int | None = None
) -> m.Workflow:
    """A Workflow that runs the installed ``astroflow-<pipeline>`` template with ``params``."""
    unknown = sorted(set(params or {}) - set(PARAMETERS))
    if unknown:
        raise AstroflowError(f"unknown workflow parameter(s) {unknown}; known: {', '.join(PARAMETERS)}")
    return m.Workflow(
        api_version="argoproj.io/v1alpha1",
        kind="Workflow",
        metadata=m.ObjectMeta(generate_name=f"{template_name(pipeline_name)}-", labels=_labels(pipeline_name)),
        spec=m.WorkflowSpec(
            workflow_template_ref=m.WorkflowTemplateRef(name=template_name(pipeline_name)),
            arguments=m.Arguments(parameters=[m.Parameter(name=k, value=str(v)) for k, v in (params or {}).items()]),
            parallelism=parallelism,
        ),
    )


def _dump(workflow) -> dict:
    return workflow.model_dump(by_alias=True, exclude_none=True, mode="json")


def submit(
    pipeline_name: str,
    host: str | Connection,
    token: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    params: Mapping[str, str] | None = None,
    *,
    parallelism: int | None = None,
    verify_ssl: bool = True,
    session=None,
) -> dict:
    """Create a Workflow from the installed template on the Argo Server (``POST
    /api/v1/workflows/{namespace}``); returns the created object.  ``host`` is a URL or a
    :class:`Connection` (then ``token``, ``namespace`` and ``verify_ssl`` are its own)."""
    conn = host if isinstance(host, Connection) else Connection(host, token, namespace, verify_ssl, session)
    workflow = workflow_from_template(pipeline_name, params, parallelism)
    service = conn.service()
    created = conn.call(f"submit {template_name(pipeline_name)}", service.create_workflow,
                        m.WorkflowCreateRequest(workflow=workflow), namespace=conn.namespace)
    return _dump(created)


def get_workflow(conn: Connection, name: str) -> dict:
    """The workflow ``name`` as the server has it now (``GET /api/v1/workflows/{namespace}/{name}``)."""
    return _dump(conn.call(f"get workflow {name}", conn.service().get_workflow, name, namespace=conn.namespace))


def phase(workflow: dict) -> str:
    """``Pending`` (no status yet), ``Running``, ``Succeeded``, ``Failed`` or ``Error``."""
    return (workflow.get("status") or {}).get("phase") or "Pending"


def watch(conn: Connection, name: str, *, interval_s: float = 2.0, timeout_s: float | None = None,
          on_change=None, sleep=None) -> dict:
    """Poll the workflow until it ends (Succeeded, Failed, Error); returns its last state.

    ``on_change(workflow)`` is called whenever its phase or progress (``3/10``) changes.  The argo
    CLI streams ``/api/v1/workflow-events``; a GET every ``interval_s`` is simpler, works through
    any proxy, and is cheap at this rate.
    """
    import time

    sleep = sleep or time.sleep
    started, last = time.monotonic(), None
    while True:
        wf = get_workflow(conn, name)
        seen = (phase(wf), (wf.get("status") or {}).get("progress"))
        if seen != last and on_change is not None:
            on_change(wf)
        last = seen
        if seen[0] in FINISHED:
            return wf
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise AstroflowError(f"workflow {name} still {seen[0]} after {timeout_s:g} s")
        sleep(interval_s)
