"""The Helm chart: every site's values render, lint strictly and give valid objects.

Rendering uses helm-python-sdk (the Helm v4 SDK, offline).  Core objects are checked against the
Kubernetes schemas of kubernetes-validate; Argo objects against Hera's strict models plus
astroflow.argo.lint.  A site whose pipeline has not been compiled yet is rendered from a copy of the
chart holding a stand-in template (a toy pipeline under that name); test_argo makes sure every
pipeline that exists is compiled and copied into the chart.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from astroflow import argo, config
from test_argo import ROOT, toy_pipeline

CHART = ROOT / "helm" / "astroflow"
COMPILED = CHART / "files" / "workflowtemplates"
SITES = sorted((CHART / "sites").glob("*.yaml"))
KUBE_VERSION = "1.33.0"
EXECUTOR_RULES = [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]


def site_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def chart_for(values: dict, tmp_path: Path) -> Path:
    """The chart, or a copy with stand-in templates for pipelines not compiled yet."""
    missing = [p for p in values.get("pipelines", []) if not (COMPILED / f"{p}.yaml").exists()]
    if not missing:
        return CHART
    chart = tmp_path / "astroflow"
    shutil.copytree(CHART, chart)
    for name in missing:
        (chart / "files" / "workflowtemplates" / f"{name}.yaml").write_text(argo.to_yaml(toy_pipeline(name)))
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
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"}
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
    (role,) = by_kind(docs, "Role")
    assert role["rules"] == EXECUTOR_RULES
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    (binding,) = by_kind(docs, "RoleBinding")
    sa = values.get("serviceAccount", {}).get("name", "astroflow-workflow")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": name}]
    (account,) = by_kind(docs, "ServiceAccount")
    assert account["metadata"]["name"] == sa


def test_workflow_templates_validate_and_carry_site_defaults(site):
    name, values, _, docs = site
    templates = {d["metadata"]["name"]: d for d in by_kind(docs, "WorkflowTemplate")}
    assert set(templates) == {argo.template_name(p) for p in values["pipelines"]}
    storage = values["storage"]
    for wt in templates.values():
        argo.validate(wt)
        spec = wt["spec"]
        params = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
        assert params["registry"] == values["image"]["registry"]
        assert params["tag"] == str(values["image"]["tag"])
        assert params["run-claim"] == storage["run"]["claimName"]
        assert params["data-claim"] == storage["rawData"]["claimName"]
        assert spec["parallelism"] == values["parallelism"]
        assert spec["serviceAccountName"] == values.get("serviceAccount", {}).get("name", "astroflow-workflow")
        assert spec.get("nodeSelector", {}) == values.get("nodeSelector", {})
        assert "{{workflow.parameters.registry}}" in json.dumps(wt)  # Argo's tags survive Helm
        assert "{{=sprig.default(workflow.name" in json.dumps(wt)
        for t in spec["templates"]:
            for mnt in t.get("container", {}).get("volumeMounts", []):
                if mnt["mountPath"] == argo.DATA_MOUNT:
                    assert mnt["readOnly"] is True


def test_rendered_templates_equal_the_compiled_ones_but_for_site_defaults(site, tmp_path):
    _, values, chart, docs = site
    for wt in by_kind(docs, "WorkflowTemplate"):
        pipeline = wt["metadata"]["labels"]["astroflow.io/pipeline"]
        compiled = yaml.safe_load((chart / "files" / "workflowtemplates" / f"{pipeline}.yaml").read_text())
        for doc in (wt, compiled):
            doc["metadata"]["labels"] = {k: v for k, v in doc["metadata"]["labels"].items() if k.startswith("astroflow.io/")}
            for key in ("parallelism", "serviceAccountName", "arguments", "nodeSelector", "tolerations", "imagePullSecrets"):
                doc["spec"].pop(key, None)
        assert wt == compiled


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
        config_map = {p["name"]: p["value"] for p in cron["spec"]["workflowSpec"].get("arguments", {}).get("parameters", [])}
        if "config-map" in config_map:
            assert config_map["config-map"] in {d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")}


def test_run_configurations_are_valid(site):
    _, values, _, docs = site
    maps = by_kind(docs, "ConfigMap")
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
    ],
)
def test_schema_refuses_unknown_keys_and_bad_values(change):
    values = {**site_values(CHART / "sites" / "tess-vetting.yaml"), **change}
    with helm.Chart.load(str(CHART)) as c, pytest.raises(helm.HelmValuesError):
        c.validate_schema(values)


def test_chart_fails_on_a_pipeline_that_is_not_compiled():
    values = {**helm.Chart.load(str(CHART)).values, "pipelines": ["nosuch"]}
    with pytest.raises(helm.HelmError, match="python -m astroflow.argo nosuch"):
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
