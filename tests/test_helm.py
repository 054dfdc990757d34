"""The Helm chart: every site's values render, lint strictly and give valid objects.

Rendering uses helm-python-sdk (the Helm v4 SDK, offline).  Core objects are checked against the
Kubernetes schemas of kubernetes-validate; Argo objects against Hera's strict models plus
astroflow.argo.lint (Argo Events objects: tests/test_events.py).  A site whose pipeline has not been
compiled yet is rendered from a copy of the chart holding a stand-in template (a toy night pipeline,
partitioned and fed by arrivals, under that name); test_argo makes sure every pipeline that exists
is compiled into argo/, from which the chart is packaged.
"""

from __future__ import annotations

import atexit
import copy
import json
import shutil
import tempfile
import tomllib
import warnings
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from astroflow import argo, config, registry
from astroflow.step import Resources

from test_argo import ROOT, night_pipeline

def _package() -> Path:
    """The chart as it is packaged (``make render``): helm/astroflow with every pipeline's template
    rendered from its declaration into files/workflowtemplates/ (the repository keeps them in argo/
    only, and test_argo checks argo/ is that same rendering)."""
    chart = Path(tempfile.mkdtemp(prefix="astroflow-chart-")) / "astroflow"
    atexit.register(shutil.rmtree, chart.parent, True)
    shutil.copytree(ROOT / "helm" / "astroflow", chart, ignore=shutil.ignore_patterns("workflowtemplates"))
    for name in registry.PIPELINES:
        try:
            argo.render(name, chart / "files" / "workflowtemplates")
        except Exception as exc:  # a pipeline being edited elsewhere: its committed template stands in
            warnings.warn(f"pipeline {name} does not render ({type(exc).__name__}: {exc}); packaging argo/{name}.yaml")
            argo.sync_chart(ROOT / "argo", chart, [name])
    return chart


CHART = _package()
COMPILED = CHART / "files" / "workflowtemplates"
SITES = sorted((CHART / "sites").glob("*.yaml"))
KUBE_VERSION = "1.33.0"
EXECUTOR_RULES = [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
SENSOR_RULES = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get", "list", "watch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["workflowtemplates"], "verbs": ["get", "list", "watch"]},
]


def site_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def with_defaults(values: dict) -> dict:
    """The values as the chart sees them: its defaults, overridden key by key by ``values``."""
    def merge(base, over):
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over
    return merge(yaml.safe_load((CHART / "values.yaml").read_text()), values)


def chart_for(values: dict, tmp_path: Path) -> Path:
    """The chart, or a copy with stand-in templates for pipelines not compiled yet."""
    missing = [p for p in values.get("pipelines", []) if not (COMPILED / f"{p}.yaml").exists()]
    if not missing:
        return CHART
    chart = tmp_path / "astroflow"
    shutil.copytree(CHART, chart)
    for name in missing:
        (chart / "files" / "workflowtemplates" / f"{name}.yaml").write_text(argo.to_yaml(night_pipeline(name)))
    return chart


def render(chart: Path, values: dict, namespace: str = "astro") -> list[dict]:
    with helm.Chart.load(str(chart)) as c:
        c.validate_schema(values)
        manifests = c.render(values, name="astroflow", namespace=namespace)
    docs = []
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


@pytest.fixture(params=SITES, ids=lambda p: p.stem)
def site(request, tmp_path):
    values = site_values(request.param)
    chart = chart_for(values, tmp_path)
    return request.param.stem, values, chart, render(chart, values, namespace=request.param.stem)


def test_every_site_has_a_values_file():
    assert {p.stem for p in SITES} == {"tess-vetting", "tacc-hetdex", "mssl-vison", "lco-nres", "palomar-sedm"}


def test_site_lints_strictly(site, tmp_path):
    name, values, chart, _ = site
    report = helm.lint(str(chart), values, strict=True, namespace=name, kube_version="v" + KUBE_VERSION)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_defaults_render_and_lint():
    values = helm.Chart.load(str(CHART)).values
    docs = render(CHART, values)
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim",
                                         "ConfigMap", "NetworkPolicy"}  # the semaphores' sizes
    report = helm.lint(str(CHART), None, strict=True)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


