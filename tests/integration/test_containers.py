"""The step images, run for real in Docker.

(a) every step image exists, is labelled and runs as non-root with `astroflow` on PATH; in the first
    image of each pipeline (the others hold the same staged code) and in every image with extras, the
    CLI works, the registry finds every step, and the native kernels import;
(b) a pipeline run from its rendered Argo WorkflowTemplate (every shard in its own container, the
    run directory bind-mounted, the raw data read-only) gives the same Parquet rows as the
    embedded runner: the test-only toy pipeline, and TEC on a small simulated sector;
(c) a raw-data write from a container fails (readOnly honoured), as does a root-filesystem write.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from testcontainers.core.container import DockerContainer

from argo_executor import ArgoExecutor, UnsupportedTemplate

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
IMAGE_REGISTRY = "localhost:5000"  # the templates' default registry; local images carry no prefix
TAG = "dev"
TOY_TAG = "itest"


def run_container(image: str, command: list[str], **kwargs) -> tuple[int, str, str]:
    """Run a command as the image's user with a read-only root and a /tmp tmpfs, like a pod."""
    container = DockerContainer(image).with_tmpfs_mount("/tmp").with_kwargs(entrypoint=command, read_only=True, **kwargs)
    container.start()
    try:
        code = container.get_wrapped_container().wait(timeout=120)["StatusCode"]
        out, err = container.get_logs()
        return code, out.decode(), err.decode()
    finally:
        container.stop()


def registered_steps() -> list[tuple[str, str]]:
    from astroflow.registry import PIPELINES, get_pipeline

    return [(p, s.name) for p in PIPELINES for s in get_pipeline(p).steps]


# --- (a) the step images ----------------------------------------------------------------------

@pytest.mark.parametrize("pipeline,step", registered_steps())
def test_step_image(docker_client, build_module, pipeline, step):
    image = f"astroflow-{pipeline}-{step}:{TAG}"
    try:
        info = docker_client.images.get(image)
    except Exception:
        pytest.fail(f"image {image} is missing: run `python images/build.py`")
    labels = info.labels
    assert labels["io.astroflow.pipeline"] == pipeline and labels["io.astroflow.step"] == step
    assert labels["org.opencontainers.image.version"]
    assert info.attrs["Config"]["User"] not in ("", "0", "root")

    extras = build_module.EXTRAS.get((pipeline, step), {})
    if (pipeline, step) != first_step(pipeline) and not extras:
        # the same staged code as the pipeline's first image (checked in full there): that it runs
        # as uid 1000 with the command on PATH is what is left to show
        code, out, err = run_container(image, ["sh", "-c", 'set -e; id -u; test -x "$(command -v astroflow)"'])
        assert code == 0, err
        assert out.split()[0] == "1000"
        return
    steps = [s for p, s in registered_steps() if p == pipeline]
    # one interpreter: the CLI, every step of the pipeline through the registry, the kernels
    script = "\n".join([
        "import contextlib, importlib, io, os",
        "from astroflow import cli",
        "from astroflow.registry import get_pipeline",
        f"pipeline = get_pipeline({pipeline!r})",
        *(f"importlib.import_module('astroflow.{k}')" for k in extras.get("native", [])),
        f"for step in {steps!r}:",
        "    pipeline.step(step)",
        f"    for argv in (['--help'], ['step', {pipeline!r}, step, '--help']):",
        "        try:",
        "            with contextlib.redirect_stdout(io.StringIO()):",
        "                cli.main(argv)",
        "        except SystemExit as exc:",
        "            assert exc.code in (0, None), (argv, exc.code)",
        "print(os.getuid())",
    ])
    code, out, err = run_container(image, ["sh", "-c", f'set -e; test -x "$(command -v astroflow)"; python -c "{script}"'])
    assert code == 0, err
    assert out.split()[0] == "1000"


