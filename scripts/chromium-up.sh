#!/usr/bin/env bash
# Make sure a headless Chromium is on this machine (idempotent): the run report's browser test
# (tests/core/test_report_browser.py) opens RUN/report.html in it.
#
# Installs Debian's `chromium` package only when no chromium command is found; does nothing
# otherwise.  Prints the browser's version either way.
#
#   bash scripts/chromium-up.sh
set -euo pipefail

say() { echo "chromium-up: $*" >&2; }

find_chromium() {
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if ! browser="$(find_chromium)"; then
    if [ "$(id -u)" != 0 ]; then
        say "need root to install chromium (run as root or install Debian's chromium package first)"
        exit 1
    fi
    say "installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    browser="$(find_chromium)" || { say "apt-get installed chromium but no chromium command is on PATH"; exit 1; }
fi
say "$("$browser" --version 2>/dev/null || echo "$browser")"
