"""Argo Events from the chart: every site's EventSources and Sensors validate offline.

Strict models and the lint of astroflow.argo_events (dependencies, triggers, templates, parameter
destinations, read-only raw data), then the Sensors' go templates evaluated with Helm's engine
(the same text/template and sprig functions Argo Events uses): the partition taken from a frame's
path, the path mapped under /data, and last-night at fixed instants across time zones and
daylight-saving changes, against astroflow.arrivals.last_night.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from astroflow import argo, argo_events, arrivals

from test_helm import CHART, SITES, by_kind, chart_for, render, site_values

UTC = dt.UTC


@pytest.fixture(params=SITES, ids=lambda p: p.stem)
def site(request, tmp_path):
    values = site_values(request.param)
    chart = chart_for(values, tmp_path)
    return request.param.stem, values, render(chart, values, namespace=request.param.stem)


def events_objects(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("EventSource", "Sensor", "WorkflowTemplate")]


def sensor(docs: list[dict], name: str) -> dict:
    return next(d for d in by_kind(docs, "Sensor") if d["metadata"]["name"] == f"astroflow-{name}")


def workflow_of(s: dict) -> dict:
    return s["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]


def trigger_parameters(s: dict) -> dict[str, dict]:
    return {p["dest"]: p for p in s["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"]}


# --- every site ------------------------------------------------------------------------------------
def test_every_event_source_and_sensor_validates(site):
    _, values, docs = site
    installed = [e for e in values.get("events", []) if e["pipeline"] in values["pipelines"]]
    sources, sensors = by_kind(docs, "EventSource"), by_kind(docs, "Sensor")
    assert [s["metadata"]["name"] for s in sources] == [f"astroflow-{e['name']}" for e in installed]
    assert [s["metadata"]["name"] for s in sensors] == [f"astroflow-{e['name']}" for e in installed]
    argo_events.validate(events_objects(docs))
    for doc in sources + sensors:
        assert doc["apiVersion"] == argo_events.API_VERSION
        assert doc["metadata"]["labels"]["astroflow.io/pipeline"] in values["pipelines"]


def test_sites_that_receive_frames_have_events():
    have = {p.stem for p in SITES if site_values(p).get("events")}
    assert have == {"lco-nres", "palomar-sedm", "mssl-vison"}
    kinds = {e["kind"] for p in SITES for e in site_values(p).get("events", [])}
    assert kinds == {"file", "amqp", "calendar"}


def test_sensors_start_the_pipeline_in_the_run_of_the_partition(site):
    _, values, docs = site
    for entry in values.get("events", []):
        s = sensor(docs, entry["name"])
        wf = workflow_of(s)
        assert wf["spec"]["workflowTemplateRef"] == {"name": argo.template_name(entry["pipeline"])}
        params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
        dests = trigger_parameters(s)
        literal = entry["kind"] == "calendar" and entry["partition"] not in (arrivals.LAST_NIGHT, arrivals.TONIGHT)
        if literal:
            assert params["partition"] == entry["partition"] and params["run-name"] == f"{entry['pipeline']}-{entry['partition']}"
        else:  # the Sensor appends the partition it reads from the event
            assert params["run-name"] == f"{entry['pipeline']}-" and params["partition"] == ""
            assert dests["spec.arguments.parameters.0.value"]["operation"] == "append"
            assert "operation" not in dests["spec.arguments.parameters.1.value"]
        # the night's workflows queue on the template's mutex of the run folder, resolved from run-name
        assert "synchronization" not in wf["spec"]
        template = next(d for d in docs if d["kind"] == "WorkflowTemplate"
                        and d["metadata"]["name"] == argo.template_name(entry["pipeline"]))
        assert template["spec"]["synchronization"] == {"mutexes": [{"name": argo.RUN_MUTEX}]}
        if entry["kind"] == "calendar":
            assert params["arrival"] == entry["calendar"].get("arrival", "")
        else:
            assert "spec.arguments.parameters.2.value" in dests  # the frame's path


def test_event_pods_have_requests_and_limits(site):
    """A namespace whose quota requires limits admits the EventSource and Sensor pods too."""
    _, values, docs = site
    for doc in docs:
        if doc["kind"] in ("EventSource", "Sensor"):
            resources = doc["spec"]["template"]["container"]["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, doc["metadata"]["name"]


def test_file_event_sources_poll_the_raw_claim_read_only(site):
    _, values, docs = site
    raw = values["storage"]["rawData"]["claimName"]
    for entry in (e for e in values.get("events", []) if e["kind"] == "file"):
        src = next(d for d in by_kind(docs, "EventSource") if d["metadata"]["name"] == f"astroflow-{entry['name']}")
        t = src["spec"]["template"]
        assert t["volumes"] == [{"name": "raw-data", "persistentVolumeClaim": {"claimName": raw, "readOnly": True}}]
        assert t["container"]["volumeMounts"] == [{"name": "raw-data", "mountPath": argo.DATA_MOUNT, "readOnly": True}]
        assert t["container"]["securityContext"]["readOnlyRootFilesystem"] is True
        (event,) = src["spec"]["file"].values()
        assert event["polling"] is True and event["eventType"] == entry["file"].get("eventType", "CREATE")
        assert event["watchPathConfig"]["directory"] == entry["file"]["directory"].rstrip("/") + "/"


# --- the Sensors' go templates, evaluated ------------------------------------------------------------
def evaluate(tmp_path: Path, templates: dict[str, str], data: dict | None = None, now: str | None = None) -> dict:
    """Go templates as a Sensor evaluates them (``.Input`` is the event's data), with Helm's engine."""
    chart = tmp_path / "evaluate"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: evaluate\nversion: 0.1.0\n")
    for name, text in templates.items():
        text = text.replace(".Input", ".Values.Input")
        if now is not None:
            text = re.sub(r"\bnow\b", f'(toDate "2006-01-02T15:04:05Z07:00" "{now}")', text)
        (chart / "templates" / f"{name}.txt").write_text(text)
    with helm.Chart.load(str(chart)) as c:
        out = c.render({"Input": data or {}}, name="e", namespace="e")
    return {name: out[f"evaluate/templates/{name}.txt"] for name in templates}


FRAMES = {  # an event of each site, and what the Sensor must make of it
    "nres-archive": ({"body": {"path": "/archive/engineering/lsc/nres01/20250309/raw/lscnrs01-fa09-20250309-0031-e00.fits.fz"}},
                     "20250309", "/data/lsc/nres01/20250309/raw/lscnrs01-fa09-20250309-0031-e00.fits.fz"),
    "sedm-incoming": ({"name": "/data/incoming/ifu20251101_04_12_33.fits", "op": "CREATE"},
                      "20251101", "/data/incoming/ifu20251101_04_12_33.fits"),
    # the EXP_LOG grew: the day's run, and its folder swept (the frames it lists were written before it)
    "vison-explog": ({"name": "/data/current/EXP_LOG_120319.txt", "op": "WRITE"}, "120319", "/data/current"),
}


@pytest.mark.parametrize("event", list(FRAMES))
def test_sensor_takes_the_partition_and_the_file_from_the_event(event, tmp_path):
    site_file = {"nres-archive": "lco-nres", "sedm-incoming": "palomar-sedm", "vison-explog": "mssl-vison"}[event]
    values = site_values(CHART / "sites" / f"{site_file}.yaml")
    docs = render(chart_for(values, tmp_path), values)
    s = sensor(docs, event)
    data, night, path = FRAMES[event]
    dests = trigger_parameters(s)
    out = evaluate(tmp_path, {"partition": dests["spec.arguments.parameters.1.value"]["src"]["dataTemplate"],
                              "arrival": dests["spec.arguments.parameters.2.value"]["src"]["dataTemplate"]}, data)
    assert out == {"partition": night, "arrival": path}
    (flt,) = s["spec"]["dependencies"][0]["filters"]["data"]
    key = flt["path"].split(".")
    value = data
    for k in key:
        value = value[k]
    assert re.search(flt["value"][0], value)  # the event passes the Sensor's filter
    assert not re.search(flt["value"][0], "/data/incoming/notes.txt")


NIGHTS = [  # (instant, time zone, restart hour)
    ("2025-04-06T19:30:00Z", "America/Santiago", 16), ("2025-04-06T20:00:00Z", "America/Santiago", 16),
    ("2025-09-07T18:59:00Z", "America/Santiago", 16), ("2025-09-07T19:00:00Z", "America/Santiago", 16),
    ("2025-11-02T13:59:00Z", "America/Los_Angeles", 6), ("2025-11-02T14:00:00Z", "America/Los_Angeles", 6),
    ("2025-03-30T10:59:00Z", "Europe/London", 12), ("2025-03-30T11:00:00Z", "Europe/London", 12),
    ("2025-01-01T00:30:00Z", "Australia/Sydney", 12), ("2025-01-01T01:00:00Z", "Australia/Sydney", 12),
    ("2025-07-01T10:00:00Z", "Pacific/Honolulu", 0), ("2025-12-31T23:59:00Z", "UTC", 12),
]


@pytest.mark.parametrize("partition", [arrivals.LAST_NIGHT, arrivals.TONIGHT])
def test_the_sensors_night_is_astroflows(tmp_path, partition):
    """One definition of last-night and of tonight: the Sensor's go template agrees with
    arrivals.resolve_partition at the same instant."""
    values = site_values(CHART / "sites" / "palomar-sedm.yaml")
    templates = {}
    for k, (_, zone, hour) in enumerate(NIGHTS):
        values["events"] = [{"name": "sweep", "pipeline": "sedm", "kind": "calendar", "partition": partition,
                             "calendar": {"schedule": "15 7 * * *", "timezone": zone}, "restartHour": hour}]
        s = sensor(render(chart_for(values, tmp_path / str(k)), values), "sweep")
        templates[str(k)] = trigger_parameters(s)["spec.arguments.parameters.1.value"]["src"]["dataTemplate"]
    for k, (instant, zone, hour) in enumerate(NIGHTS):
        now = dt.datetime.fromisoformat(instant)
        out = evaluate(tmp_path / f"e{k}", {"n": templates[str(k)]}, now=instant)
        assert out["n"] == arrivals.resolve_partition(partition, zone, hour, now), (instant, zone, hour)


# --- events are rendered for installed pipelines only -------------------------------------------------
def test_events_of_pipelines_not_installed_are_not_rendered(tmp_path):
    values = site_values(CHART / "sites" / "palomar-sedm.yaml")
    values["events"].append({"name": "nres-archive", "pipeline": "nres", "kind": "calendar", "partition": "last-night",
                             "calendar": {"schedule": "0 14 * * *"}})
    chart = chart_for(values, tmp_path)
    docs = render(chart, values)
    assert {d["metadata"]["name"] for d in by_kind(docs, "Sensor")} == {"astroflow-sedm-open-night", "astroflow-sedm-calibration-deadline",
                                                                 "astroflow-sedm-incoming", "astroflow-sedm-morning-sweep"}
    with helm.Chart.load(str(chart)) as c:
        notes = c.render(values, name="astroflow", namespace="sedm")["astroflow/templates/NOTES.txt"]
    assert "Not installed: event nres-archive (pipeline nres is not in pipelines)" in notes
    values["events"] = []
    docs = render(chart, values)
    assert not by_kind(docs, "Sensor") and "astroflow-workflow-sensor" not in {
        d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")}


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "x", "pipeline": "sedm", "kind": "file", "file": {"directory": "/data/in", "pathRegexp": "a"}},
        {"name": "x", "pipeline": "sedm", "kind": "file", "partitionFromPath": "(2[0-9]{7})",
         "file": {"directory": "/etc", "pathRegexp": "a"}},
        {"name": "x", "pipeline": "sedm", "kind": "file", "partitionFromPath": "(2[0-9]{7})",
         "file": {"directory": "/data/in", "pathRegexp": "a", "recursive": True}},
        {"name": "x", "pipeline": "sedm", "kind": "amqp", "partitionFromPath": "(2[0-9]{7})", "partition": "last-night",
         "amqp": {"url": "amqp://b:5672", "exchangeName": "fits_files"}},
        {"name": "x", "pipeline": "sedm", "kind": "amqp", "partitionFromPath": "(2[0-9]{7})",
         "amqp": {"exchangeName": "fits_files"}},
        {"name": "x", "pipeline": "sedm", "kind": "amqp", "partitionFromPath": "(2[0-9]{7})",
         "amqp": {"url": "amqp://b:5672", "exchangeName": "fits_files", "exchangeType": "fan-out"}},
        {"name": "x", "pipeline": "sedm", "kind": "calendar", "calendar": {"schedule": "0 7 * * *"}},
        {"name": "x", "pipeline": "sedm", "kind": "webhook", "partition": "last-night"},
        {"name": "X_y", "pipeline": "sedm", "kind": "calendar", "partition": "last-night", "calendar": {"schedule": "0 7 * * *"}},
        {"name": "x", "pipeline": "sedm", "kind": "calendar", "partition": "last-night", "calendar": {"schedule": "0 7 * * *"},
         "parameters": {"run-name": "mine"}},
    ],
    ids=["file without partitionFromPath", "file outside /data", "unknown key", "amqp with partition",
         "amqp without url", "bad exchange type", "calendar without partition", "unknown kind", "bad name",
         "run-name set by hand"],
)
def test_schema_refuses_bad_events(entry):
    values = {**site_values(CHART / "sites" / "palomar-sedm.yaml"), "events": [entry]}
    with helm.Chart.load(str(CHART)) as c, pytest.raises(helm.HelmValuesError):
        c.validate_schema(values)


# --- the lint catches what the schema cannot ------------------------------------------------------------
@pytest.fixture(scope="module")
def sedm_docs(tmp_path_factory):
    values = site_values(CHART / "sites" / "palomar-sedm.yaml")
    return events_objects(render(chart_for(values, tmp_path_factory.mktemp("sedm")), values))


def _sensor(docs):
    return next(d for d in docs if d["kind"] == "Sensor" and d["metadata"]["name"] == "astroflow-sedm-incoming")


def _source(docs):
    return next(d for d in docs if d["kind"] == "EventSource" and d["metadata"]["name"] == "astroflow-sedm-incoming")


def _wf(docs):
    return workflow_of(_sensor(docs))


def _template(docs):
    return next(d for d in docs if d["kind"] == "WorkflowTemplate")


def _dep(docs):
    return _sensor(docs)["spec"]["dependencies"][0]


BROKEN = {
    "unknown event source": (lambda d: _dep(d).update(eventSourceName="astroflow-sedm-incomming"),
                             "names EventSource 'astroflow-sedm-incomming', which is not installed"),
    "unknown event name": (lambda d: _dep(d).update(eventName="frame"), "names event 'frame', which EventSource"),
    "template not installed": (lambda d: _wf(d)["spec"]["workflowTemplateRef"].update(name="astroflow-nres"),
                               "runs WorkflowTemplate 'astroflow-nres', which is not installed"),
    "undeclared parameter": (lambda d: _wf(d)["spec"]["arguments"]["parameters"].append({"name": "night", "value": ""}),
                             "passes parameter 'night' that astroflow-sedm does not declare"),
    "missing destination": (lambda d: _wf(d)["spec"]["arguments"]["parameters"].pop(),
                            "destination 'spec.arguments.parameters.2.value' does not exist"),
    "unknown dependency": (lambda d: _sensor(d)["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"][0]["src"].update(
        dependencyName="frame"), "reads dependency 'frame', which the sensor does not declare"),
    "own mutex": (lambda d: _wf(d)["spec"].update(synchronization={"mutexes": [{"name": "sedm"}]}),
                  "replaces the template's mutex of the run folder"),
    "template without mutex": (lambda d: _template(d)["spec"].pop("synchronization"),
                               "astroflow-sedm does not queue its workflows on the mutex of their run folder"),
    "writable raw data": (lambda d: _source(d)["spec"]["template"]["volumes"][0]["persistentVolumeClaim"].update(readOnly=False),
                          "the raw-data claim is not readOnly"),
    "watch outside /data": (lambda d: _source(d)["spec"]["file"]["frames"]["watchPathConfig"].update(directory="/var/spool/"),
                            "watches '/var/spool/', not a folder under /data"),
    "partition without group": (lambda d: _dep(d)["filters"]["data"][0].update(value=["ifu20[0-9]{6}_"]),
                                "needs a capture group"),
    "other operation": (lambda d: _sensor(d)["spec"]["triggers"][0]["template"]["argoWorkflow"].update(operation="resubmit"),
                        "operation 'resubmit'"),
    "workflow not valid": (lambda d: _wf(d)["spec"].update(parallelism="many"), "schema: spec.parallelism"),
}


def test_lint_passes_the_rendered_objects(sedm_docs):
    assert argo_events.lint(sedm_docs) == []


@pytest.mark.parametrize("case", list(BROKEN))
def test_lint_catches(case, sedm_docs):
    breaker, message = BROKEN[case]
    docs = copy.deepcopy(sedm_docs)
    breaker(docs)
    with pytest.raises(argo_events.EventsValidationError) as exc:
        argo_events.validate(docs)
    assert any(message in p for p in exc.value.problems), exc.value.problems


@pytest.mark.parametrize(
    "where, key, value, message",
    [
        ("sensor", "eventSourceNmae", "x", "eventSourceNmae"),
        ("source", "exchangeType", "fan-out", "exchangeType"),
        ("source", "eventType", "CLOSE_WRITE", "eventType"),
        ("source", "event_type", "CREATE", "event_type"),  # the CRD's camelCase only
    ],
)
def test_strict_schema_refuses_misspelt_keys_and_bad_values(sedm_docs, where, key, value, message):
    docs = copy.deepcopy(sedm_docs)
    if where == "sensor":
        _dep(docs)[key] = value
    elif key == "exchangeType":
        src = _source(docs)
        src["spec"]["amqp"] = {"frames": {"url": "amqp://b", "exchangeName": "e", "routingKey": "", "exchangeType": value}}
    else:
        _source(docs)["spec"]["file"]["frames"][key] = value
    problems = [p for d in docs if d["kind"] in argo_events.MODELS for p in argo_events.schema_problems(d)]
    assert any(message in p for p in problems), problems


def test_the_sensors_go_templates_survive_helm(sedm_docs):
    """Argo Events' {{...}} reach the cluster as written: Helm must not have evaluated them."""
    text = yaml.safe_dump(_sensor(sedm_docs))
    assert "{{ regexReplaceAll" in text and ".Input.name" in text