def first_step(pipeline: str) -> tuple[str, str]:
    return next(ps for ps in registered_steps() if ps[0] == pipeline)


def test_native_kernels_only_where_declared(docker_client, build_module):
    """A pipeline's native kernels ride in the step images that use them, not in the base; the
    library's own kernel (astroflow.filters) is in the base."""
    code, out, err = run_container("astroflow-base:dev", ["python", "-c", "import astroflow._modshift"])
    assert code != 0 and "No module named" in err
    code, out, err = run_container("astroflow-base:dev", ["python", "-c", "import astroflow.filters"])
    assert code == 0, err


def test_the_images_carry_the_locked_versions_and_no_hera(docker_client, build_module):
    """The base image installs requirements.lock's exact versions (what CI tested), and Hera,
    which only `render` and `submit` need, is not in it."""
    canonical, lock = build_module.canonical, build_module.lock_pins()
    code, out, err = run_container("astroflow-base:dev", ["python", "-m", "pip", "list", "--format=json"])
    assert code == 0, err
    installed = {canonical(d["name"]): d["version"] for d in json.loads(out)}
    assert "hera" not in installed
    differ = {name: (version, lock.get(name)) for name, version in installed.items()
              if name not in ("astroflow", "pip", "setuptools") and lock.get(name) != version}
    assert not differ, f"image versions differ from requirements.lock: {differ}"
    code, out, err = run_container("astroflow-base:dev", ["astroflow", "render", "tec", "--out", "/tmp/x"])
    assert code == 2 and "astroflow[argo]" in err


# --- helpers for (b) and (c) ------------------------------------------------------------------

def writable_by_pods(path: Path) -> Path:
    """A host folder the pods' uid 1000 can write (what fsGroup does for a real claim)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, 1000, 1000)
    else:
        path.chmod(0o777)
    return path


def readable_by_pods(path: Path) -> Path:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | (0o755 if p.is_dir() else 0o644))
    return path


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def write_run_toml(folder: Path, pipeline: str, settings: dict, run: dict | None = None) -> Path:
    lines = [f"pipeline = {toml_value(pipeline)}", "[run]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (run or {}).items()]
    lines += ["[settings]"] + [f"{k} = {toml_value(v)}" for k, v in settings.items() if v is not None]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.toml").write_text("\n".join(lines) + "\n")
    return readable_by_pods(folder)


def in_pods(settings: dict, data: Path) -> dict:
    """The settings with host paths under the raw-data folder moved to the pods' /data."""
    return {k: (str(v).replace(str(data), "/data") if isinstance(v, (str, Path)) and str(v).startswith(str(data)) else v)
            for k, v in settings.items()}