def test_core_objects_validate_against_kubernetes_schemas(site):
    _, _, _, docs = site
    core = [d for d in docs if not d["apiVersion"].startswith("argoproj.io/")]
    assert {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim"} <= {d["kind"] for d in core}
    for doc in core:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_role_grants_only_what_the_executor_needs(site):
    name, values, _, docs = site
    sa = values.get("serviceAccount", {}).get("name", "astroflow-workflow")
    roles = {r["metadata"]["name"]: r for r in by_kind(docs, "Role")}
    assert roles.pop(f"{sa}-executor")["rules"] == EXECUTOR_RULES
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    bindings = {b["metadata"]["name"]: b for b in by_kind(docs, "RoleBinding")}
    binding = bindings.pop(f"{sa}-executor")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{sa}-executor"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": name}]
    accounts = {a["metadata"]["name"] for a in by_kind(docs, "ServiceAccount")}
    assert sa in accounts
    if by_kind(docs, "Sensor"):  # the Sensors' account may submit workflows, nothing else
        assert roles.pop(f"{sa}-sensor")["rules"] == SENSOR_RULES
        assert bindings.pop(f"{sa}-sensor")["subjects"] == [{"kind": "ServiceAccount", "name": f"{sa}-sensor",
                                                              "namespace": name}]
        assert accounts == {sa, f"{sa}-sensor"}
    else:
        assert accounts == {sa}
    assert roles == {} and bindings == {}


def test_workflow_templates_validate_and_carry_site_defaults(site):
    name, values, _, docs = site
    templates = {d["metadata"]["name"]: d for d in by_kind(docs, "WorkflowTemplate")}
    assert set(templates) == {argo.template_name(p) for p in values["pipelines"]}
    storage = values["storage"]
    merged = with_defaults(values)
    for wt in templates.values():
        argo.validate(wt)
        spec = wt["spec"]
        params = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
        assert params["registry"] == values["image"]["registry"]
        assert params["tag"] == str(values["image"]["tag"])
        assert params["run-claim"] == storage["run"]["claimName"]
        assert params["data-claim"] == storage["rawData"]["claimName"]
        assert params["db-secret"] == merged["calibrations"]["dbSecret"]["name"]
        assert params["db-secret-key"] == merged["calibrations"]["dbSecret"]["key"]
        if "partition" in params:
            assert params["partition"] == ""  # unpartitioned unless a run, a cron or an event says
            assert params["timezone"] == merged["site"]["timezone"]
            assert params["restart-hour"] == str(merged["site"]["restartHour"])
        assert spec["parallelism"] == values["parallelism"]
        assert spec["serviceAccountName"] == values.get("serviceAccount", {}).get("name", "astroflow-workflow")
        assert spec.get("nodeSelector", {}) == values.get("nodeSelector", {})
        assert "{{workflow.parameters.registry}}" in json.dumps(wt)  # Argo's tags survive Helm
        assert "{{=sprig.default(workflow.name" in json.dumps(wt)
        for t in spec["templates"]:
            for mnt in t.get("container", {}).get("volumeMounts", []):
                if mnt["mountPath"] == argo.DATA_MOUNT:
                    assert mnt["readOnly"] is True


def overridden(template: dict, override: dict) -> dict:
    """What the chart makes of a compiled step template under ``steps.<pipeline>.<step>``, computed
    the Python way (astroflow.argo.memory_patch): the chart's helper must agree."""
    t = copy.deepcopy(template)
    if "activeDeadlineSeconds" in override:
        t["activeDeadlineSeconds"] = override["activeDeadlineSeconds"]
    if "resources" in override or "oomRetry" in override:
        res = t["container"]["resources"]
        for kind, values in override.get("resources", {}).items():
            res[kind] = {**res.get(kind, {}), **values}
        notes = t["metadata"]["annotations"]
        oom = override.get("oomRetry", {})
        factor = oom.get("factor", float(notes["astroflow.io/oom-factor"]))
        r = Resources(cpu=res["requests"]["cpu"], memory=res["requests"]["memory"], cpu_limit=res["limits"]["cpu"],
                      memory_limit=res["limits"]["memory"], oom_factor=factor,
                      memory_cap=oom.get("maxMemory", notes.get("astroflow.io/memory-cap")))
        t["podSpecPatch"] = argo.memory_patch(r, t["retryStrategy"]["limit"])
        notes["astroflow.io/oom-factor"] = f"{factor:g}"
    return t


