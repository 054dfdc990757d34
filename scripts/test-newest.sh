#!/usr/bin/env bash
# A fresh virtual environment with the newest versions pyproject.toml's ranges allow (no lock),
# astroflow installed from this checkout as a user would (pip install '.[dev]', not editable),
# then the fast tests (not docker, not slow) against that installation.
#
#   bash scripts/test-newest.sh [pytest args...]      # make test-newest
#   NEWEST_VENV=/tmp/x bash scripts/test-newest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${NEWEST_VENV:-/tmp/astroflow-newest}"
rm -rf "$venv"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet '.[dev]'
"$venv/bin/python" -m pip list --format=freeze | grep -iE '^(numpy|scipy|astropy|pyarrow|h5py|pydantic|matplotlib)=='
# pytest (not `python -m pytest`) from the checkout: the tests are the checkout's, astroflow and
# steps are the installed ones (the checkout's folders are not on sys.path)
"$venv/bin/python" -c "import astroflow, steps; print('astroflow from', astroflow.__file__)"
"$venv/bin/pytest" -q -m "not docker and not slow" -p no:cacheprovider "$@"
