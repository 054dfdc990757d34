"""Run a rendered Argo WorkflowTemplate with real containers, without a cluster.

This interprets the subset of Argo Workflows that ``astroflow.argo`` renders, and nothing more:
anything else in a template (an unknown key, an expression it does not know) is an error, so
the committed templates stay inside what these tests exercise.

* DAG templates: tasks, ``depends`` (``a && b``, ``a.Succeeded``, ``||``, ``!``, parentheses) or
  ``dependencies``, ``failFast``; ``withParam`` / ``withItems`` / ``withSequence`` fan-out.
* Parameters: ``spec.arguments`` (overridden at submission, like ``argo submit -p``), template
  inputs, task arguments; substitution of ``{{workflow.name}}``, ``{{workflow.parameters.x}}``,
  ``{{inputs.parameters.x}}``, ``{{item}}``, ``{{tasks.X.outputs.result}}`` and the expression
  ``{{=sprig.default(a, b)}}``.
* Container templates, one container per pod (testcontainers): ``command`` replaces the image's
  entry point, ``args``, ``env``; ``outputs.result`` is the container's stdout.
* Volumes: PersistentVolumeClaims are bind mounts of host folders (``claims``), ConfigMaps are
  read-only bind mounts of host folders (``config_maps``), ``emptyDir`` is a tmpfs; ``readOnly`` on
  a claim or a mount is honoured.
* Security: pod and container ``runAsUser``/``runAsGroup`` (``runAsNonRoot`` is checked),
  ``readOnlyRootFilesystem``, ``allowPrivilegeEscalation: false`` (no-new-privileges),
  ``capabilities.drop``.
* ``retryStrategy.limit`` and ``retryPolicy`` (the backoff is not waited for).
* Pods of independent tasks run ``max_pods`` (default 2) at a time, also bounded by
  ``spec.parallelism``.

Cluster-only fields (labels, annotations, service account, podGC, ttlStrategy, resource requests)
are accepted and have no effect here.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer  # noqa: E402


class UnsupportedTemplate(Exception):
    """The template uses something this executor does not implement."""


# Keys this executor understands, per object.  "ignored" ones only matter on a cluster.
KNOWN = {
    "document": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "generateName", "namespace", "labels", "annotations"},
    "spec": {"entrypoint", "templates", "arguments", "volumes", "parallelism", "securityContext",
             "serviceAccountName", "podGC", "ttlStrategy", "workflowMetadata"},
    "template": {"name", "container", "dag", "inputs", "metadata", "retryStrategy", "failFast"},
    "template.metadata": {"labels", "annotations"},
    "container": {"image", "command", "args", "env", "volumeMounts", "resources", "securityContext",
                  "workingDir"},
    "env": {"name", "value", "valueFrom"},
    "valueFrom": {"secretKeyRef"},
    "secretKeyRef": {"name", "key", "optional"},
    "volumeMount": {"name", "mountPath", "readOnly"},
    "resources": {"requests"},
    "podSecurityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "seccompProfile"},
    "securityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                        "allowPrivilegeEscalation", "capabilities", "privileged", "seccompProfile"},
    "capabilities": {"drop"},
    "volume": {"name", "persistentVolumeClaim", "configMap", "emptyDir"},
    "persistentVolumeClaim": {"claimName", "readOnly"},
    "configMap": {"name"},
    "emptyDir": set(),
    "parameter": {"name", "value", "default", "description", "enum"},
    "retryStrategy": {"limit", "retryPolicy", "backoff"},
    "backoff": {"duration", "factor", "maxDuration"},
    "dag": {"tasks", "failFast"},
    "task": {"name", "template", "depends", "dependencies", "arguments", "withParam", "withItems",
             "withSequence"},
    "arguments": {"parameters"},
    "inputs": {"parameters"},
    "withSequence": {"count", "start", "end"},
}

DONE = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted"}


def check_keys(obj: Any, kind: str, where: str) -> None:
    if not isinstance(obj, dict):
        raise UnsupportedTemplate(f"{where}: expected a mapping for {kind}, got {type(obj).__name__}")
    unknown = set(obj) - KNOWN[kind]
    if unknown:
        raise UnsupportedTemplate(f"{where}: unsupported {kind} key(s) {sorted(unknown)}")


@dataclass
class Pod:
    """One container run: what the workflow's status would list as a pod node."""

    task: str
    template: str
    item: Any
    command: list[str]
    image: str
    phase: str = "Pending"
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    attempts: int = 0


