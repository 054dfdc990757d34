"""Run a rendered Argo WorkflowTemplate with real containers, without a cluster.

This interprets the subset of Argo Workflows that ``astroflow.argo`` renders, and nothing more:
anything else in a template (an unknown key, an expression it does not know) is an error, so
the committed templates stay inside what these tests exercise.

* DAG templates: tasks, ``depends`` (``a && b``, ``a.Succeeded``, ``||``, ``!``, parentheses) or
  ``dependencies``, ``failFast``; ``withParam`` / ``withItems`` / ``withSequence`` fan-out.
* Parameters: ``spec.arguments`` (overridden at submission, like ``argo submit -p``), template
  inputs, task arguments; substitution of ``{{workflow.name}}``, ``{{workflow.status}}`` (in the
  exit handler), ``{{workflow.parameters.x}}``, ``{{inputs.parameters.x}}``, ``{{item}}``,
  ``{{retries}}``, ``{{tasks.X.outputs.result}}`` and expression tags ``{{=...}}`` (the part of
  the expr language Argo templates use: literals, lists, indexing, ``==``/``!=``/comparisons,
  ``in``, ``contains``, ``matches``, ``&&``/``||``/``!``, ``?:``, ``asInt``, ``asFloat``,
  ``sprig.default``, ``sprig.min``, ``sprig.max``, ``sprig.int``; :func:`evaluate`).
* Container templates, one container per pod (testcontainers): ``command`` replaces the image's
  entry point, ``args``, ``env``; ``outputs.result`` is the container's stdout; output parameters
  ``valueFrom.path`` are read from a claim's host folder, and take their ``default`` where the
  file is absent or lies in an emptyDir (a tmpfs here, gone when the container stops).
* Volumes: PersistentVolumeClaims are bind mounts of host folders (``claims``), ConfigMaps are
  read-only bind mounts of host folders (``config_maps``), ``emptyDir`` is a tmpfs; ``readOnly`` on
  a claim or a mount is honoured.
* Security: pod and container ``runAsUser``/``runAsGroup`` (``runAsNonRoot`` is checked),
  ``readOnlyRootFilesystem``, ``allowPrivilegeEscalation: false`` (no-new-privileges),
  ``capabilities.drop``.
* ``retryStrategy``: ``limit``, ``retryPolicy`` and ``expression`` (over ``lastRetry.exitCode``,
  ``status``, ``duration`` and ``message``, as Argo: an OOM kill reads ``OOMKilled (exit code
  137)``); the backoff is not waited for and ``affinity`` has no second node to go to.  A
  ``podSpecPatch`` is evaluated for every attempt (its ``retries``) and must patch only the main
  container's resources; each attempt's resources are recorded on the :class:`Pod` (they are not
  enforced: Docker is given no limits here).
* ``activeDeadlineSeconds``: a pod past its template's deadline is killed and Failed (as Argo
  does); a workflow past its own starts no further task and ends Failed.
* ``synchronization``: the workflow's mutexes are held for the whole run (two submissions in one
  process queue on the same name); a template's semaphores (``configMapKeyRef``) bound its pods
  across workflows, their sizes read from the ConfigMap's folder in ``config_maps`` (Argo fails a
  node whose semaphore ConfigMap is missing, and so does this).
* ``onExit``: the exit handler's template runs after the DAG with ``workflow.status``; if it fails
  the workflow fails.
* Pods of independent tasks run ``max_pods`` (default 2) at a time, also bounded by
  ``spec.parallelism``.

Cluster-only fields (labels, annotations, service account, podGC, ttlStrategy, metrics,
scheduling: nodeSelector, tolerations, affinity, priority class) are accepted and have no effect
here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import requests  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402


class UnsupportedTemplate(Exception):
    """The template uses something this executor does not implement."""


# Keys this executor understands, per object.  "ignored" ones only matter on a cluster.
SCHEDULING = {"nodeSelector", "tolerations", "affinity"}
KNOWN = {
    "document": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "generateName", "namespace", "labels", "annotations"},
    "spec": {"entrypoint", "templates", "arguments", "volumes", "parallelism", "securityContext",
             "serviceAccountName", "podGC", "ttlStrategy", "workflowMetadata", "onExit", "activeDeadlineSeconds",
             "synchronization", "metrics", "imagePullSecrets", "podPriorityClassName"} | SCHEDULING,
    "template": {"name", "container", "dag", "inputs", "outputs", "metadata", "retryStrategy", "failFast",
                 "activeDeadlineSeconds", "podSpecPatch", "synchronization", "metrics", "priorityClassName"}
                | SCHEDULING,
    "template.metadata": {"labels", "annotations"},
    "container": {"image", "command", "args", "env", "volumeMounts", "resources", "securityContext",
                  "workingDir"},
    "env": {"name", "value", "valueFrom"},
    "valueFrom": {"secretKeyRef"},
    "secretKeyRef": {"name", "key", "optional"},
    "volumeMount": {"name", "mountPath", "readOnly"},
    "resources": {"requests", "limits"},
    "podSecurityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "seccompProfile"},
    "securityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                        "allowPrivilegeEscalation", "capabilities", "privileged", "seccompProfile"},
    "capabilities": {"drop"},
    "volume": {"name", "persistentVolumeClaim", "configMap", "emptyDir"},
    "persistentVolumeClaim": {"claimName", "readOnly"},
    "configMap": {"name"},
    "emptyDir": set(),
    "parameter": {"name", "value", "default", "description", "enum"},
    "outputs": {"parameters"},
    "outputParameter": {"name", "valueFrom"},
    "outputValueFrom": {"path", "default"},
    "retryStrategy": {"limit", "retryPolicy", "backoff", "expression", "affinity"},
    "retryAffinity": {"nodeAntiAffinity"},
    "backoff": {"duration", "factor", "maxDuration"},
    "synchronization": {"mutexes", "semaphores"},
    "mutex": {"name"},
    "semaphore": {"configMapKeyRef"},
    "configMapKeyRef": {"name", "key"},
    "metrics": {"prometheus"},
    "metric": {"name", "help", "labels", "gauge", "counter", "histogram", "when"},
    "dag": {"tasks", "failFast"},
    "task": {"name", "template", "depends", "dependencies", "arguments", "withParam", "withItems",
             "withSequence"},
    "arguments": {"parameters"},
    "inputs": {"parameters"},
    "withSequence": {"count", "start", "end"},
}

_LOCKS: dict[tuple, threading.BoundedSemaphore] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(key: tuple, size: int) -> threading.BoundedSemaphore:
    """The process-wide lock of a mutex or semaphore name: shared by every workflow run here."""
    with _LOCKS_GUARD:
        if key not in _LOCKS:
            _LOCKS[key] = threading.BoundedSemaphore(size)
        return _LOCKS[key]


DONE = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted"}


def check_keys(obj: Any, kind: str, where: str) -> None:
    if not isinstance(obj, dict):
        raise UnsupportedTemplate(f"{where}: expected a mapping for {kind}, got {type(obj).__name__}")
    unknown = set(obj) - KNOWN[kind]
    if unknown:
        raise UnsupportedTemplate(f"{where}: unsupported {kind} key(s) {sorted(unknown)}")


# --- Argo's expression tags (the expr language, the part templates use) ---------------------------
TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'[^']*'|"[^"]*")|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"""
                   r"""|(?P<op>\|\||&&|==|!=|<=|>=|\*\*|[-+*/%<>!?:()\[\],.]))""")
