#!/usr/bin/env bash
# Upstream's release archive of step, step-ca or etcd, for the test hosts.
#
#   upstream-release.sh PROGRAM VERSION [SHA256]
#     PROGRAM  step | step-ca | etcd
#     VERSION  e.g. 0.30.6, 0.30.2, 3.6.17 (no leading v)
#     SHA256   upstream's published SHA-256 of the linux/amd64 archive (the deploys' pinned
#              table): needed only where the archive is downloaded
#
# With Go (on PATH or in /usr/local/go): built from upstream's own published module at that
# version, with the ordinary Go client, sources unmodified: static (CGO_ENABLED=0),
# -trimpath, the version stamped as upstream's release build stamps it, packed in upstream's
# archive layout with upstream's checksums file:
#   step     step_linux_<v>_amd64.tar.gz      step_<v>/bin/step, README.md, LICENSE,
#                                             autocomplete/        checksums.txt
#   step-ca  step-ca_linux_<v>_amd64.tar.gz   step-ca, README.md, LICENSE   checksums.txt
#   etcd     etcd-v<v>-linux-amd64.tar.gz     etcd-v<v>-linux-amd64/{etcd,etcdctl,etcdutl,
#                                             README-etcdctl.md,README-etcdutl.md}  SHA256SUMS
# Without Go (or with PKI_UPSTREAM_FROM=download): upstream's release archive is downloaded
# from ${PKI_UPSTREAM_RELEASES_URL:-https://github.com}/<owner>/<repo>/releases/download/
# v<v>/<file> and checked against SHA256 before it is kept, as the deploys check it.
#
# Cached per program, version and recipe under ${PKI_CACHE_DIR:-~/.cache/etcd-step-pki}/
# upstream/; the LAST line of stdout is the directory holding the archive and its checksums
# file, everything else goes to stderr.
set -euo pipefail

program=${1:?usage: upstream-release.sh step|step-ca|etcd VERSION [SHA256]}
version=${2:?usage: upstream-release.sh step|step-ca|etcd VERSION [SHA256]}
expected=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cache=${PKI_CACHE_DIR:-$HOME/.cache/etcd-step-pki}
start=$SECONDS

log() { echo "upstream-release: [$((SECONDS - start))s] $program $version: $*" >&2; }
die() {
    echo "upstream-release: $program $version: $*" >&2
    exit 1
}

[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "not a release version"
case $program in
step)
    module=github.com/smallstep/cli
    repository=smallstep/cli
    archive=step_linux_${version}_amd64.tar.gz
    sums=checksums.txt
    ;;
step-ca)
    module=github.com/smallstep/certificates
    repository=smallstep/certificates
    archive=step-ca_linux_${version}_amd64.tar.gz
    sums=checksums.txt
    ;;
etcd)
    module=go.etcd.io/etcd/server/v3
    repository=etcd-io/etcd
    archive=etcd-v${version}-linux-amd64.tar.gz
    sums=SHA256SUMS
    ;;
*) die "unknown program (step, step-ca or etcd)" ;;
esac

go=$(command -v go || true)
[[ -n $go || ! -x /usr/local/go/bin/go ]] || go=/usr/local/go/bin/go
from=${PKI_UPSTREAM_FROM:-$([[ -n $go ]] && echo build || echo download)}
[[ $from == build || $from == download ]] || die "PKI_UPSTREAM_FROM is build or download"

recipe=$( (cat "$here/upstream-release.sh" "$here/etcd-commits.txt"; echo "$program $version $from $expected") |
    sha256sum | cut -c1-16)
out=$cache/upstream/$program-$version-$recipe
if [[ -f $out/$sums ]] && (cd "$out" && sha256sum --quiet -c "$sums" >/dev/null 2>&1); then
    echo "$out"
    exit 0
fi