@dataclass
class TaskResult:
    name: str
    phase: str = "Pending"
    result: str | None = None  # outputs.result (single pods only)
    pods: list[Pod] = field(default_factory=list)
    message: str = ""


@dataclass
class WorkflowResult:
    name: str
    phase: str
    tasks: dict[str, TaskResult]

    @property
    def pods(self) -> list[Pod]:
        return [p for t in self.tasks.values() for p in t.pods]

    def describe(self) -> str:
        lines = [f"workflow {self.name}: {self.phase}"]
        for t in self.tasks.values():
            lines.append(f"  {t.name}: {t.phase} {t.message}")
            for p in t.pods:
                if p.phase != "Succeeded":
                    lines.append(f"    pod item={p.item} exit={p.exit_code} after {p.attempts} attempt(s): "
                                 f"{' '.join(p.command)}\n      {p.stderr.strip()[-1500:]}")
        return "\n".join(lines)


class ArgoExecutor:
    """Interpret one WorkflowTemplate document; ``submit()`` runs it like ``argo submit --from``.

    ``claims``: claim name -> host folder; ``config_maps``: ConfigMap name -> host folder holding
    its keys as files; ``image_registry``: a registry prefix (e.g. ``localhost:5000``) whose images
    are the local Docker images of the same name without the prefix (as ``kind load`` would).
    """

    def __init__(self, doc: dict, *, claims: dict[str, str | Path], config_maps: dict[str, str | Path] | None = None,
                 image_registry: str | None = None, max_pods: int = 2, pod_timeout_s: float = 600):
        self.doc = doc
        self.claims = {k: Path(v) for k, v in claims.items()}
        self.config_maps = {k: Path(v) for k, v in (config_maps or {}).items()}
        self.image_registry = image_registry
        self.max_pods = max_pods
        self.pod_timeout_s = pod_timeout_s
        self._validate()
        self.spec = doc["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}

    # -- validation -------------------------------------------------------------------------

    def _validate(self) -> None:
        d = self.doc
        check_keys(d, "document", "document")
        if d.get("kind") not in ("WorkflowTemplate", "Workflow"):
            raise UnsupportedTemplate(f"kind {d.get('kind')!r}: only WorkflowTemplate and Workflow")
        check_keys(d["metadata"], "metadata", "metadata")
        spec = d["spec"]
        check_keys(spec, "spec", "spec")
        if "securityContext" in spec:
            check_keys(spec["securityContext"], "podSecurityContext", "spec.securityContext")
            self._check_seccomp(spec["securityContext"], "spec.securityContext")
        for p in spec.get("arguments", {}).get("parameters", []):
            check_keys(p, "parameter", "spec.arguments")
        check_keys(spec.get("arguments", {}), "arguments", "spec.arguments")
        for v in spec.get("volumes", []):
            self._check_volume(v)
        names = set()
        for t in spec["templates"]:
            where = f"template {t.get('name')}"
            check_keys(t, "template", where)
            names.add(t["name"])
            if ("container" in t) == ("dag" in t):
                raise UnsupportedTemplate(f"{where}: exactly one of container or dag is supported")
            check_keys(t.get("metadata", {}), "template.metadata", where + ".metadata")
            check_keys(t.get("inputs", {}), "inputs", where + ".inputs")
            for p in t.get("inputs", {}).get("parameters", []):
                check_keys(p, "parameter", where + ".inputs")
            if "retryStrategy" in t:
                rs = t["retryStrategy"]
                check_keys(rs, "retryStrategy", where + ".retryStrategy")
                check_keys(rs.get("backoff", {}), "backoff", where + ".retryStrategy.backoff")
                if rs.get("retryPolicy", "OnFailure") not in ("Always", "OnFailure", "OnError"):
                    raise UnsupportedTemplate(f"{where}: retryPolicy {rs['retryPolicy']!r}")
            if "container" in t:
                self._check_container(t["container"], where)
            else:
                check_keys(t["dag"], "dag", where + ".dag")
                for task in t["dag"]["tasks"]:
                    tw = f"{where} task {task.get('name')}"
                    check_keys(task, "task", tw)
                    check_keys(task.get("arguments", {}), "arguments", tw + ".arguments")
                    for p in task.get("arguments", {}).get("parameters", []):
                        check_keys(p, "parameter", tw + ".arguments")
                    if "withSequence" in task:
                        check_keys(task["withSequence"], "withSequence", tw + ".withSequence")
                    if sum(k in task for k in ("withParam", "withItems", "withSequence")) > 1:
                        raise UnsupportedTemplate(f"{tw}: more than one of withParam/withItems/withSequence")
                    if "depends" in task and "dependencies" in task:
                        raise UnsupportedTemplate(f"{tw}: both depends and dependencies")
        if spec["entrypoint"] not in names:
            raise UnsupportedTemplate(f"entrypoint {spec['entrypoint']!r} is not a template")

    def _check_container(self, c: dict, where: str) -> None:
        check_keys(c, "container", where + ".container")
        if not c.get("command"):
            raise UnsupportedTemplate(f"{where}: a container needs an explicit command")
        for e in c.get("env", []):
            check_keys(e, "env", where + ".env")
            if "valueFrom" in e:
                check_keys(e["valueFrom"], "valueFrom", where + ".env.valueFrom")
                ref = e["valueFrom"].get("secretKeyRef")
                check_keys(ref or {}, "secretKeyRef", where + ".env.valueFrom.secretKeyRef")
                if not (ref and ref.get("optional")):
                    raise UnsupportedTemplate(f"{where}: env {e['name']} needs a Secret (only optional ones, unset here)")
        for m in c.get("volumeMounts", []):
            check_keys(m, "volumeMount", where + ".volumeMounts")
        check_keys(c.get("resources", {}), "resources", where + ".resources")
        sc = c.get("securityContext", {})
        check_keys(sc, "securityContext", where + ".securityContext")
        check_keys(sc.get("capabilities", {}), "capabilities", where + ".securityContext.capabilities")
        if sc.get("privileged"):
            raise UnsupportedTemplate(f"{where}: privileged containers are not supported")
        self._check_seccomp(sc, where)

    @staticmethod
    def _check_seccomp(sc: dict, where: str) -> None:
        profile = sc.get("seccompProfile")
        if profile is not None and profile != {"type": "RuntimeDefault"}:
            raise UnsupportedTemplate(f"{where}: seccompProfile {profile} (only RuntimeDefault)")

    @staticmethod
    def _check_volume(v: dict) -> None:
        check_keys(v, "volume", f"volume {v.get('name')}")
        kinds = [k for k in ("persistentVolumeClaim", "configMap", "emptyDir") if k in v]
        if len(kinds) != 1:
            raise UnsupportedTemplate(f"volume {v.get('name')}: exactly one source is supported")
        check_keys(v[kinds[0]], kinds[0], f"volume {v['name']}")

    # -- substitution -----------------------------------------------------------------------

    EXPR = re.compile(r"\{\{\s*(=?)(.*?)\s*\}\}")

    def substitute(self, text: str, scope: dict[str, str]) -> str:
        def one(m: re.Match) -> str:
            if m.group(1) == "=":
                return self._expression(m.group(2), scope)
            key = m.group(2)
            if key not in scope:
                raise UnsupportedTemplate(f"unresolved or unsupported reference {{{{{key}}}}}")
            return scope[key]

        return self.EXPR.sub(one, text)

    SPRIG_DEFAULT = re.compile(r"sprig\.default\((.+?),\s*(.+?)\)")
    OPERAND = re.compile(r"(workflow|inputs)\.parameters\['([\w-]+)'\]|workflow\.name|'([^']*)'|\"([^\"]*)\"")

    def _expression(self, expr: str, scope: dict[str, str]) -> str:
        """The one expression form the templates use: ``sprig.default(DEFAULT, VALUE)``."""
        m = self.SPRIG_DEFAULT.fullmatch(expr.strip())
        if not m:
            raise UnsupportedTemplate(f"unsupported expression {{{{={expr}}}}}")
        default, value = (self._operand(x.strip(), scope) for x in m.groups())
        return value if value else default

    def _operand(self, text: str, scope: dict[str, str]) -> str:
        m = self.OPERAND.fullmatch(text)
        if not m:
            raise UnsupportedTemplate(f"unsupported expression operand {text!r}")
        if m.group(1):
            key = f"{m.group(1)}.parameters.{m.group(2)}"
            if key not in scope:
                raise UnsupportedTemplate(f"expression operand {text!r} is not defined")
            return scope[key]
        if text == "workflow.name":
            return scope["workflow.name"]
        return m.group(3) if m.group(3) is not None else m.group(4)

    # -- running ----------------------------------------------------------------------------

    def submit(self, parameters: dict[str, str] | None = None, name: str | None = None) -> WorkflowResult:
        """Run the entrypoint with the template's parameters, overridden by ``parameters``."""
        declared = {p["name"]: str(p.get("value", p.get("default", "")))
                    for p in self.spec.get("arguments", {}).get("parameters", [])}
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise UnsupportedTemplate(f"parameters not declared by the template: {sorted(unknown)}")
        declared.update({k: str(v) for k, v in (parameters or {}).items()})
        base = self.doc["metadata"].get("name") or self.doc["metadata"].get("generateName", "wf").rstrip("-")
        wf_name = name or f"{base}-{secrets.token_hex(3)}"
        self.scope = {"workflow.name": wf_name, **{f"workflow.parameters.{k}": v for k, v in declared.items()}}
        self.slots = threading.Semaphore(min(self.max_pods, self.spec.get("parallelism") or self.max_pods))
        entry = self.templates[self.spec["entrypoint"]]
        if "dag" not in entry:
            raise UnsupportedTemplate("the entrypoint must be a DAG template")
        tasks = self._run_dag(entry)
        phase = "Succeeded" if all(t.phase in ("Succeeded", "Skipped") for t in tasks.values()) else "Failed"
        return WorkflowResult(wf_name, phase, tasks)

    def _run_dag(self, template: dict) -> dict[str, TaskResult]:
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        for name, t in tasks.items():
            if t["template"] not in self.templates:
                raise UnsupportedTemplate(f"task {name}: unknown template {t['template']!r}")
            for dep in self._deps(t):
                if dep not in tasks:
                    raise UnsupportedTemplate(f"task {name}: depends on unknown task {dep!r}")
        results = {name: TaskResult(name) for name in tasks}
        fail_fast = template["dag"].get("failFast", template.get("failFast", True))
        running: dict[Future, str] = {}
        with ThreadPoolExecutor(max_workers=64) as pool:
            while True:
                for name, t in tasks.items():
                    r = results[name]
                    if r.phase != "Pending" or not all(results[d].phase in DONE for d in self._deps(t)):
                        continue
                    stop = fail_fast and any(x.phase in ("Failed", "Errored") for x in results.values())
                    if stop or not self._depends_true(t, results):
                        r.phase, r.message = "Omitted", "dependencies not met" if not stop else "failFast"
                        continue
                    r.phase = "Running"
                    running[pool.submit(self._run_task, t, results)] = name
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    name = running.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        if isinstance(exc, UnsupportedTemplate):
                            raise exc
                        results[name].phase, results[name].message = "Errored", f"{type(exc).__name__}: {exc}"
        return results

    @staticmethod
    def _deps(task: dict) -> list[str]:
        if "dependencies" in task:
            return list(task["dependencies"])
        return re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", re.sub(r"\.[A-Za-z]+", "", task.get("depends", "")))

    DEPENDS_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z]+)?)")
    RESULTS = {
        None: {"Succeeded", "Skipped"},
        "Succeeded": {"Succeeded"}, "Failed": {"Failed"}, "Errored": {"Errored"}, "Skipped": {"Skipped"},
        "Omitted": {"Omitted"}, "Daemoned": set(),
    }

    def _depends_true(self, task: dict, results: dict[str, TaskResult]) -> bool:
        if "dependencies" in task:
            return all(results[d].phase in ("Succeeded", "Skipped") for d in task["dependencies"])
        expr = task.get("depends", "").strip()
        if not expr:
            return True
        pos, out = 0, []
        while pos < len(expr):
            m = self.DEPENDS_TOKEN.match(expr, pos)
            if not m:
                raise UnsupportedTemplate(f"task {task['name']}: cannot parse depends {expr!r}")
            tok, pos = m.group(1), m.end()
            if tok in ("&&", "||", "!", "(", ")"):
                out.append({"&&": " and ", "||": " or ", "!": " not "}.get(tok, tok))
                continue
            dep, _, res = tok.partition(".")
            if (res or None) not in self.RESULTS:
                raise UnsupportedTemplate(f"task {task['name']}: unsupported depends result {tok!r}")
            out.append(str(results[dep].phase in self.RESULTS[res or None]))
        return bool(eval("".join(out), {"__builtins__": {}}))  # only True/False/and/or/not/() here

    def _items(self, task: dict, scope: dict[str, str]) -> list | None:
        if "withParam" in task:
            raw = self.substitute(task["withParam"], scope)
            items = json.loads(raw)
            if not isinstance(items, list):
                raise ValueError(f"withParam of {task['name']} is not a JSON list: {raw[:200]}")
            return items
        if "withItems" in task:
            return list(task["withItems"])
        if "withSequence" in task:
            seq = {k: int(self.substitute(str(v), scope)) for k, v in task["withSequence"].items()}
            if "count" in seq:
                return list(range(seq.get("start", 0), seq.get("start", 0) + seq["count"]))
            return list(range(seq.get("start", 0), seq["end"] + 1))
        return None

    def _run_task(self, task: dict, results: dict[str, TaskResult]) -> None:
        r = results[task["name"]]
        scope = dict(self.scope)
        for name in self._deps(task):
            if results[name].result is not None:
                scope[f"tasks.{name}.outputs.result"] = results[name].result
        items = self._items(task, scope)
        template = self.templates[task["template"]]
        if "container" not in template:
            raise UnsupportedTemplate(f"task {task['name']}: only container templates can be called from a DAG")
        if items is not None and not items:
            r.phase, r.message = "Skipped", "empty fan-out list"
            return
        pods = []
        for item in ([None] if items is None else items):
            item_scope = dict(scope)
            if item is not None:
                if isinstance(item, (dict, list)):
                    raise UnsupportedTemplate(f"task {task['name']}: only scalar items are supported")
                item_scope["item"] = str(item).lower() if isinstance(item, bool) else str(item)
            args = {p["name"]: self.substitute(str(p["value"]), item_scope)
                    for p in task.get("arguments", {}).get("parameters", [])}
            pods.append((item, self._pod_scope(template, args)))
        with ThreadPoolExecutor(max_workers=min(len(pods), self.max_pods)) as pool:
            r.pods = list(pool.map(lambda ip: self._run_pod(task["name"], template, *ip), pods))
        if all(p.phase == "Succeeded" for p in r.pods):
            r.phase = "Succeeded"
            if items is None:
                r.result = r.pods[0].stdout.strip()
        else:
            r.phase = "Failed"
            r.message = f"{sum(p.phase != 'Succeeded' for p in r.pods)} of {len(r.pods)} pod(s) failed"

    def _pod_scope(self, template: dict, args: dict[str, str]) -> dict[str, str]:
        scope = dict(self.scope)
        declared = template.get("inputs", {}).get("parameters", [])
        names = {p["name"] for p in declared}
        extra = set(args) - names
        if extra:
            raise UnsupportedTemplate(f"template {template['name']}: arguments {sorted(extra)} are not inputs")
        for p in declared:
            if p["name"] in args:
                value = args[p["name"]]
            elif "value" in p or "default" in p:
                value = self.substitute(str(p.get("value", p.get("default"))), scope)
            else:
                raise UnsupportedTemplate(f"template {template['name']}: input {p['name']!r} not supplied")
            scope[f"inputs.parameters.{p['name']}"] = value
        return scope

    def _run_pod(self, task: str, template: dict, item: Any, scope: dict[str, str]) -> Pod:
        c = template["container"]
        sub = lambda s: self.substitute(str(s), scope)  # noqa: E731
        pod = Pod(task, template["name"], item, [sub(x) for x in c["command"] + c.get("args", [])], self._image(sub(c["image"])))
        rs = template.get("retryStrategy", {})
        limit = int(sub(rs.get("limit", 0)))
        policy = rs.get("retryPolicy", "OnFailure")
        for attempt in range(limit + 1):
            pod.attempts = attempt + 1
            with self.slots:
                try:
                    pod.exit_code, pod.stdout, pod.stderr = self._container(c, sub)
                    pod.phase = "Succeeded" if pod.exit_code == 0 else "Failed"
                except UnsupportedTemplate:
                    raise
                except Exception as exc:  # the pod could not run: an Argo "Error"
                    pod.phase, pod.stderr = "Errored", f"{type(exc).__name__}: {exc}"
            if pod.phase == "Succeeded":
                break
            retryable = {"Always": True, "OnFailure": pod.phase == "Failed", "OnError": pod.phase == "Errored"}[policy]
            if not retryable:
                break
        return pod

    def _image(self, image: str) -> str:
        if self.image_registry and image.startswith(self.image_registry.rstrip("/") + "/"):
            return image[len(self.image_registry.rstrip("/")) + 1:]
        return image

    def _container(self, c: dict, sub) -> tuple[int, str, str]:
        pod_sc = self.spec.get("securityContext", {})
        sc = {**pod_sc, **c.get("securityContext", {})}
        sc.pop("fsGroup", None)
        uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
        if sc.get("runAsNonRoot") and uid in (None, 0):
            raise UnsupportedTemplate("runAsNonRoot needs an explicit non-zero runAsUser here")
        command = [sub(x) for x in c["command"]]
        container = DockerContainer(self._image(sub(c["image"])))
        if c.get("args"):
            container.with_command([sub(x) for x in c["args"]])
        for e in c.get("env", []):
            if "valueFrom" not in e:  # an optional Secret: there is none here, the variable stays unset
                container.with_env(e["name"], sub(e.get("value", "")))
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                raise UnsupportedTemplate(f"volumeMount {m['name']!r}: no such volume")
            v = volumes[m["name"]]
            if "emptyDir" in v:
                container.with_tmpfs_mount(m["mountPath"])
            elif "configMap" in v:
                name = sub(v["configMap"]["name"])
                if name not in self.config_maps:
                    raise ValueError(f"ConfigMap {name!r} is not provided to the executor")
                container.with_volume_mapping(self.config_maps[name], m["mountPath"], "ro")
            else:
                claim = v["persistentVolumeClaim"]
                name = sub(claim["claimName"])
                if name not in self.claims:
                    raise ValueError(f"PersistentVolumeClaim {name!r} is not provided to the executor")
                read_only = claim.get("readOnly", False) or m.get("readOnly", False)
                container.with_volume_mapping(self.claims[name], m["mountPath"], "ro" if read_only else "rw")
        kwargs: dict[str, Any] = {"entrypoint": command, "read_only": bool(sc.get("readOnlyRootFilesystem"))}
        if uid is not None:
            kwargs["user"] = f"{uid}:{gid}" if gid is not None else str(uid)
        if sc.get("allowPrivilegeEscalation") is False:
            kwargs["security_opt"] = ["no-new-privileges"]
        if sc.get("capabilities", {}).get("drop"):
            kwargs["cap_drop"] = list(sc["capabilities"]["drop"])
        if c.get("workingDir"):
            kwargs["working_dir"] = sub(c["workingDir"])
        container.with_kwargs(**kwargs)
        container.start()
        try:
            wrapped = container.get_wrapped_container()
            code = wrapped.wait(timeout=self.pod_timeout_s)["StatusCode"]
            stdout, stderr = container.get_logs()
            return code, stdout.decode(errors="replace"), stderr.decode(errors="replace")
        finally:
            container.stop()
