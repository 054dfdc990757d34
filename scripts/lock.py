"""Rewrite requirements.lock: the newest versions pyproject.toml's ranges allow for astroflow[dev].

    python scripts/lock.py            # (make lock) pip's resolver, nothing installed

The lock is what the images (images/build.py) and CI (make venv) install; pyproject.toml keeps
the compatible ranges a user's environment may satisfy with other versions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# The exact versions the images and CI install (pip constraints).  `make lock` rewrites it with the
# newest versions pyproject.toml's ranges allow (scripts/lock.py); pyproject.toml keeps the ranges.
"""


def resolve() -> list[tuple[str, str]]:
    """(name, version) of every distribution a fresh install of astroflow[dev] would get."""
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                          "--report", "-", f"{ROOT}[dev]"], check=True, capture_output=True, text=True).stdout
    found = [(i["metadata"]["name"], i["metadata"]["version"]) for i in json.loads(out)["install"]]
    return sorted((n, v) for n, v in found if n.lower() != "astroflow")


def main() -> int:
    pins = resolve()
    (ROOT / "requirements.lock").write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in pins))
    print(f"requirements.lock: {len(pins)} distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
