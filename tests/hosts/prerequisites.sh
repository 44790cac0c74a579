#!/usr/bin/env bash
# What the test hosts and test builds need on this machine: a Docker engine that answers and
# debootstrap (the sid build chroot, and the test-host image where debian:bookworm cannot be
# pulled). Installs debootstrap with apt-get when it is missing and we are root.
set -euo pipefail

if ! docker info >/dev/null 2>&1; then
    echo "prerequisites: no Docker engine answers (docker info failed). Start dockerd first;" \
        "on a bare machine .ci/run shows how (apt-get install docker.io docker-compose)." >&2
    exit 1
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    echo "prerequisites: neither 'docker compose' nor 'docker-compose' is installed" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "prerequisites: installing debootstrap" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 ||
            { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
    else
        echo "prerequisites: debootstrap is needed (apt-get install debootstrap)" >&2
        exit 1
    fi
fi
# Each systemd test host takes inotify instances of the (shared) root user; the kernel's
# default of 128 runs out at a few dozen hosts (benchmarks start 35).
if [ "$(id -u)" = 0 ]; then
    for setting in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576; do
        name=${setting%%=*} want=${setting#*=}
        have=$(sysctl -n "$name" 2>/dev/null || echo 0)
        [ "$have" -ge "$want" ] || sysctl -q -w "$setting" >/dev/null 2>&1 || true
    done
fi
if [ "$(id -u)" != 0 ]; then
    echo "prerequisites: the step/step-ca test build runs in a chroot and needs root" >&2
    exit 1
fi
