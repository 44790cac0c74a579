"""step-ca on a cert-manager: initialise once, keep ca.json and file modes as configured."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAHealth, CAState
from etcd_step_pki.facts.shell import replace_file, script
from etcd_step_pki.operations import Commands, galera, roots
from etcd_step_pki.operations.ca_policy import Policy, render_config, with_policy
from etcd_step_pki.operations.profiles import Profile
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.roots import PinnedRoot
from etcd_step_pki.templates.scripts import script as run_script


@dataclass(frozen=True)
class Durations:
    """Lifetimes of the certificates the CA issues (Go durations): default, max, min."""

    default: str
    max: str
    min: str


PASSWORD = "secrets/password"
PROVISIONER_PASSWORD = "secrets/provisioner_password"
# The key that signs the CA's backups (an armored GnuPG secret key, kept with the CA state so
# that a promoted backup cert-manager signs with it too).
BACKUP_SIGNING_KEY = "secrets/backup_signing_key.asc"

# Modes of the reference: keys and passwords 0400 root, their directory 0700. The database
# alone is the account step-ca runs as (DATABASE, with everything in it): step-ca writes
# there, and reads its keys and passwords as systemd credentials (step-ca.service).
DATABASE = "db"
UNIT = "step-ca.service"
MODES = {
    "": ("700", "d"),
    "config": ("700", "d"),
    "config/ca.json": ("600", "f"),
    "config/defaults.json": ("644", "f"),
    "certs": ("755", "d"),
    "certs/root_ca.crt": ("644", "f"),
    "certs/intermediate_ca.crt": ("644", "f"),
    "secrets": ("700", "d"),
    "secrets/root_ca_key": ("400", "f"),
    "secrets/intermediate_ca_key": ("400", "f"),
    PASSWORD: ("400", "f"),
    PROVISIONER_PASSWORD: ("400", "f"),
    BACKUP_SIGNING_KEY: ("400", "f"),
    DATABASE: ("700", "d"),
}


class StepCaPause(NamedTuple):
    """How a copy of the CA state pauses step-ca (templates/macros/step_ca_paused.sh.j2)."""

    lock: str  # one copy at a time on the host holds it
    limit: int  # seconds after which step-ca runs again, however the copy ends


STEP_CA_PAUSE = StepCaPause(lock="/run/etcd-step-pki-ca-pause.lock", limit=30)


def database_source(path: str, db_type: str) -> str:
    """Where step-ca keeps its database: bbolt in one file, badger in a directory."""
    return f"{path}/{DATABASE}/bbolt.db" if db_type == "bbolt" else f"{path}/{DATABASE}"


def desired_config(
    current: dict[str, Any],
    *,
    path: str,
    dns_names: Sequence[str],
    port: int,
    db_type: str,
    durations: Durations,
    provisioner: str | None = None,
    profiles: Sequence[Profile] = (),
    names: Mapping[str, Sequence[str]] | None = None,
    db_user: str = "step",
) -> dict[str, Any]:
    """ca.json as configured: names, address, database, certificate durations, a CRL kept
    up to date on every revocation, and a provisioner for each certificate profile, with the
    key of the base `provisioner` and the `names` of its cluster (cluster: names).

    The keys `step ca init` generated are kept as they are; the base provisioner issues proof
    certificates only, the retired shared provisioners nothing (operations/profiles.py).
    """
    config = copy.deepcopy(current)
    config["dnsNames"] = list(dns_names)
    config["address"] = f":{port}"
    if db_type == "mysql":
        # Active-active: the Galera node on this host (operations/galera.py).
        config["db"] = galera.data_source(db_user)
    else:
        source = database_source(path, db_type)
        config["db"] = {**config.get("db", {}), "type": db_type, "dataSource": source}
    # A certificate revoked at the CA is listed in its CRL at once (`/1.0/crl`), which the
    # members fetch and etcd checks.
    config["crl"] = {**config.get("crl", {}), "enabled": True, "generateOnRevoke": True}
    authority = config.setdefault("authority", {})
    authority["claims"] = {
        **authority.get("claims", {}),
        "minTLSCertDuration": durations.min,
        "maxTLSCertDuration": durations.max,
        "defaultTLSCertDuration": durations.default,
    }
    if profiles:
        try:
            with_policy(config, Policy.of(str(provisioner), profiles, names or {}))
        except ValueError as error:
            raise OperationError(str(error)) from error
    return config


@operation()
def authority(
    path: str,
    *,
    ca_name: str,
    dns_names: Sequence[str],
    port: int,
    provisioner: str,
    bin_dir: str = "/opt/bin",
    root_pin: PinnedRoot | None = None,
) -> Commands:
    """
    Initialise the CA (root, intermediate, JWK provisioner) unless one exists, and record its
    new root on the controller where `root_pin` names a record and nothing pins a root yet.

    + path: the CA's `$STEPPATH`, e.g. `/etc/step-ca`
    + ca_name: the name of the root and intermediate certificates
    + dns_names: names and addresses of the CA's TLS certificate
    + port: the port step-ca listens on
    + provisioner: the name of the JWK provisioner
    + bin_dir: where `step` is

    An existing CA is never overwritten: with CA keys but no `ca.json` the run stops.
    """
    state = memo.get_fact(host, CAState, path=path)
    if state["config"] is not None:
        host.noop(f"a CA exists at {path}")
        return
    for key in ("secrets/root_ca_key", "secrets/intermediate_ca_key"):
        if f"{path}/{key}" in state["files"]:
            raise OperationError(
                f"{path}/{key} exists but {path}/config/ca.json does not: refusing to "
                "initialise a new CA over existing keys; restore the CA (deploys/restore_ca.py) "
                "or move the old state away"
            )
    # Passwords are made on the host (ca-init.sh.j2): no command line holds them.
    yield run_script(
        "ca-init.sh.j2",
        step_path=path,
        password=PASSWORD,
        provisioner_password=PROVISIONER_PASSWORD,
        step=f"{bin_dir}/step",
        name=ca_name,
        dns_names=list(dns_names),
        address=f":{port}",
        provisioner=provisioner,
    )
    yield RunTimeStep(_new_root_recorded, path, root_pin)


def _new_root_recorded(state: State, remote: Remote, path: str, pin: PinnedRoot | None) -> bool:
    """Run time, right after `step ca init`: the new root's fingerprint in the record that
    every later run holds the CA to (operations/roots.py)."""
    del state
    ok, out = remote.run(script("cat {root}", root=f"{path}/certs/root_ca.crt"))
    if not ok:
        return remote.fail(f"reading the new root failed: {out.stderr}")
    roots.record(out.stdout, pin, new_ca=True)
    return True


@operation()
def configuration(
    path: str,
    *,
    dns_names: Sequence[str],
    port: int,
    db_type: str,
    durations: Durations,
    provisioner: str | None = None,
    profiles: Sequence[Profile] = (),
    names: Mapping[str, Sequence[str]] | None = None,
    modes: bool = False,
    ca_user: str = "step",
    records_moved: bool = False,
) -> Commands:
    """
    Keep ca.json as configured (names, address, database, durations, profiles).

    + path: the CA's `$STEPPATH`
    + dns_names: names and addresses of the CA's TLS certificate
    + port: the port step-ca listens on
    + db_type: `bbolt` (one file) or another step-ca database type
    + durations: default, max and min durations of issued certificates
    + provisioner: the JWK provisioner `step ca init` made, whose key the profiles' share
    + profiles: the certificate profiles (operations/profiles.py), a provisioner each
    + names: each cluster's names and addresses, the only ones its provisioners issue for
    + modes: keep the owners and modes of the CA's files too (`file_modes`, with the same
      read of the CA's state)
    + ca_user: the account step-ca runs as, which owns the database
    + records_moved: an operation before this one moves bbolt's records to the Galera
      database (operations/galera_migration.py); without it ca.json is never switched from
      bbolt to the database
    """
    state = memo.get_fact(host, CAState, path=path)
    current = state["config"]
    if current is None:
        if host.state.is_executing:
            raise OperationError(f"{path}/config/ca.json is missing: the CA is not initialised")
        # Change detection before the CA exists: the content is known only after `ca init`.
        yield script("test -f {file}", file=f"{path}/config/ca.json")
        return
    wanted = desired_config(
        current,
        path=path,
        dns_names=dns_names,
        port=port,
        db_type=db_type,
        durations=durations,
        provisioner=provisioner,
        profiles=profiles,
        names=names,
        db_user=ca_user,
    )
    moved = (current.get("db") or {}).get("type"), wanted["db"]["type"]
    if moved == ("bbolt", "mysql") and not records_moved:
        raise OperationError(
            "ca_ha=active-active: this CA keeps its records in bbolt, and nothing moves them to "
            "the Galera database in this run; ca.json was not changed"
        )
    fixes = _mode_fixes(path, state["files"], ca_user) if modes else []
    if wanted == current and not fixes:
        host.noop(f"{path}/config/ca.json is as configured" + (", file modes too" if modes else ""))
        return
    if wanted != current:
        # ca.json holds the provisioner's encrypted key, which step-ca serves to every client.
        yield StringCommand(replace_file(f"{path}/config/ca.json", render_config(wanted), "0600"))
    yield from fixes


def _mode_fixes(path: str, files: dict[str, Any], ca_user: str) -> list[StringCommand]:
    """The commands that give the CA's files the owners and modes of the reference, and the
    database to the account step-ca runs as."""
    fixes = []
    database = f"{path}/{DATABASE}"
    # What step-ca wrote in its database that is not its account's (a restore's root files).
    foreign = any(
        (i["user"], i["group"]) != (ca_user, ca_user)
        for p, i in files.items()
        if p.startswith(f"{database}/")
    )
    for relative, (mode, kind) in MODES.items():
        full = f"{path}/{relative}".rstrip("/")
        info = files.get(full)
        if info is None or info["type"] != kind:
            continue
        owner = ca_user if full == database else "root"
        if full == database and foreign:
            fixes.append(script("chown -R {u}:{u} {f}", u=owner, f=full))
        if info["mode"] != mode or (info["user"], info["group"]) != (owner, owner):
            fixes.append(
                script("chown {u}:{u} {f} && chmod {mode} {f}", u=owner, f=full, mode=mode)
            )
    return fixes


@operation()
def file_modes(path: str, *, ca_user: str = "step") -> Commands:
    """
    Keep owners and modes of the CA's files as the reference sets them (keys 0400 root), and
    the database the account step-ca runs as.

    + path: the CA's `$STEPPATH`
    + ca_user: the account step-ca runs as
    """
    fixes = _mode_fixes(path, memo.get_fact(host, CAState, path=path)["files"], ca_user)
    if not fixes:
        host.noop(f"modes and owners under {path} are as they should be")
        return
    yield from fixes


def _wait_healthy(ca_name: str, port: int, root: str, timeout: int) -> StringCommand:
    return run_script(
        "ca-healthy-wait.sh.j2",
        root=root,
        resolve=f"{ca_name}:{port}:127.0.0.1",
        name=ca_name,
        port=port,
        timeout=timeout,
    )


@operation()
def healthy(ca_name: str, *, port: int, root: str, timeout: int = 60) -> Commands:
    """
    Wait until step-ca answers `/health` over TLS verified against the root.

    + ca_name: a name in the CA's TLS certificate
    + port: the port step-ca listens on
    + root: the root certificate on this host
    + timeout: seconds to wait before failing
    """
    if memo.get_fact(host, CAHealth, ca_name=ca_name, port=port, root=root)["ok"]:
        host.noop("step-ca is healthy")
        return
    yield _wait_healthy(ca_name, port, root, timeout)


@operation()
def issuance_proven(
    path: str, *, port: int, provisioner: str, bin_dir: str = "/opt/bin"
) -> Commands:
    """
    Prove that this host's step-ca issues and renews: a throwaway certificate is issued
    through `https://127.0.0.1:<port>` (this host's CA itself, whatever name nodes use),
    verified against the root, renewed over mTLS, and removed. Runs at execution, every time.

    + path: the CA's `$STEPPATH`
    + port: the port step-ca listens on
    + provisioner: the JWK provisioner that signs the token
    + bin_dir: where `step` is
    """
    yield run_script(
        "ca-issuance-proof.sh.j2",
        ca_path=path,
        url=f"https://127.0.0.1:{port}",
        step=f"{bin_dir}/step",
        provisioner=provisioner,
        subject="failover-proof",
    )
