#!/usr/bin/env bash
# Builds the test harness's step-ca and step 0.30.2 release archives.
#
# Upstream's release archives cannot be downloaded here, so this builds
# look-alikes: step-ca from Debian's packaged source of smallstep/certificates
# and a step-compatible test client (src/step), both static linux/amd64,
# compiled in a Debian sid chroot in GOPATH mode against /usr/share/gocode,
# then packed with upstream's archive names and layout plus checksums.txt.
#
# Output: the LAST line of stdout is the absolute path of the artifact
# directory; everything else goes to stderr.
#
# Cache (${PKI_CACHE_DIR:-$HOME/.cache/etcd-step-pki}):
#   chroots/<key>/       sid chroot with the Go packages and the Go build cache
#   artifacts/<hash>/    archives + checksums.txt, keyed by the build inputs
# A complete artifact directory is reused as is; delete it to force a build.
set -euo pipefail

VERSION=0.30.2
# Release dates printed by `version`: the commit times (UTC) of the v0.30.2
# tags of smallstep/certificates and smallstep/cli.
CA_RELEASE_DATE=2026-03-19T11:55:22Z
CLI_RELEASE_DATE=2026-03-22T23:10:48Z

SUITE=sid
MIRROR=${PKI_DEBIAN_MIRROR:-${DEBIAN_MIRROR:-http://deb.debian.org/debian}}
# What the chroot gets on top of minbase. certinfo, zcrypto and truststore
# are the libraries upstream's step uses for inspect and bootstrap --install.
PACKAGES=(
  golang-go
  golang-github-smallstep-certificates-dev
  golang-github-smallstep-certinfo-dev
  golang-github-zmap-zcrypto-dev
  golang-github-smallstep-truststore-dev
)
CHROOT_RECIPE=1 # bump when the chroot preparation below changes

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PKI_CACHE_DIR:-$HOME/.cache/etcd-step-pki}
START=$SECONDS

log() { echo "build.sh: [$((SECONDS - START))s] $*" >&2; }
die() {
  echo "build.sh: error: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || die "must run as root (debootstrap and chroot need it)"
for tool in debootstrap chroot sha256sum tar gzip flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install debootstrap coreutils tar gzip util-linux)"
done
[[ $(uname -m) == x86_64 ]] || die "only amd64 hosts are supported (found $(uname -m))"

CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)
mkdir -p "$CACHE/chroots" "$CACHE/artifacts"

# One build at a time per cache (parallel test sessions share it).
exec 9>"$CACHE/.lock"
flock 9

sha() { sha256sum | cut -c1-16; }

# Build inputs: this script (it holds the package list and versions), the
# Go sources and the files packed into the archives.
INPUT_HASH=$(
  cd "$HERE"
  {
    printf '%s\n' "${PACKAGES[@]}"
    find build.sh src release -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha
)
OUT=$CACHE/artifacts/$INPUT_HASH
STEP_TGZ=step_linux_${VERSION}_amd64.tar.gz
CA_TGZ=step-ca_linux_${VERSION}_amd64.tar.gz

artifacts_complete() {
  [[ -f $1/checksums.txt && -f $1/$STEP_TGZ && -f $1/$CA_TGZ ]] &&
    (cd "$1" && sha256sum --quiet -c checksums.txt >/dev/null 2>&1)
}

if artifacts_complete "$OUT"; then
  log "artifacts up to date"
  echo "$OUT"
  exit 0
fi

# Temporary directories are removed on exit. A chroot may still have
# debootstrap's /proc or /sys mounted after a failure: unmount first and
# never cross into another file system while deleting.
TMPDIRS=()
cleanup() {
  local d m
  for d in "${TMPDIRS[@]}"; do
    [[ -e $d ]] || continue
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
      awk -v d="$d/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r
    )
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT

# --- chroot ------------------------------------------------------------------

CHROOT_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "$CHROOT_RECIPE" "${PACKAGES[@]}" | sha)
ROOT=$CACHE/chroots/$CHROOT_KEY