SITE_SPEC_KEYS = ("parallelism", "serviceAccountName", "arguments", "nodeSelector", "tolerations", "imagePullSecrets",
                  "affinity", "podPriorityClassName", "templateDefaults", "podSpecPatch", "activeDeadlineSeconds")


def expected_from_compiled(compiled: dict, values: dict) -> dict:
    """The compiled template with the site's step overrides and retry setting applied."""
    merged = with_defaults(values)
    pipeline = compiled["metadata"]["labels"]["astroflow.io/pipeline"]
    overrides = merged["steps"].get(pipeline, {})
    templates = []
    for t in compiled["spec"]["templates"]:
        step = t.get("metadata", {}).get("labels", {}).get("astroflow.io/step")
        t = overridden(t, overrides[step]) if step in overrides else t
        if not merged["retry"]["avoidFailedNode"] and "retryStrategy" in t:
            t["retryStrategy"].pop("affinity")
        templates.append(t)
    return {**compiled, "spec": {**compiled["spec"], "templates": templates}}


def test_rendered_templates_equal_the_compiled_ones_but_for_site_settings(site, tmp_path):
    _, values, chart, docs = site
    merged = with_defaults(values)
    for wt in by_kind(docs, "WorkflowTemplate"):
        pipeline = wt["metadata"]["labels"]["astroflow.io/pipeline"]
        compiled = yaml.safe_load((chart / "files" / "workflowtemplates" / f"{pipeline}.yaml").read_text())
        assert wt["spec"]["activeDeadlineSeconds"] == merged["activeDeadlineSeconds"]
        expected = expected_from_compiled(compiled, values)
        for doc in (wt, expected):
            doc["metadata"]["labels"] = {k: v for k, v in doc["metadata"]["labels"].items() if k.startswith("astroflow.io/")}
            for key in SITE_SPEC_KEYS:
                doc["spec"].pop(key, None)
        assert wt == expected