mkdir -p "$cache/upstream"
# One build at a time per cache: parallel test sessions share it, and so does Go's cache.
exec 9>"$cache/upstream/.lock"
flock 9
work=$(mktemp -d "$cache/upstream/.work-XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/out"

# --- download (no Go): the deploys' own path, checked against the pinned SHA-256 ---------

if [[ $from == download ]]; then
    [[ $expected =~ ^[0-9a-f]{64}$ ]] || die "downloading needs the archive's pinned SHA-256"
    url=${PKI_UPSTREAM_RELEASES_URL:-https://github.com}/$repository/releases/download/v$version/$archive
    log "downloading $url"
    curl -fsSL --retry 3 --connect-timeout 15 -o "$work/out/$archive" "$url" ||
        die "cannot download $url"
    got=$(sha256sum "$work/out/$archive" | cut -d' ' -f1)
    [[ $got == "$expected" ]] || die "checksum mismatch for $archive: expected $expected, got $got"
    (cd "$work/out" && sha256sum "$archive" >"$sums")
    rm -rf "$out" && mv "$work/out" "$out"
    echo "$out"
    exit 0
fi

# --- build from upstream's module ----------------------------------------------------------

export GOFLAGS=-mod=mod CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOTELEMETRY=off
# A module whose go.mod asks for a newer Go than the installed one gets it from the module
# proxy (golang.org/toolchain), as the Go client does by default.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

# The tag's time, as the module proxy records it: goreleaser stamps the release's date.
info=$(cd "$work" && "$go" list -m -json "$module@v$version") || die "the module proxy has no $module@v$version"
date=$(printf '%s\n' "$info" | sed -n 's/^\t"Time": "\(.*\)",\{0,1\}$/\1/p')
[[ -n $date ]] || die "no release time for $module@v$version"
source=$(cd "$work" && "$go" mod download -json "$module@v$version" |
    sed -n 's/^\t"Dir": "\(.*\)",\{0,1\}$/\1/p')
[[ -d $source ]] || die "cannot download $module@v$version"
log "building from $module@v$version (released $date) with $("$go" env GOVERSION)"

pack() { # pack DIR ARCHIVE: a reproducible tar.gz of DIR's entries, dated as the release
    local entries
    mapfile -t entries < <(ls -A "$1")
    tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$date" \
        -cf - "${entries[@]}" | gzip -n -6 >"$2"
}

case $program in
step | step-ca)
    # Smallstep's .goreleaser.yml: -w -X main.Version={{.Version}} -X main.BuildTime={{.Date}}
    main=$module/cmd/$program
    GOBIN=$work/bin "$go" install -trimpath \
        -ldflags "-w -X main.Version=$version -X main.BuildTime=$date" "$main@v$version" >&2 ||
        die "go install $main@v$version failed"
    if [[ $program == step ]]; then
        # step's archives wrap everything in step_<version>/ with the binary in bin/.
        stage=$work/stage/step_$version
        install -D -m 0755 "$work/bin/step" "$stage/bin/step"
        cp -r "$source/autocomplete" "$stage/autocomplete"
    else
        stage=$work/stage
        install -D -m 0755 "$work/bin/step-ca" "$stage/step-ca"
    fi
    install -m 0644 "$source/README.md" "$source/LICENSE" "$stage/"
    pack "$work/stage" "$work/out/$archive"
    ;;
etcd)
    # etcd's modules replace each other with local paths in their go.mod, which `go install
    # module@version` refuses; a module of our own requires the three at the release instead,
    # and `go build` builds upstream's main packages from it as etcd's release build does
    # (scripts/build_lib.sh, with scripts/build-binary.sh's GO_LDFLAGS="-s -w"): -trimpath,
    # -installsuffix=cgo, -X go.etcd.io/etcd/api/v3/version.GitSHA=<the tag's short commit>.
    modules=(go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3)
    mkdir -p "$work/module"
    printf 'module etcd-release-build\n\ngo 1.23\n' >"$work/module/go.mod"
    (cd "$work/module" && "$go" get "${modules[@]/%/@v$version}" >&2) ||
        die "go get of etcd's modules at v$version failed"
    git_sha=$(awk -v v="$version" '$1 == v { print $2 }' "$here/etcd-commits.txt")
    [[ -n $git_sha ]] || die "no commit recorded for etcd $version in tests/hosts/etcd-commits.txt"
    name=etcd-v$version-linux-amd64
    stage=$work/stage/$name
    mkdir -p "$stage"
    for main in "${modules[@]}"; do
        binary=${main%/v3}
        binary=${binary##*/}
        [[ $binary != server ]] || binary=etcd
        (cd "$work/module" && "$go" build -trimpath -installsuffix=cgo \
            -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$git_sha" \
            -o "$stage/$binary" "$main") >&2 || die "go build $main failed"
    done
    for tool in etcdctl etcdutl; do
        dir=$(cd "$work/module" && "$go" list -m -f '{{.Dir}}' "go.etcd.io/etcd/$tool/v3")
        install -m 0644 "$dir/README.md" "$stage/README-$tool.md"
    done
    "$stage/etcd" --version | grep -qx "etcd Version: $version" || die "etcd does not say $version"
    pack "$work/stage" "$work/out/$archive"
    ;;
esac

(cd "$work/out" && sha256sum "$archive" >"$sums")
rm -rf "$out" && mv "$work/out" "$out"
log "done: $(cut -c1-16 <"$out/$sums")..."
echo "$out"
