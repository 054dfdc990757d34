#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (idempotent).
#
# Installs Debian's docker.io (and mmdebstrap, which images/build.py uses to make the OS base
# image) when missing, starts dockerd in the background when no daemon answers, and waits until
# `docker info` works.  Safe to run again: it does nothing when Docker is already up.
#
#   .ci/docker-up.sh            # default wait 60 s
#   DOCKER_UP_TIMEOUT=120 .ci/docker-up.sh
set -euo pipefail

timeout_s="${DOCKER_UP_TIMEOUT:-60}"
log_file="${DOCKERD_LOG:-/var/log/dockerd.log}"

say() { echo "docker-up: $*" >&2; }

if docker info >/dev/null 2>&1; then
    say "a Docker daemon already answers"
    exit 0
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "need root to install ${missing[*]} (run as root or install them first)"
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd (log: $log_file)"
    nohup dockerd >"$log_file" 2>&1 &
fi

deadline=$((SECONDS + timeout_s))
until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "ERROR: the Docker daemon did not answer within ${timeout_s} s; last lines of $log_file:"
        tail -n 20 "$log_file" >&2 || true
        exit 1
    fi
    sleep 0.5
done
say "ready: $(docker version --format 'server {{.Server.Version}}')"