def test_cron_workflows_reference_installed_templates(site):
    _, values, _, docs = site
    templates = {d["metadata"]["name"]: d for d in by_kind(docs, "WorkflowTemplate")}
    crons = by_kind(docs, "CronWorkflow")
    assert [c["metadata"]["name"] for c in crons] == [c["name"] for c in values.get("cronWorkflows", [])]
    for cron in crons:
        argo.validate(cron)
        ref = cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"]
        assert ref in templates
        assert argo.lint_reference(cron, templates[ref]) == []
        assert cron["spec"]["schedules"] and cron["spec"]["concurrencyPolicy"] in ("Forbid", "Replace", "Allow")
        params = {p["name"]: p["value"] for p in cron["spec"]["workflowSpec"].get("arguments", {}).get("parameters", [])}
        if "config-map" in params:
            assert params["config-map"] in {d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")}
        entry = next(c for c in values["cronWorkflows"] if c["name"] == cron["metadata"]["name"])
        if "partition" in entry:  # the site's clock resolves last-night
            merged = with_defaults(values)
            assert params["partition"] == entry["partition"]
            assert params["timezone"] == entry.get("timezone", merged["site"]["timezone"])
            assert params["restart-hour"] == str(entry.get("restartHour", merged["site"]["restartHour"]))
        else:
            assert "partition" not in params
        assert "synchronization" not in cron["spec"]["workflowSpec"]  # the template's run mutex stays in force


def test_a_partitioned_cron_with_a_run_name_queues_on_its_mutex(tmp_path):
    values = site_values(CHART / "sites" / "lco-nres.yaml")
    values["cronWorkflows"][0]["parameters"]["run-name"] = "nres-stack"
    values["cronWorkflows"][0]["restartHour"] = 16
    docs = render(chart_for(values, tmp_path), values)
    (cron,) = by_kind(docs, "CronWorkflow")
    argo.validate(cron)
    spec = cron["spec"]["workflowSpec"]
    template = next(d for d in docs if d["kind"] == "WorkflowTemplate")
    assert template["spec"]["synchronization"] == {"mutexes": [{"name": argo.RUN_MUTEX}]}  # astroflow-run-nres-stack
    assert "synchronization" not in spec
    params = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
    assert (params["partition"], params["timezone"], params["restart-hour"]) == ("last-night", "UTC", "16")
    assert argo.lint_reference(cron, template) == []
    values["cronWorkflows"][0]["timezone"] = "Mars/Olympus_Mons"  # passes the schema's shape, not the lint
    (cron,) = by_kind(render(chart_for(values, tmp_path / "2"), values), "CronWorkflow")
    assert any("'Mars/Olympus_Mons' is not an IANA time zone" in p for p in argo.lint_reference(cron, template))


# --- the calibration database ---------------------------------------------------------------------------
def test_workflow_pods_read_the_database_url_from_the_site_secret(site):
    _, values, _, docs = site
    secret = with_defaults(values)["calibrations"]["dbSecret"]
    for wt in by_kind(docs, "WorkflowTemplate"):
        params = {p["name"]: p["value"] for p in wt["spec"]["arguments"]["parameters"]}
        for t in wt["spec"]["templates"]:
            if "container" in t:
                (env,) = [e for e in t["container"]["env"] if e["name"] == argo.DB_URL_ENV]
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["optional"] is True  # without the Secret the pod starts, with SQLite
                assert (ref["name"], ref["key"]) == ("{{workflow.parameters.db-secret}}", "{{workflow.parameters.db-secret-key}}")
        assert (params["db-secret"], params["db-secret-key"]) == (secret["name"], secret["key"])
    assert not by_kind(docs, "Secret")  # sites create it themselves


def test_the_chart_creates_the_database_secret_only_when_asked(tmp_path):
    values = site_values(CHART / "sites" / "tess-vetting.yaml")
    values["calibrations"] = {"dbSecret": {"name": "calib-db", "key": "dsn", "create": True,
                                           "url": "postgresql://astro:pw@db.example.org/calib"}}
    docs = render(CHART, values)
    (secret,) = by_kind(docs, "Secret")
    kubernetes_validate.validate(secret, KUBE_VERSION, strict=True)
    assert secret["metadata"]["name"] == "calib-db" and secret["stringData"] == {"dsn": "postgresql://astro:pw@db.example.org/calib"}
    (wt,) = by_kind(docs, "WorkflowTemplate")
    params = {p["name"]: p["value"] for p in wt["spec"]["arguments"]["parameters"]}
    assert (params["db-secret"], params["db-secret-key"]) == ("calib-db", "dsn")
    values["calibrations"]["dbSecret"]["url"] = ""
    with pytest.raises(helm.HelmError, match="dbSecret.create needs calibrations.dbSecret.url"):
        render(CHART, values)


def test_run_configurations_are_valid(site):
    _, values, _, docs = site
    maps = [m for m in by_kind(docs, "ConfigMap") if m["metadata"]["name"] != argo.SEMAPHORE_CONFIG_MAP]
    assert {m["metadata"]["name"] for m in maps} == {f"astroflow-run-{k}" for k in values["runConfigs"]}
    for pipeline in values["pipelines"]:
        assert argo.config_map_name(pipeline) in {m["metadata"]["name"] for m in maps}, "the template's default config"
    for cm in maps:
        data = tomllib.loads(cm["data"]["run.toml"])
        cfg = config.RunConfig.model_validate(data)
        assert cfg.pipeline in values["pipelines"]
        if cfg.pipeline == "tec" and (ROOT / "steps" / "tec" / "pipeline.py").exists():
            from steps.tec.pipeline import TEC

            config.resolve(TEC, data)


def test_raw_data_is_read_only_and_claims_are_kept(site):
    _, values, _, docs = site
    raw = values["storage"]["rawData"]
    claims = {d["metadata"]["name"]: d for d in by_kind(docs, "PersistentVolumeClaim")}
    for claim in claims.values():
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    if raw["create"]:
        assert claims[raw["claimName"]]["spec"]["accessModes"] == ["ReadOnlyMany"]
        (pv,) = by_kind(docs, "PersistentVolume")
        assert pv["spec"]["accessModes"] == ["ReadOnlyMany"]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        if "nfs" in pv["spec"]:
            assert pv["spec"]["nfs"]["readOnly"] is True
        kubernetes_validate.validate(pv, KUBE_VERSION, strict=True)
    else:
        assert raw["claimName"] not in claims and not by_kind(docs, "PersistentVolume")


# --- the schema and the chart's own checks --------------------------------------------------------------
def test_schema_cron_parameters_are_the_templates_parameters():
    schema = json.loads((CHART / "values.schema.json").read_text())
    cron = schema["properties"]["cronWorkflows"]["items"]["properties"]["parameters"]
    assert cron["propertyNames"]["enum"] == list(argo.PARAMETERS)


@pytest.mark.parametrize(
    "change",
    [
        {"paralelism": 3},
        {"image": {"registry": "r", "tag": "1", "pulSecrets": []}},
        {"storage": {"run": {"claimName": "r", "create": True, "sise": "1Gi"}, "rawData": {"claimName": "d", "create": False}}},
        {"cronWorkflows": [{"name": "n", "pipeline": "tec", "schedules": ["0 1 * * *"], "parameters": {"regstry": "x"}}]},
        {"parallelism": "many"},
        {"runConfigs": {"Bad_Name": "pipeline = 'tec'"}},
        {"site": {"timezone": "UTC", "restartHour": 24}},
        {"site": {"timezone": "Santiago time", "restartHour": 12}},
        {"calibrations": {"dbSecret": {"name": "db", "key": "url", "create": False, "ulr": "x"}}},
        {"cronWorkflows": [{"name": "n", "pipeline": "tec", "schedules": ["0 1 * * *"], "partition": "last night"}]},
        {"steps": {"tec": {"ses_mes": {"resources": {"limits": {"memory": "4 GB"}}}}}},
        {"steps": {"tec": {"ses_mes": {"resource": {}}}}},
        {"steps": {"tec": {"ses_mes": {"oomRetry": {"factor": 0.5}}}}},
        {"serviceAccount": {"name": "x", "create": True, "anotations": {}}},
        {"networkPolicy": {"create": True, "egress": []}},
        {"retry": {"avoidFailedNodes": True}},
    ],
)
def test_schema_refuses_unknown_keys_and_bad_values(change):
    values = {**site_values(CHART / "sites" / "tess-vetting.yaml"), **change}
    with helm.Chart.load(str(CHART)) as c, pytest.raises(helm.HelmValuesError):
        c.validate_schema(values)


def test_chart_fails_on_a_pipeline_that_does_not_exist():
    values = {**site_values(CHART / "sites" / "tess-vetting.yaml"), "pipelines": ["tec", "nosuch"]}
    with pytest.raises(helm.HelmError, match='pipelines: "nosuch" is not a pipeline this chart packages '
                       r'\(it packages: elixer, hetdex, nres, sedm, tec, vison\).*astroflow render nosuch --out argo --chart'):
        render(CHART, values)


def test_chart_fails_on_a_cron_for_a_pipeline_not_installed(tmp_path):
    values = site_values(CHART / "sites" / "lco-nres.yaml")
    values["cronWorkflows"][0]["pipeline"] = "sedm"
    with pytest.raises(helm.HelmError, match="not in pipelines"):
        render(chart_for(values, tmp_path), values)


def test_raw_data_volume_needs_a_source():
    values = {**helm.Chart.load(str(CHART)).values}
    values["storage"] = {**values["storage"], "rawData": {"claimName": "raw", "create": True}}
    with pytest.raises(helm.HelmError, match="nfs"):
        render(CHART, values)


# --- what a cluster admits and an operator steers -------------------------------------------------------
def _template(docs: list[dict]) -> dict:
    (wt,) = by_kind(docs, "WorkflowTemplate")
    return wt


def _step_templates(wt: dict, step: str) -> list[dict]:
    return [t for t in wt["spec"]["templates"] if t.get("metadata", {}).get("labels", {}).get("astroflow.io/step") == step]


def test_a_site_overrides_a_steps_resources_and_the_chart_recomputes_its_memory_per_attempt():
    values = site_values(CHART / "sites" / "tess-vetting.yaml")
    values["steps"] = {"tec": {"ses_mes": {"resources": {"limits": {"memory": "6Gi"}}, "activeDeadlineSeconds": 600}}}
    wt = _template(render(CHART, values))
    argo.validate(wt)
    compiled = yaml.safe_load((COMPILED / "tec.yaml").read_text())
    for t in _step_templates(wt, "ses_mes"):
        declared = next(c for c in compiled["spec"]["templates"] if c["name"] == t["name"])
        assert t == overridden(declared, values["steps"]["tec"]["ses_mes"])  # the chart agrees with Python
        assert t["container"]["resources"]["limits"]["memory"] == "6Gi" and t["activeDeadlineSeconds"] == 600
        request = declared["container"]["resources"]["requests"]["memory"]
        assert f"['{request}','" in t["podSpecPatch"] and "'6Gi','9216Mi','12288Mi','12288Mi'" in t["podSpecPatch"]
    others = [t for t in wt["spec"]["templates"] if t not in _step_templates(wt, "ses_mes")]
    assert others == [t for t in compiled["spec"]["templates"] if t["name"] in {o["name"] for o in others}]


@pytest.mark.parametrize("steps, message", [
    ({"hetdex": {"shot_h5": {"activeDeadlineSeconds": 60}}}, 'steps.hetdex: pipeline "hetdex" is not installed'),
    ({"tec": {"ses_mess": {"activeDeadlineSeconds": 60}}}, 'steps.tec.ses_mess: pipeline tec has no step "ses_mess"'),
    ({"tec": {"ses_mes": {"resources": {"requests": {"memory": "64Gi"}}}}},
     "steps.tec.ses_mes: memory request 64Gi is above the limit"),
    ({"tec": {"ses_mes": {"oomRetry": {"maxMemory": "1Mi"}}}},
     r"steps.tec.ses_mes: the most memory a retry may have \(1Mi, oomRetry.maxMemory\) is below the memory limit"),
])
def test_step_overrides_that_cannot_apply_fail_naming_the_pipeline_and_step(steps, message):
    values = {**site_values(CHART / "sites" / "tess-vetting.yaml"), "steps": steps}
    with pytest.raises(helm.HelmError, match=message):
        render(CHART, values)


def test_scheduling_values_reach_every_workflow_pod():
    values = site_values(CHART / "sites" / "tess-vetting.yaml")
    values.update(
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m7i.4xlarge"]}]}]}}},
        priorityClassName="astro-batch", activeDeadlineSeconds=86400,
        templateDefaults={"timeout": "12h"},
        podSpecPatch='{"containers":[{"name":"wait","resources":{"limits":{"cpu":"500m","memory":"256Mi"}}}]}',
    )
    wt = _template(render(CHART, values))
    argo.validate(wt)  # Hera's strict models accept every field as Argo spells it
    spec = wt["spec"]
    assert spec["affinity"] == values["affinity"] and spec["podPriorityClassName"] == "astro-batch"
    assert spec["templateDefaults"] == {"timeout": "12h"} and spec["activeDeadlineSeconds"] == 86400
    assert json.loads(spec["podSpecPatch"])["containers"][0]["name"] == "wait"


def test_retries_avoid_the_failed_node_except_on_a_one_node_site(site):
    _, values, _, docs = site
    avoid = with_defaults(values)["retry"]["avoidFailedNode"]
    for wt in by_kind(docs, "WorkflowTemplate"):
        for t in wt["spec"]["templates"]:
            if "container" in t:
                assert ("affinity" in t["retryStrategy"]) is avoid
                assert t["retryStrategy"]["expression"] == argo.RETRY_EXPRESSION
    assert (values["storage"]["run"]["accessModes"] == ["ReadWriteOnce"]) is (not avoid)  # palomar: one node


def test_the_semaphore_of_heavy_steps_is_sized_by_the_site(site):
    _, values, _, docs = site
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == argo.SEMAPHORE_CONFIG_MAP]
    assert cm["data"] == {argo.HEAVY_SEMAPHORE: str(with_defaults(values)["semaphores"]["heavy"])}


