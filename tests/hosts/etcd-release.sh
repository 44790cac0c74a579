#!/usr/bin/env bash
# Packs Debian's etcd 3.5 binaries (sid) as an upstream-shaped release archive, so the deploys'
# download-verify-unpack path for etcd runs in tests exactly as against upstream:
#   etcd-v<ver>-linux-amd64.tar.gz  holding  etcd-v<ver>-linux-amd64/{etcd,etcdctl,etcdutl}
#   SHA256SUMS                       in sha256sum format, as upstream publishes it
# Usage: etcd-release.sh [VERSION DEBIAN_VERSION SUITE]   (default: 3.5.30 3.5.30-2 sid)
# Cached by a hash of this script and its arguments; the last line of stdout is the output
# directory.
set -euo pipefail

version=${1:-3.5.30}
debian_version=${2:-3.5.30-2}
suite=${3:-sid}
here=$(cd "$(dirname "$0")" && pwd)
cache=${PKI_CACHE_DIR:-$HOME/.cache/etcd-step-pki}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
hash=$( (cat "$here/etcd-release.sh"; echo "$version $debian_version $suite") | sha256sum | cut -c1-16)
out="$cache/etcd-release/$hash"
name="etcd-v$version-linux-amd64"

if [ -f "$out/SHA256SUMS" ]; then
    echo "$out"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/x" "$work/$name"
echo "deb $mirror $suite main" > "$work/sources.list"
apt_opts=(
    -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root
)
echo "etcd-release: fetching Debian's etcd $debian_version" >&2
apt-get "${apt_opts[@]}" update -q >&2
(cd "$work" && apt-get "${apt_opts[@]}" download "etcd-server=$debian_version" "etcd-client=$debian_version" >&2)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
for binary in etcd etcdctl etcdutl; do
    install -m 0755 "$work/x/usr/bin/$binary" "$work/$name/$binary"
done
"$work/$name/etcd" --version | grep -q "etcd Version: $version" || {
    echo "etcd-release: the package is not etcd $version" >&2
    exit 1
}
mkdir -p "$out.partial"
tar -C "$work" --owner=0 --group=0 -czf "$out.partial/$name.tar.gz" "$name"
(cd "$out.partial" && sha256sum "$name.tar.gz" > SHA256SUMS)
rm -rf "$out" && mv "$out.partial" "$out"
echo "$out"
