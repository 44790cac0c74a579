#!/usr/bin/env bash
# The programs the controller-side tests and `make lint` call, installed from Debian's
# packages when missing: gpg (backup keys, replication's encryption), openssl (certificate
# checks), shellcheck (every rendered script, tests/unit/test_shell_scripts.py) and promtool
# (the alert rules' unit tests; only the binary is taken from Debian's prometheus package),
# and MariaDB's server and client programs (step-ca on a shared SQL database,
# tests/artifacts/test_ca_shared_database.py; the packages without a service of their own).
# Without root, nothing is installed: what is missing is named, with this script as the fix.
set -euo pipefail

say() { echo "controller-tools: $*" >&2; }

missing=()
for tool in gpg openssl shellcheck promtool mariadbd mariadb-install-db mariadb; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ "${#missing[@]}" = 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]}: run $0 as root on a Debian machine, or install them yourself"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_quiet() { apt-get "$@" -q >&2 || { apt-get update -q >&2 && apt-get "$@" -q >&2; }; }

packages=()
for tool in "${missing[@]}"; do
    case "$tool" in
        gpg) packages+=(gnupg) ;;
        openssl | shellcheck) packages+=("$tool") ;;
        mariadbd | mariadb-install-db) packages+=(mariadb-server-core) ;;
        mariadb) packages+=(mariadb-client-core) ;;
    esac
done
if [ "${#packages[@]}" != 0 ]; then
    say "installing ${packages[*]}"
    apt_quiet install -y "${packages[@]}"
fi

if ! command -v promtool >/dev/null; then
    say "installing promtool from Debian's prometheus package"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    chmod 0755 "$tmp" && { chown _apt "$tmp" 2>/dev/null || true; }
    (cd "$tmp" && apt_quiet download prometheus)
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
    install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
fi