def test_service_account_annotations_and_an_existing_account():
    values = site_values(CHART / "sites" / "tess-vetting.yaml")
    values["serviceAccount"] = {"create": True, "name": "tec-pods",
                                "annotations": {"iam.gke.io/gcp-service-account": "tec@proj.iam.gserviceaccount.com"}}
    docs = render(CHART, values)
    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == values["serviceAccount"]["annotations"]
    kubernetes_validate.validate(sa, KUBE_VERSION, strict=True)
    values["serviceAccount"] = {"create": False, "name": "site-made"}
    docs = render(CHART, values)
    assert not by_kind(docs, "ServiceAccount")
    (binding,) = by_kind(docs, "RoleBinding")
    assert binding["subjects"][0]["name"] == "site-made" and _template(docs)["spec"]["serviceAccountName"] == "site-made"


def test_network_policy_isolates_workflow_pods(site):
    _, values, _, docs = site
    (policy,) = by_kind(docs, "NetworkPolicy")
    kubernetes_validate.validate(policy, KUBE_VERSION, strict=True)
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
    assert spec["podSelector"] == {"matchExpressions": [{"key": "astroflow.io/pipeline", "operator": "Exists"}]}
    for wt in by_kind(docs, "WorkflowTemplate"):  # the selector matches every pod the templates make
        for t in wt["spec"]["templates"]:
            if "container" in t:
                assert "astroflow.io/pipeline" in t["metadata"]["labels"]
    ports = [p["port"] for rule in spec["egress"] for p in rule["ports"]]
    assert 53 in ports and 443 in ports
    assert spec["egress"][2:] == with_defaults(values)["networkPolicy"]["extraEgress"]


