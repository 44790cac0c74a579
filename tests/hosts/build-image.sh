#!/usr/bin/env bash
# Builds the test-host image once per set of inputs and prints its tag on the last line.
#
# The tag carries a hash of this script, the Dockerfile and the package list, so the image is
# rebuilt only when one of them changes. The base is debian:bookworm when Docker has it or can
# pull it; otherwise (no registry reachable, as on CI) a debootstrap of bookworm, imported with
# `docker import`, that already holds every package.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${PKI_CACHE_DIR:-$HOME/.cache/etcd-step-pki}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { echo "build-image: $*" >&2; }

hash=$(cat "$here/build-image.sh" "$here/Dockerfile" "$here/packages.txt" | sha256sum | cut -c1-16)
tag="etcd-step-pki/test-host:$hash"
base_hash=$(sha256sum <"$here/packages.txt" | cut -c1-16)

if docker image inspect "$tag" >/dev/null 2>&1; then
    log "reusing $tag"
    echo "$tag"
    exit 0
fi

packages=$(grep -v '^#' "$here/packages.txt" | paste -sd, -)

base=debian:bookworm
if ! docker image inspect "$base" >/dev/null 2>&1 &&
    ! timeout 60 docker pull -q "$base" >/dev/null 2>&1; then
    base="etcd-step-pki/bookworm-base:$base_hash"
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null || {
            log "debootstrap is needed to build the base image (apt-get install debootstrap)"
            exit 1
        }
        root="$cache/debootstrap-bookworm-$base_hash"
        rm -rf "$root" "$root.partial"
        log "debootstrap bookworm into $root (about a minute)"
        debootstrap --variant=minbase --include="$packages" bookworm "$root.partial" "$mirror" \
            >"$cache/debootstrap-$base_hash.log" 2>&1 || {
            log "debootstrap failed, see $cache/debootstrap-$base_hash.log"
            exit 1
        }
        mv "$root.partial" "$root"
        # Keep the image small: no package lists or caches.
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -c . | docker import - "$base" >/dev/null
        rm -rf "$root"
    fi
fi

log "building $tag from $base"
docker build -q --build-arg "BASE=$base" -t "$tag" "$here" >/dev/null 2>"$cache/docker-build.log" || {
    cat "$cache/docker-build.log" >&2
    exit 1
}
echo "$tag"