BINARY = {  # operator -> precedence (higher binds tighter), as in expr
    "||": 1, "or": 1, "&&": 2, "and": 2,
    "==": 3, "!=": 3, "<": 3, ">": 3, "<=": 3, ">=": 3, "in": 3, "contains": 3, "matches": 3,
    "startsWith": 3, "endsWith": 3,
    "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "**": 6,
}


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            if expr[pos:].strip() == "":
                break
            raise UnsupportedTemplate(f"unsupported expression {expr!r} at {expr[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


def parse(expr: str):
    """The syntax tree of an expression tag's body (nested tuples); raises UnsupportedTemplate."""
    toks = _tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else (None, None)

    def take(value=None):
        nonlocal pos
        tok = peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise UnsupportedTemplate(f"unsupported expression {expr!r}: expected {value or 'more'}")
        pos += 1
        return tok

    def primary():
        kind, value = take()
        if kind == "num":
            node = ("lit", float(value) if "." in value else int(value))
        elif kind == "str":
            node = ("lit", value[1:-1])
        elif kind == "name" and value in ("true", "false", "nil"):
            node = ("lit", {"true": True, "false": False, "nil": None}[value])
        elif kind == "name" and value == "not":
            return ("not", binary(6))
        elif kind == "name":
            node = ("var", value)
        elif value == "(":
            node = ternary()
            take(")")
        elif value == "[":
            items = []
            while peek()[1] != "]":
                items.append(ternary())
                if peek()[1] == ",":
                    take(",")
            take("]")
            node = ("list", items)
        elif value == "!":
            return ("not", binary(6))
        elif value == "-":
            return ("neg", binary(6))
        else:
            raise UnsupportedTemplate(f"unsupported expression {expr!r} near {value!r}")
        while peek()[1] in (".", "[", "("):
            _, op = take()
            if op == ".":
                node = ("get", node, ("lit", take()[1]))
            elif op == "[":
                node = ("get", node, ternary())
                take("]")
            else:
                args = []
                while peek()[1] != ")":
                    args.append(ternary())
                    if peek()[1] == ",":
                        take(",")
                take(")")
                node = ("call", node, args)
        return node

    def binary(min_prec: int):
        left = primary()
        while True:
            kind, op = peek()
            if op == "not" and pos + 1 < len(toks) and toks[pos + 1][1] == "in":
                take(), take()
                left = ("not", ("bin", "in", left, binary(BINARY["in"] + 1)))
                continue
            if op not in BINARY or BINARY[op] < min_prec:
                return left
            take()
            right = binary(BINARY[op] + (0 if op == "**" else 1))
            left = ("bin", op, left, right)

    def ternary():
        cond = binary(1)
        if peek()[1] == "?":
            take("?")
            yes = ternary()
            take(":")
            return ("if", cond, yes, ternary())
        return cond

    tree = ternary()
    if pos != len(toks):
        raise UnsupportedTemplate(f"unsupported expression {expr!r}: trailing {toks[pos][1]!r}")
    return tree


def _sprig_default(default, value):
    return value if value not in (None, "", 0, False, [], {}) else default


FUNCTIONS = {
    "asInt": lambda v: int(float(v)) if isinstance(v, str) and "." in v else int(v),
    "asFloat": float,
    "string": lambda v: _text(v),
    "sprig": {"default": _sprig_default, "min": lambda *a: min(int(x) for x in a),
              "max": lambda *a: max(int(x) for x in a), "int": lambda v: int(float(v))},
}


def _environment(scope: dict[str, str]) -> dict:
    """``workflow.parameters.x`` -> {"workflow": {"parameters": {"x": ...}}}, as Argo expands its scope.
    Parameter names keep their dots after ``parameters.`` (``inputs.parameters.a.b``)."""
    env: dict = dict(FUNCTIONS)
    for key, value in scope.items():
        parts = key.split(".")
        if "parameters" in parts[:-1]:
            i = parts.index("parameters")
            parts = parts[:i + 1] + [".".join(parts[i + 1:])]
        node = env
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UnsupportedTemplate(f"scope key {key!r} collides with another")
        node[parts[-1]] = value
    return env


def evaluate(expr: str, scope: dict[str, str]):
    """The value of an expression tag's body over the scope's variables (strings, as Argo's)."""
    env = _environment(scope)

    def ev(node):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "list":
            return [ev(x) for x in node[1]]
        if kind == "var":
            if node[1] not in env:
                raise UnsupportedTemplate(f"expression {expr!r}: {node[1]!r} is not defined")
            return env[node[1]]
        if kind == "get":
            obj, key = ev(node[1]), ev(node[2])
            try:
                return obj[key]
            except (KeyError, IndexError, TypeError):
                raise UnsupportedTemplate(f"expression {expr!r}: no {key!r} in {obj!r}") from None
        if kind == "call":
            fn = ev(node[1])
            if not callable(fn):
                raise UnsupportedTemplate(f"expression {expr!r}: {fn!r} is not a function")
            return fn(*[ev(a) for a in node[2]])
        if kind == "not":
            return not ev(node[1])
        if kind == "neg":
            return -ev(node[1])
        if kind == "if":
            return ev(node[2]) if ev(node[1]) else ev(node[3])
        op, a = node[1], ev(node[2])
        if op in ("||", "or"):
            return a or ev(node[3])
        if op in ("&&", "and"):
            return a and ev(node[3])
        b = ev(node[3])
        ops = {
            "==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, ">": lambda: a > b,
            "<=": lambda: a <= b, ">=": lambda: a >= b, "in": lambda: a in b,
            "contains": lambda: str(b) in str(a), "matches": lambda: re.search(b, a) is not None,
            "startsWith": lambda: str(a).startswith(b), "endsWith": lambda: str(a).endswith(b),
            "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
            "%": lambda: a % b, "**": lambda: float(a) ** b,
        }
        return ops[op]()

    return ev(parse(expr))


def _text(value) -> str:
    """An expression's value as Argo writes it into the template."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


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
    message: str = ""  # as Argo words it: "Error (exit code 3)", "OOMKilled (exit code 137)"
    resources: list[dict] = field(default_factory=list)  # the main container's resources, per attempt
    outputs: dict[str, str] = field(default_factory=dict)  # output parameters of the last attempt


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
    exit_handler: TaskResult | None = None  # spec.onExit, run after the DAG
    message: str = ""

    @property
    def pods(self) -> list[Pod]:
        return [p for t in self.tasks.values() for p in t.pods]

    def describe(self) -> str:
        lines = [f"workflow {self.name}: {self.phase} {self.message}".rstrip()]
        for t in list(self.tasks.values()) + ([self.exit_handler] if self.exit_handler else []):
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
        self._check_common(spec, "spec")
        names = set()
        for t in spec["templates"]:
            where = f"template {t.get('name')}"
            check_keys(t, "template", where)
            names.add(t["name"])
            self._check_common(t, where)
            check_keys(t.get("outputs", {}), "outputs", where + ".outputs")
            for p in t.get("outputs", {}).get("parameters", []):
                check_keys(p, "outputParameter", where + ".outputs")
                check_keys(p.get("valueFrom", {}), "outputValueFrom", where + ".outputs.valueFrom")
                if "path" not in p.get("valueFrom", {}):
                    raise UnsupportedTemplate(f"{where}: output parameter {p['name']} needs valueFrom.path")
            if "podSpecPatch" in t and not isinstance(t["podSpecPatch"], str):
                raise UnsupportedTemplate(f"{where}: podSpecPatch must be a string (JSON or YAML)")
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
                check_keys(rs.get("affinity", {}), "retryAffinity", where + ".retryStrategy.affinity")
                if "expression" in rs:
                    parse(rs["expression"])  # refuses what evaluate() cannot read
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
        if "onExit" in spec:
            exit_template = next((t for t in spec["templates"] if t["name"] == spec["onExit"]), None)
            if exit_template is None or "container" not in exit_template:
                raise UnsupportedTemplate(f"onExit {spec['onExit']!r} is not a container template")

    @staticmethod
    def _check_common(obj: dict, where: str) -> None:
        """What a workflow spec and a template share: a deadline, locks, metrics."""
        deadline = obj.get("activeDeadlineSeconds")
        if deadline is not None and not str(deadline).isdigit():
            raise UnsupportedTemplate(f"{where}: activeDeadlineSeconds {deadline!r} is not a number of seconds")
        sync = obj.get("synchronization", {})
        check_keys(sync, "synchronization", where + ".synchronization")
        for mutex in sync.get("mutexes", []):
            check_keys(mutex, "mutex", where + ".synchronization.mutexes")
        for sem in sync.get("semaphores", []):
            check_keys(sem, "semaphore", where + ".synchronization.semaphores")
            check_keys(sem.get("configMapKeyRef", {}), "configMapKeyRef", where + ".synchronization.semaphores")
        check_keys(obj.get("metrics", {}), "metrics", where + ".metrics")
        for metric in obj.get("metrics", {}).get("prometheus", []):
            check_keys(metric, "metric", where + ".metrics.prometheus")

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

    EXPR = re.compile(r"\{\{\s*(=?)(.*?)\s*\}\}", re.S)

    def substitute(self, text: str, scope: dict[str, str]) -> str:
        def one(m: re.Match) -> str:
            if m.group(1) == "=":
                return _text(evaluate(m.group(2), scope))
            key = m.group(2)
            if key not in scope:
                raise UnsupportedTemplate(f"unresolved or unsupported reference {{{{{key}}}}}")
            return scope[key]

        return self.EXPR.sub(one, text)

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
        deadline = self.spec.get("activeDeadlineSeconds")
        self.deadline = None if deadline is None else time.monotonic() + int(deadline)
        entry = self.templates[self.spec["entrypoint"]]
        if "dag" not in entry:
            raise UnsupportedTemplate("the entrypoint must be a DAG template")
        mutexes = sorted({self.substitute(mx["name"], self.scope)
                          for mx in self.spec.get("synchronization", {}).get("mutexes", [])})
        with contextlib.ExitStack() as held:  # sorted: two workflows never wait on each other's second lock
            for mutex in mutexes:
                held.enter_context(_lock(("mutex", mutex), 1))
            tasks = self._run_dag(entry)
            phase = "Succeeded" if all(t.phase in ("Succeeded", "Skipped") for t in tasks.values()) else "Failed"
            result = WorkflowResult(wf_name, phase, tasks)
            if self._past_deadline():
                result.phase, result.message = "Failed", "Step exceeded its deadline"
            if "onExit" in self.spec:
                result.exit_handler = self._run_exit(result)
                if result.exit_handler.phase != "Succeeded":
                    result.phase, result.message = "Failed", "the exit handler failed"
        return result

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _run_exit(self, result: WorkflowResult) -> TaskResult:
        template = self.templates[self.spec["onExit"]]
        scope = {**self.scope, "workflow.status": result.phase}
        r = TaskResult(self.spec["onExit"])
        r.pods = [self._run_pod(r.name, template, None, {**self._pod_scope(template, {}), **scope})]
        r.phase = r.pods[0].phase
        r.result = r.pods[0].stdout.strip()
        return r

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
                    if self._past_deadline():
                        r.phase, r.message = "Omitted", "the workflow exceeded its activeDeadlineSeconds"
                        continue
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
        policy = rs.get("retryPolicy", "OnFailure" if "expression" not in rs else "Always")
        deadline = template.get("activeDeadlineSeconds")
        timeout = min(self.pod_timeout_s, int(deadline)) if deadline is not None else self.pod_timeout_s
        locks = [self._semaphore(ref["configMapKeyRef"], template["name"])
                 for ref in template.get("synchronization", {}).get("semaphores", [])]
        last: dict[str, str] = {}
        for attempt in range(limit + 1):
            pod.attempts = attempt + 1
            attempt_scope = {**scope, "retries": str(attempt)} if "retryStrategy" in template else scope
            attempt_scope.update({f"lastRetry.{k}": v for k, v in last.items()})
            pod.resources.append(self._resources(template, attempt_scope))
            started = time.monotonic()
            with contextlib.ExitStack() as held:
                for lock in locks:
                    held.enter_context(lock)
                with self.slots:
                    try:
                        pod.exit_code, pod.stdout, pod.stderr, oom = self._container(c, attempt_scope, timeout)
                        if pod.exit_code is None:
                            pod.phase, pod.message = "Failed", "Pod was active on the node longer than the specified deadline"
                        else:
                            pod.phase = "Succeeded" if pod.exit_code == 0 else "Failed"
                            pod.message = "" if pod.exit_code == 0 else \
                                f"{'OOMKilled' if oom else 'Error'} (exit code {pod.exit_code})"
                    except UnsupportedTemplate:
                        raise
                    except Exception as exc:  # the pod could not run: an Argo "Error"
                        pod.phase, pod.stderr = "Errored", f"{type(exc).__name__}: {exc}"
                        pod.message = pod.stderr
            pod.outputs = self._outputs(template, c, attempt_scope)
            if pod.phase == "Succeeded":
                break
            retryable = {"Always": True, "OnFailure": pod.phase == "Failed", "OnError": pod.phase == "Errored"}[policy]
            last = {"exitCode": str(pod.exit_code if pod.exit_code is not None else -1),
                    "status": "Error" if pod.phase == "Errored" else "Failed",
                    "duration": str(int(time.monotonic() - started)), "message": pod.message}
            if retryable and "expression" in rs:
                retryable = bool(evaluate(rs["expression"], {**attempt_scope, **{f"lastRetry.{k}": v for k, v in last.items()}}))
            if not retryable:
                break
        return pod

    def _semaphore(self, ref: dict, template: str) -> threading.BoundedSemaphore:
        name, key = ref["name"], ref["key"]
        if name not in self.config_maps or not (self.config_maps[name] / key).is_file():
            raise UnsupportedTemplate(f"template {template}: semaphore ConfigMap {name!r} key {key!r} is not provided "
                                      "to the executor (config_maps)")
        return _lock(("semaphore", name, key), int((self.config_maps[name] / key).read_text().strip()))

    def _resources(self, template: dict, scope: dict[str, str]) -> dict:
        """The main container's resources for this attempt: the template's, patched by podSpecPatch."""
        resources = json.loads(json.dumps(template["container"].get("resources", {})))
        if "podSpecPatch" not in template:
            return resources
        patch = json.loads(self.substitute(template["podSpecPatch"], scope))
        if set(patch) != {"containers"} or any(set(c) - {"name", "resources"} or c.get("name") != "main"
                                                for c in patch["containers"]):
            raise UnsupportedTemplate(f"template {template['name']}: podSpecPatch may only patch the main container's "
                                      "resources here")
        for c in patch["containers"]:
            check_keys(c.get("resources", {}), "resources", f"template {template['name']}.podSpecPatch")
            for kind, values in c.get("resources", {}).items():
                resources.setdefault(kind, {}).update(values)
        return resources

    def _outputs(self, template: dict, c: dict, scope: dict[str, str]) -> dict[str, str]:
        """Output parameters: a file on a claim is read from its host folder; one in an emptyDir (a
        tmpfs here) or absent takes its default, as Argo does for a missing file with a default."""
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        out = {}
        for p in template.get("outputs", {}).get("parameters", []):
            path = self.substitute(p["valueFrom"]["path"], scope)
            value = None
            for mnt in c.get("volumeMounts", []):
                claim = volumes.get(mnt["name"], {}).get("persistentVolumeClaim")
                root = mnt["mountPath"].rstrip("/") + "/"
                if claim and path.startswith(root):
                    host = self.claims.get(self.substitute(claim["claimName"], scope))
                    if host is not None and (host / path[len(root):]).is_file():
                        value = (host / path[len(root):]).read_text().strip()
            if value is None:
                if "default" not in p["valueFrom"]:
                    raise ValueError(f"template {template['name']}: output parameter {p['name']}: {path} not found")
                value = str(p["valueFrom"]["default"])
            out[p["name"]] = value
        return out

    def _image(self, image: str) -> str:
        if self.image_registry and image.startswith(self.image_registry.rstrip("/") + "/"):
            return image[len(self.image_registry.rstrip("/")) + 1:]
        return image

    def _container(self, c: dict, scope: dict[str, str], timeout: float) -> tuple[int | None, str, str, bool]:
        """Run the container: (exit code, or None when killed at the deadline; stdout; stderr; OOM-killed)."""
        sub = lambda s: self.substitute(str(s), scope)  # noqa: E731
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
            try:
                code = wrapped.wait(timeout=timeout)["StatusCode"]
            except requests.exceptions.RequestException:  # still running at the deadline: killed, as Argo does
                wrapped.kill()
                code = None
            wrapped.reload()
            oom = bool(wrapped.attrs.get("State", {}).get("OOMKilled"))
            stdout, stderr = container.get_logs()
            return code, stdout.decode(errors="replace"), stderr.decode(errors="replace"), oom
        finally:
            container.stop()
