#!/usr/bin/env python3
"""Build the astroflow container images: the base image and one small image per pipeline step.

    python images/build.py                   # here: local OS image, no registry, no pulls
    python images/build.py --site --registry registry.example.org/astro   # at a site
    python images/build.py --pipeline tec --no-steps ...                  # see --help

1. wheels: pyproject.toml's dependencies, at requirements.lock's versions, are downloaded on the host into wheels/
   (skipped while wheels/requirements.txt is current) and the astroflow wheel is built into
   wheels/astroflow/ (``pip wheel --no-deps .``; skipped while newer than every source file).
2. base:   here, a Debian bookworm minbase root filesystem with Debian's python3 (3.11, which
   matches the cp311 wheels) is made with mmdebstrap (or debootstrap) from the plain-http Debian
   mirror and imported as ``astroflow-os:bookworm`` (made once, reused); images/Dockerfile.base
   builds FROM it.  With --site the same Dockerfile builds FROM python:3.11-slim.
3. steps:  every step of every registered pipeline gets ``astroflow-{pipeline}-{step}``, built
   FROM the base with images/Dockerfile.step: the pipeline's code, plus the native kernels and
   extra dependencies that only that step needs (EXTRAS below).
4. sizes:  a table of the base size and what each step image adds; the build fails when the base
   exceeds 1 GB or a step image adds more than 50 MB.

Images are tagged ``:{version}`` (pyproject.toml) and ``:dev``.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
WHEELS = ROOT / "wheels"
BUILD = IMAGES / ".build"
SOURCES = ["shared", "steps", "native", "pyproject.toml", "setup.py"]

OS_IMAGE = "astroflow-os:bookworm"
POSTGRES_IMAGE = "astroflow-postgres:15"  # the calibration library's test database
SITE_BASE_IMAGE = "python:3.11-slim"
OS_PACKAGES = ["python3", "python3-venv", "ca-certificates", "passwd"]
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# The wheels the images can use: CPython 3.11 on glibc >= 2.28 (Debian bookworm has 2.36).
PLATFORM = ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
            "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
            "--platform", "manylinux2014_x86_64"]

MAX_BASE_BYTES = 1_000_000_000
MAX_STEP_ADDED_BYTES = 50_000_000

# What a step image carries beyond its pipeline's code.  "native": files of the astroflow wheel's
# compiled kernels (astroflow/_modshift*.so ...); "requirements": extra packages (with whatever
# they need that the base lacks), installed from wheels downloaded on the host.
EXTRAS: dict[tuple[str, str], dict[str, list[str]]] = {
    ("tec", "modshift_med"): {"native": ["_modshift"], "requirements": []},
    ("tec", "modshift_alt"): {"native": ["_modshift"], "requirements": []},
}


def log(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


# 1. wheels ------------------------------------------------------------------------------------

LOCK = ROOT / "requirements.lock"


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, str]:
    """requirements.lock as {canonical name: version}."""
    return {canonical(name): version for name, version in
            (line.split("==") for line in LOCK.read_text().splitlines() if "==" in line and not line.startswith("#"))}


def locked(dependencies: list[str]) -> list[str]:
    """pyproject.toml's dependency ranges pinned to requirements.lock's versions (extras kept):
    the images install exactly what CI tested."""
    pins = lock_pins()
    out = []
    for dep in dependencies:
        name, extras = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?", dep).groups()
        if canonical(name) not in pins:
            sys.exit(f"build: {name} (pyproject.toml) has no version in {LOCK.name}: run `make lock`")
        out.append(f"{name}{extras or ''}=={pins[canonical(name)]}")
    return out


def download_wheels(requirements: list[str]) -> None:
    """Binary wheels of the locked dependencies (cp311, manylinux) into wheels/; requirements.txt
    there names them and constrains everything they pull in to the lock (constraints.txt)."""
    WHEELS.mkdir(exist_ok=True)
    stamp, constraints = WHEELS / "requirements.txt", WHEELS / "constraints.txt"
    wanted = "-c constraints.txt\n" + "\n".join(requirements) + "\n"
    if stamp.exists() and constraints.exists() and stamp.read_text() == wanted \
            and constraints.read_text() == LOCK.read_text():
        log("wheels: up to date")
        return
    shutil.copyfile(LOCK, constraints)
    sh([sys.executable, "-m", "pip", "download", "--quiet", *PLATFORM, "--dest", str(WHEELS),
        "-c", str(constraints), *requirements])
    stamp.write_text(wanted)  # written last: the folder is complete


def newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".so", ".pyc"):
                newest = max(newest, f.stat().st_mtime)
    return newest


def build_astroflow_wheel(version: str) -> Path:
    out = WHEELS / "astroflow"
    existing = sorted(out.glob(f"astroflow-{version}-*.whl"))
    if existing and existing[0].stat().st_mtime > newest_source_mtime():
        log(f"wheel: {existing[0].name} up to date")
        return existing[0]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sh([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)])
    return sorted(out.glob(f"astroflow-{version}-*.whl"))[0]


def unpack_wheel(wheel: Path) -> Path:
    """The wheel's files, byte-compiled (the same .pyc Python 3.11 would write), for staging."""
    dest = BUILD / "wheel"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    if sys.version_info[:2] == (3, 11):
        subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                        str(dest / "steps")], check=True)
    return dest