in_chroot() { # in_chroot DIR COMMAND...: run with a clean environment
  local dir=$1
  shift
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
in_root() { in_chroot "$ROOT" "$@"; }

if [[ ! -f $ROOT/.complete ]]; then
  rm -rf --one-file-system "$ROOT"
  NEW=$CACHE/chroots/.new-$CHROOT_KEY-$$
  TMPDIRS+=("$NEW")
  log "creating the $SUITE chroot (debootstrap, then apt-get install ${PACKAGES[*]})"
  debootstrap --variant=minbase "$SUITE" "$NEW" "$MIRROR" >"$CACHE/chroots/debootstrap.log" 2>&1 ||
    die "debootstrap $SUITE from $MIRROR failed; see $CACHE/chroots/debootstrap.log"

  # The mirror is a frozen snapshot: its Release files are past Valid-Until.
  echo 'Acquire::Check-Valid-Until "false";' >"$NEW/etc/apt/apt.conf.d/99snapshot"
  # Faster unpacking, no documentation: this chroot only compiles.
  echo force-unsafe-io >"$NEW/etc/dpkg/dpkg.cfg.d/99unsafe-io"
  printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
    'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/locale/*' >"$NEW/etc/dpkg/dpkg.cfg.d/99nodoc"

  log "debootstrap done; installing packages (log: $CACHE/chroots/apt.log)"
  {
    in_chroot "$NEW" apt-get -q -o Acquire::Check-Valid-Until=false update &&
      in_chroot "$NEW" apt-get -q -y --no-install-recommends install "${PACKAGES[@]}" &&
      in_chroot "$NEW" apt-get clean
  } >"$CACHE/chroots/apt.log" 2>&1 || {
    tail -n 20 "$CACHE/chroots/apt.log" >&2
    die "apt-get install ${PACKAGES[*]} in the chroot failed; see $CACHE/chroots/apt.log"
  }
  # Go would otherwise try to start its telemetry sidecar on every run.
  in_chroot "$NEW" GOROOT=/usr/lib/go go telemetry off
  touch "$NEW/.complete"
  mv "$NEW" "$ROOT"
  log "chroot ready: $ROOT"
else
  log "reusing chroot $ROOT"
fi

# shellcheck disable=SC2016 # ${Version} is a dpkg-query format, not a shell variable
deb_version() { in_root dpkg-query -W -f '${Version}' "$1"; }
CERTIFICATES_DEB=$(deb_version golang-github-smallstep-certificates-dev)
GOLANG_DEB=$(deb_version golang-go)
log "golang-go $GOLANG_DEB, golang-github-smallstep-certificates-dev $CERTIFICATES_DEB"

# step-ca's version is what Debian packages; the archive names stay on the
# pinned $VERSION so that the deploys find them.
CA_VERSION=${CERTIFICATES_DEB%-*}
CA_VERSION=${CA_VERSION%%+*}
if [[ $CA_VERSION != "$VERSION" ]]; then
  log "WARNING: Debian packages smallstep/certificates $CA_VERSION, not $VERSION;" \
    "step-ca will report $CA_VERSION inside archives named $VERSION"
fi

# --- build -------------------------------------------------------------------

log "building step-ca and step (static linux/amd64)"
rm -rf --one-file-system "$ROOT/build"
mkdir -p "$ROOT/build/out"
cp -r "$HERE/src" "$ROOT/build/src"
# One go build for both binaries: the shared dependencies compile once. The
# per-package -ldflags give each binary its own version and release date.
in_root GOROOT=/usr/lib/go GOPATH=/build:/usr/share/gocode GO111MODULE=off \
  GOCACHE=/var/cache/go-build GOTELEMETRY=off GOFLAGS=-buildvcs=false \
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 \
  go build -trimpath \
  -ldflags "step-ca=-w -X main.Version=$CA_VERSION -X main.BuildTime=$CA_RELEASE_DATE" \
  -ldflags "step=-w -X main.Version=$VERSION -X main.BuildTime=$CLI_RELEASE_DATE" \
  -o /build/out/ step-ca step >&2 || die "go build failed (sources: $HERE/src)"

# --- pack --------------------------------------------------------------------

log "packing release archives"
STAGE=$CACHE/artifacts/.new-$INPUT_HASH-$$
TMPDIRS+=("$STAGE")
mkdir -p "$STAGE/step/step_$VERSION/bin" "$STAGE/step-ca" "$STAGE/out"
LICENSE=$ROOT/usr/share/common-licenses/Apache-2.0

# step: everything under step_<version>/ (goreleaser wrap_in_directory), the
# binary in bin/, with README.md, LICENSE and autocomplete/.
install -m 0755 "$ROOT/build/out/step" "$STAGE/step/step_$VERSION/bin/step"
cp -r "$HERE/release/step/." "$STAGE/step/step_$VERSION/"
install -m 0644 "$LICENSE" "$STAGE/step/step_$VERSION/LICENSE"
# step-ca: flat (no wrap_in_directory since certificates v0.25.1).
install -m 0755 "$ROOT/build/out/step-ca" "$STAGE/step-ca/step-ca"
cp -r "$HERE/release/step-ca/." "$STAGE/step-ca/"
install -m 0644 "$LICENSE" "$STAGE/step-ca/LICENSE"

pack() { # pack DIR ARCHIVE DATE: reproducible tar.gz of DIR's entries
  local entries
  mapfile -t entries < <(ls -A "$1")
  tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$3" \
    -cf - "${entries[@]}" | gzip -n -6 >"$2"
}
pack "$STAGE/step" "$STAGE/out/$STEP_TGZ" "$CLI_RELEASE_DATE"
pack "$STAGE/step-ca" "$STAGE/out/$CA_TGZ" "$CA_RELEASE_DATE"
# goreleaser's checksums.txt: "<sha256>  <file>", sorted by file name.
(cd "$STAGE/out" && sha256sum "$CA_TGZ" "$STEP_TGZ" | sort -k2 >checksums.txt)
{
  echo "golang-go $GOLANG_DEB"
  echo "golang-github-smallstep-certificates-dev $CERTIFICATES_DEB"
  echo "step-ca $CA_VERSION ($CA_RELEASE_DATE), step test client $VERSION ($CLI_RELEASE_DATE)"
} >"$STAGE/out/build-info.txt"

rm -rf --one-file-system "$OUT"
mv "$STAGE/out" "$OUT"
artifacts_complete "$OUT" || die "the new artifact directory $OUT fails its own checksums"
log "done: $(tr '\n' ' ' <"$OUT/checksums.txt")"
echo "$OUT"