def test_a_namespace_that_requires_limits_admits_every_container():
    """Every container astroflow declares has limits; Argo's init and wait containers get the
    LimitRange's defaults where the site creates it (tacc-hetdex)."""
    values = site_values(CHART / "sites" / "tacc-hetdex.yaml")
    docs = render(CHART, values)
    (limits,) = by_kind(docs, "LimitRange")
    kubernetes_validate.validate(limits, KUBE_VERSION, strict=True)
    (rule,) = limits["spec"]["limits"]
    assert rule["type"] == "Container" and set(rule["default"]) == set(rule["defaultRequest"]) == {"cpu", "memory"}
    for t in _template(docs)["spec"]["templates"]:
        if "container" in t:
            assert set(t["container"]["resources"]["limits"]) == {"cpu", "memory"}, t["name"]


def test_notes_and_readme_name_the_argo_version_and_the_run_mount():
    with helm.Chart.load(str(CHART)) as c:
        notes = next(v for k, v in c.render(site_values(CHART / "sites" / "tess-vetting.yaml"), name="astroflow",
                                            namespace="astro").items() if k.endswith("NOTES.txt"))
    readme = (CHART / "README.md").read_text()
    for text in (notes, readme):
        assert "Argo Workflows 3.6" in text and argo.RUN_MOUNT in text
    assert "executor" in readme and "serviceAccount.annotations" in readme
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["astroflow.io/argo-workflows-version"] == ">=3.6.0"