# 2. base --------------------------------------------------------------------------------------

def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def debian_mirror() -> str:
    """The plain-http Debian mirror this machine's apt uses (ASTROFLOW_DEBIAN_MIRROR overrides)."""
    if os.environ.get("ASTROFLOW_DEBIAN_MIRROR"):
        return os.environ["ASTROFLOW_DEBIAN_MIRROR"].rstrip("/")
    texts = [p.read_text() for p in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
             if p.is_file() and p.suffix in (".list", ".sources")]
    for uri in re.findall(r"http://\S+", "\n".join(texts)):
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def make_os_image(name: str = OS_IMAGE) -> None:
    """Debian bookworm minbase + python3, straight from the mirror into `docker import`."""
    mirror = debian_mirror()
    security = mirror.removesuffix("/debian") + "/debian-security"
    started = time.time()
    if shutil.which("mmdebstrap"):
        excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")]
        bootstrap = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(OS_PACKAGES), *excludes,
                     "--dpkgopt=path-include=/usr/share/doc/*/copyright", "bookworm", "-",
                     f"deb {mirror} bookworm main", f"deb {mirror} bookworm-updates main",
                     f"deb {security} bookworm-security main"]
        log("$ " + " ".join(bootstrap) + f" | docker import - {name}")
        producer = subprocess.Popen(bootstrap, stdout=subprocess.PIPE)
        source = producer.stdout
    elif shutil.which("debootstrap"):
        rootfs = BUILD / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        sh(["debootstrap", "--variant=minbase", "--include=" + ",".join(OS_PACKAGES), "bookworm", str(rootfs), mirror])
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        producer = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        source = producer.stdout
    else:
        sys.exit("build: neither mmdebstrap nor debootstrap is installed (run .ci/docker-up.sh)")
    imported = subprocess.run(
        ["docker", "import", "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "-c", 'CMD ["/bin/bash"]', "-m", f"Debian bookworm minbase from {mirror}", "-", name],
        stdin=source, capture_output=True, text=True)
    source.close()
    if producer.wait() != 0 or imported.returncode != 0:
        sys.exit(f"build: making {name} failed: {imported.stderr.strip()}")
    log(f"{name}: made in {time.time() - started:.0f} s")


def build_postgres_image(name: str = POSTGRES_IMAGE, os_image: str = OS_IMAGE) -> None:
    """PostgreSQL 15 for the calibration library's tests (images/postgres/Dockerfile): FROM the
    OS image (made first when missing) plus Debian's postgresql-15, with a cluster made at build
    time.  A test image only; a site runs its own PostgreSQL."""
    if not image_exists(os_image):
        make_os_image(os_image)
    started = time.time()
    docker_build(IMAGES / "postgres" / "Dockerfile", IMAGES / "postgres", [name], {"BASE_IMAGE": os_image})
    log(f"{name}: built in {time.time() - started:.0f} s")


def docker_build(dockerfile: Path, context: Path, tags: list[str], build_args: dict[str, str]) -> None:
    cmd = ["docker", "build", "--force-rm", "--quiet", "-f", str(dockerfile)]
    for k, v in build_args.items():
        cmd += ["--build-arg", f"{k}={v}"]
    for t in tags:
        cmd += ["-t", t]
    sh(cmd + [str(context)], stdout=subprocess.DEVNULL)


# 3. steps -------------------------------------------------------------------------------------

def list_steps(base: str, wheel_dir: Path, pipelines: list[str] | None) -> list[tuple[str, str]]:
    """(pipeline, step) of every registered pipeline, read from the Pipeline objects.

    Runs in a throwaway container of the base image with the unpacked wheel in front of the
    path, so the host needs no scientific stack.
    """
    code = ("import json, sys; from astroflow.registry import registered, get_pipeline; "
            "names = sys.argv[1:] or list(registered()); "
            "print(json.dumps([[n, s.name] for n in names for s in get_pipeline(n).steps]))")
    run = subprocess.run(
        ["docker", "run", "--rm", "--network=none", "-v", f"{wheel_dir}:/src:ro", "-e", "PYTHONPATH=/src",
         base, "python", "-c", code, *(pipelines or [])], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"build: cannot list the pipelines' steps:\n{run.stderr.strip()}")
    return [tuple(x) for x in json.loads(run.stdout.strip().splitlines()[-1])]


def stage_step(wheel_dir: Path, pipeline: str, step: str) -> Path:
    """The build context of one step image: site/ = what it adds to site-packages."""
    ctx = BUILD / "steps" / f"{pipeline}-{step}"
    shutil.rmtree(ctx, ignore_errors=True)
    site = ctx / "site"
    (site / "steps").mkdir(parents=True)
    shutil.copy2(wheel_dir / "steps" / "__init__.py", site / "steps" / "__init__.py")
    shutil.copytree(wheel_dir / "steps" / pipeline, site / "steps" / pipeline)
    extras = EXTRAS.get((pipeline, step), {})
    for kernel in extras.get("native", []):
        found = sorted((wheel_dir / "astroflow").glob(f"{kernel}*.so"))
        if not found:
            sys.exit(f"build: {pipeline}/{step} needs native kernel {kernel}, not in the astroflow wheel")
        (site / "astroflow").mkdir(exist_ok=True)
        for f in found:
            shutil.copy2(f, site / "astroflow" / f.name)
    if extras.get("requirements"):
        sh([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *PLATFORM,
            "--target", str(site), *extras["requirements"]])
    return ctx


def build_step(base: str, wheel_dir: Path, pipeline: str, step: str, version: str, tags: list[str],
               pipelines_env: str = "") -> None:
    ctx = stage_step(wheel_dir, pipeline, step)
    docker_build(IMAGES / "Dockerfile.step", ctx, tags, {
        "BASE": base, "PIPELINE": pipeline, "STEP": step, "VERSION": version,
        "ASTROFLOW_PIPELINES": pipelines_env,
    })


# 4. sizes -------------------------------------------------------------------------------------

def image_size(name: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", name],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def mb(n: int) -> str:
    return f"{n / 1e6:8.1f} MB"


def size_report(base: str, steps: dict[str, str]) -> bool:
    base_size = image_size(base)
    ok = base_size <= MAX_BASE_BYTES
    print(f"\n{'image':<48} {'size':>11} {'added':>11}")
    print(f"{base:<48} {mb(base_size)} {'':>11}{'' if ok else '  TOO BIG (> 1 GB)'}")
    for name in steps.values():
        size = image_size(name)
        added = size - base_size
        flag = "" if added <= MAX_STEP_ADDED_BYTES else "  TOO BIG (adds > 50 MB)"
        ok = ok and not flag
        print(f"{name:<48} {mb(size)} {mb(added)}{flag}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--site", action="store_true", default=os.environ.get("ASTROFLOW_SITE_BUILD") == "1",
                        help=f"build the base FROM {SITE_BASE_IMAGE} (pulled from the site's registry)")
    parser.add_argument("--base-image", help="build the base FROM this image instead")
    parser.add_argument("--registry", default="", help="prefix image names with REGISTRY/")
    parser.add_argument("--pipeline", action="append", help="only these pipelines' steps (default: all)")
    parser.add_argument("--no-steps", action="store_true", help="stop after the base image")
    parser.add_argument("--rebuild-os", action="store_true", help=f"remake {OS_IMAGE} even if present")
    parser.add_argument("--jobs", type=int, default=4, help="step images built at once (default 4)")
    args = parser.parse_args(argv)

    started = time.time()
    meta = project()
    version = meta["version"]
    prefix = f"{args.registry.rstrip('/')}/" if args.registry else ""

    download_wheels(locked(meta["dependencies"]))
    wheel = build_astroflow_wheel(version)
    wheel_dir = unpack_wheel(wheel)

    from_image = args.base_image or (SITE_BASE_IMAGE if args.site else OS_IMAGE)
    if from_image == OS_IMAGE and (args.rebuild_os or not image_exists(OS_IMAGE)):
        make_os_image()
    base = f"{prefix}astroflow-base:{version}"
    docker_build(IMAGES / "Dockerfile.base", WHEELS, [base, f"{prefix}astroflow-base:dev"],
                 {"BASE_IMAGE": from_image, "VERSION": version})
    log(f"{base}: ready after {time.time() - started:.0f} s")
    if from_image == OS_IMAGE and not image_exists(POSTGRES_IMAGE):
        build_postgres_image()  # the calibration library's PostgreSQL tests (a site runs its own)

    built: dict[str, str] = {}
    if not args.no_steps:
        # the step builds are small and mostly the daemon's I/O: several at once
        with ThreadPoolExecutor(args.jobs) as pool:
            jobs = {}
            for pipeline, step in list_steps(base, wheel_dir, args.pipeline):
                name = f"{prefix}astroflow-{pipeline}-{step}"
                jobs[f"{pipeline}/{step}"] = (pool.submit(build_step, base, wheel_dir, pipeline, step, version,
                                                          [f"{name}:{version}", f"{name}:dev"]), f"{name}:{version}")
            for key, (job, image) in jobs.items():
                job.result()
                built[key] = image
    ok = size_report(base, built)
    print(f"\nbuilt {1 + len(built)} image(s) in {time.time() - started:.0f} s")
    if not ok:
        print("build: image size limits exceeded (base <= 1 GB, step adds <= 50 MB)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
