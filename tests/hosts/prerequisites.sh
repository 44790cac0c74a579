#!/usr/bin/env bash
# Everything the sandbox, the tests and the benchmarks need on this machine, installed when
# missing: a Docker engine that answers (Debian's docker.io and docker-compose, dockerd started
# when no engine answers), debootstrap (the sid build chroot, and the test-host image where
# debian:bookworm cannot be pulled), and inotify limits for many systemd hosts. Where Docker
# already runs, nothing is installed. `make sandbox`, `make test`, `make bench` and .ci/run all
# start here.
set -euo pipefail

say() { echo "prerequisites: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    docker info >/dev/null 2>&1 || { say "no Docker engine answers, and installing one needs root"; exit 1; }
    say "the step/step-ca test build runs in a chroot and needs root"
    exit 1
fi

apt_install() {
    command -v apt-get >/dev/null || { say "missing $*, and this machine has no apt-get"; exit 1; }
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >&2 || { apt-get update -q >&2 && apt-get install -y -q "$@" >&2; }
}

# gpg, openssl, shellcheck and promtool for the controller-side tests and the lint.
"$(dirname "$0")/controller-tools.sh"

if ! docker info >/dev/null 2>&1; then
    missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 ||
        missing+=(docker-compose)
    [ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}"
    say "no Docker engine answers: starting dockerd (log: /var/log/dockerd-etcd-step-pki.log)"
    nohup dockerd >/var/log/dockerd-etcd-step-pki.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || {
        tail -n 30 /var/log/dockerd-etcd-step-pki.log >&2
        say "dockerd did not start"
        exit 1
    }
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    apt_install docker-compose
fi
command -v debootstrap >/dev/null || apt_install debootstrap
# Each systemd test host takes inotify instances of the (shared) root user; the kernel's
# default of 128 runs out at a few dozen hosts (benchmarks start 35).
for setting in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576; do
    name=${setting%%=*} want=${setting#*=}
    have=$(sysctl -n "$name" 2>/dev/null || echo 0)
    [ "$have" -ge "$want" ] || sysctl -q -w "$setting" >/dev/null 2>&1 || true
done