def dataset_rows(run_dir: Path, step: str, replace: dict[str, str]) -> list[dict]:
    from astroflow.rundir import read_dataset

    rows = read_dataset(run_dir / step).to_pylist()

    def norm(v):
        if isinstance(v, str):
            for old, new in replace.items():
                v = v.replace(old, new)
        if isinstance(v, float) and math.isnan(v):
            return "NaN"
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    rows = [{k: norm(v) for k, v in r.items()} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def run_in_containers(doc: dict, tmp: Path, data: Path, settings: dict, run_name: str, tag: str,
                      config_map: str) -> tuple[Path, object]:
    run_root = writable_by_pods(tmp / "claim-run")
    config = write_run_toml(tmp / "configmap", doc["metadata"]["labels"]["astroflow.io/pipeline"],
                            in_pods(settings, data), {"workers": 1})
    executor = ArgoExecutor(doc, claims={"astroflow-run": run_root, "astroflow-data": data},
                            config_maps={config_map: config}, image_registry=IMAGE_REGISTRY, max_pods=2)
    result = executor.submit({"run-name": run_name, "tag": tag})
    return run_root / run_name, result


def compare_runs(pipeline, argo_run: Path, embedded_run: Path, data: Path) -> dict[str, int]:
    """Every step's Parquet dataset: same rows, same values (paths compared relative to the mounts)."""
    counts = {}
    for step in pipeline.order():
        if not (embedded_run / step / "_plan.json").exists():
            assert not (argo_run / step / "_plan.json").exists() or not any((argo_run / step).glob("part-*"))
            continue
        a = dataset_rows(argo_run, step, {"/data": "<data>", str(argo_run): "<run>"})
        b = dataset_rows(embedded_run, step, {str(data): "<data>", str(embedded_run): "<run>"})
        assert a == b, f"step {step}: the container run and the embedded run differ"
        counts[step] = len(a)
    return counts


# --- (b) the toy pipeline: Argo template in containers vs the embedded runner -----------------

@pytest.fixture(scope="session")
def toy_images(docker_client, build_module, tmp_path_factory):
    """Step images of the test-only toy pipeline, built FROM the base with images/Dockerfile.step."""
    from integration_toy import REGISTRATION, TOY

    ctx = tmp_path_factory.mktemp("toy-image")
    (ctx / "site").mkdir()
    shutil.copy(Path(__file__).with_name("integration_toy.py"), ctx / "site")
    for step in TOY.steps:
        build_module.docker_build(build_module.IMAGES / "Dockerfile.step", ctx, [f"astroflow-itoy-{step.name}:{TOY_TAG}"], {
            "BASE": "astroflow-base:dev", "PIPELINE": "itoy", "STEP": step.name, "VERSION": "0.0.0-test",
            "ASTROFLOW_PIPELINES": REGISTRATION,
        })
    return TOY


def test_toy_pipeline_argo_vs_embedded(toy_images, toy_registered, tmp_path):
    from astroflow import argo, runner
    from astroflow import config as run_config

    pipeline = toy_images
    data = tmp_path / "raw"
    data.mkdir()
    (data / "numbers.txt").write_text(" ".join(str(v) for v in [3, 1, 4, 1, 5, 9, 2, 6, 5, -3, 5, 8, 9, 7]))
    readable_by_pods(data)
    before = sorted(p.name for p in data.iterdir())

    doc = yaml.safe_load(argo.to_yaml(pipeline))
    argo_run, result = run_in_containers(doc, tmp_path, data, {"data_root": str(data)}, "toy-1", TOY_TAG,
                                         argo.config_map_name("itoy"))
    assert result.phase == "Succeeded", result.describe()
    square = result.tasks["square"]
    assert len(square.pods) == 5 and all(p.phase == "Succeeded" for p in square.pods)  # 14 items, 3 per shard

    cfg = run_config.resolve(pipeline, {"settings": {"data_root": str(data)}, "run": {"workers": 1}})
    embedded = runner.run(pipeline, cfg, tmp_path / "embedded", progress=False)
    assert all(s.state == "done" for s in embedded.steps.values()) and embedded.failed_items == 1

    counts = compare_runs(pipeline, argo_run, tmp_path / "embedded", data)
    assert counts == {"numbers": 14, "square": 13, "total": 1}  # -3 is recorded as a failed item
    assert sorted(p.name for p in data.iterdir()) == before


def test_unknown_template_features_are_errors(toy_images, toy_registered, tmp_path):
    from astroflow import argo

    doc = yaml.safe_load(argo.to_yaml(toy_images))
    bad = copy.deepcopy(doc)
    next(t for t in bad["spec"]["templates"] if "container" in t)["container"]["lifecycle"] = {}
    with pytest.raises(UnsupportedTemplate, match="lifecycle"):
        ArgoExecutor(bad, claims={})
    bad = copy.deepcopy(doc)
    main = next(t for t in bad["spec"]["templates"] if "dag" in t)
    main["dag"]["tasks"][0]["when"] = "{{workflow.parameters.tag}} == x"
    with pytest.raises(UnsupportedTemplate, match="when"):
        ArgoExecutor(bad, claims={})


# --- (c) read-only raw data -------------------------------------------------------------------

def test_raw_data_write_fails(toy_images, toy_registered, tmp_path):
    """A pod of the rendered template cannot write under /data, nor in its root filesystem."""
    from astroflow import argo

    doc = yaml.safe_load(argo.to_yaml(toy_images))
    init = next(t for t in doc["spec"]["templates"] if t["name"] == "init")
    probes = {
        "write-raw": "open('/data/intruder.txt', 'w').write('x')",
        "write-root": "open('/opt/intruder.txt', 'w').write('x')",
        "write-tmp": "open('/tmp/ok.txt', 'w').write('x'); print('tmp ok')",
    }
    templates, tasks = [], []
    for name, code in probes.items():
        t = copy.deepcopy(init)
        t["name"] = name
        t["container"]["command"] = ["python", "-c", code]
        t["retryStrategy"]["limit"] = 1
        templates.append(t)
        tasks.append({"name": name, "template": name})
    doc["spec"]["templates"] = templates + [{"name": "main", "dag": {"failFast": False, "tasks": tasks}}]
    doc["spec"].pop("onExit", None)  # its template is gone with the others

    data = tmp_path / "raw"
    data.mkdir()
    readable_by_pods(data)
    config = write_run_toml(tmp_path / "configmap", "itoy", {"data_root": "/data"})
    executor = ArgoExecutor(doc, claims={"astroflow-run": writable_by_pods(tmp_path / "run"), "astroflow-data": data},
                            config_maps={argo.config_map_name("itoy"): config}, image_registry=IMAGE_REGISTRY)
    result = executor.submit({"run-name": "probe", "tag": TOY_TAG})

    raw, root, tmp = (result.tasks[n] for n in probes)
    assert raw.phase == "Failed" and "Read-only file system" in raw.pods[0].stderr
    assert raw.pods[0].attempts == 2  # retryStrategy limit 1: the pod was retried once
    assert root.phase == "Failed" and "Read-only file system" in root.pods[0].stderr
    assert tmp.phase == "Succeeded" and tmp.result == "tmp ok"
    assert not (data / "intruder.txt").exists()


# --- (b) TEC on a small simulated sector ------------------------------------------------------

@pytest.mark.slow
def test_tec_argo_vs_embedded(docker_client, tmp_path):
    from astroflow import argo, runner
    from astroflow import config as run_config
    from astroflow.registry import get_pipeline

    from steps.tec.simulate import simulate_sector

    tec = get_pipeline("tec")
    for step in tec.steps:
        try:
            docker_client.images.get(f"astroflow-tec-{step.name}:{TAG}")
        except Exception:
            pytest.fail(f"image astroflow-tec-{step.name}:{TAG} is missing: run `python images/build.py`")

    data = tmp_path / "raw"
    sim = simulate_sector(data, n_tces=12, seed=7, workers=1)
    settings = {"data_root": str(data), "sector": sim.sector, "family": "spoc",
                "toi_csv": str(sim.toi_csv), "known_planets": str(sim.known_planets_csv)}
    readable_by_pods(data)
    committed = (ROOT / "argo" / "tec.yaml").read_text()
    assert committed == argo.to_yaml(tec), "argo/tec.yaml is stale: run astroflow render tec --out argo"
    doc = yaml.safe_load(committed)

    argo_run, result = run_in_containers(doc, tmp_path, data, settings, "tec-it", TAG, argo.config_map_name("tec"))
    assert result.phase == "Succeeded", result.describe()

    cfg = run_config.resolve(tec, {"settings": settings, "run": {"workers": 2}})
    embedded = runner.run(tec, cfg, tmp_path / "embedded", progress=False)
    assert embedded.ok, {s.name: s.message for s in embedded.steps.values() if s.state != "done"}

    counts = compare_runs(tec, argo_run, tmp_path / "embedded", data)
    assert counts.get("gather", 0) >= 12
