"""Revocation at the CA (a host's certificates revoked by serial number), and the CA's
revocation list on the members, which etcd checks every connection against.

The operation runs on the cert-manager: what to revoke comes from its step-ca's own records
of what it issued (facts/ca_records.py), never from the host being distrusted, which may be
down, gone or lying. It mints one revoke token per certificate with the provisioner's key
and asks its step-ca to revoke (passive revocation: step-ca records it, refuses to renew the
certificate and lists it in its CRL). The tokens never leave the cert-manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State
from pyinfra.facts.files import FindFiles

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca_records import CARecords, GaleraRecords
from etcd_step_pki.facts.revocation import RevocationLists
from etcd_step_pki.facts.shell import raw
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca import STEP_CA_PAUSE
from etcd_step_pki.operations.certificates import BACKDATE
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.tokens import Authority, key_values, reached
from etcd_step_pki.operations.units import taken_as_account
from etcd_step_pki.templates import render
from etcd_step_pki.templates.scripts import script


def revoke_command(
    authority: Authority, serials: Sequence[int], reason: str, code: str
) -> StringCommand:
    """The cert-manager's command that revokes `serials` (decimal, as step-ca takes them),
    each with a revoke token that stays in the script's environment (ca-revoke.sh.j2)."""
    return script(
        "ca-revoke.sh.j2",
        authority=key_values(authority),
        serials=[str(serial) for serial in serials],
        reason=reason,
        code=code,
    )


@dataclass(frozen=True)
class Holder:
    """Whose certificates, as the inventory names them: the subjects (common names) that are
    the holder's own, and the names and addresses (SANs) that no other host has. With
    `san_subjects`, a SAN match counts only for those subjects (a cluster's peer subject,
    which every member of the cluster shares)."""

    subjects: frozenset[str]
    sans: frozenset[str]
    san_subjects: frozenset[str] | None = None

    def holds(self, certificate: dict[str, Any]) -> bool:
        """Whether the CA issued `certificate` (as facts.ca_records gives it) to the holder."""
        if certificate["subject"] in self.subjects:
            return True
        if self.san_subjects is not None and certificate["subject"] not in self.san_subjects:
            return False
        return bool(self.sans & set(certificate["sans"]))


@operation()
def recorded_certificates_revoked(
    holder: Holder,
    *,
    authority: Authority,
    database: str,
    reason: str,
    code: str,
    now: float,
    issued_before: float | None = None,
) -> Commands:
    """
    Revoke every certificate the cert-manager's step-ca records as issued to `holder` that
    has not expired and is not revoked yet: each kind, every renewal and reissue, whatever
    the holder's host has in its files, and with that host down or gone. The records and the
    revocation are on the cert-manager (reached even when `--limit` leaves it out); the
    operation is shown under the host that runs it.

    + holder: whose certificates (from the inventory)
    + authority: the CA, and the cert-manager whose step-ca records and revokes
    + database: step-ca's database file (bbolt), read from a copy made with step-ca paused;
      with ca_ha=active-active, the Galera database's name
    + reason: why, recorded with each revocation
    + code: the RFC 5280 reason code (a number or a name such as `keyCompromise`)
    + now: the time expiry is judged at (seconds since the epoch)
    + issued_before: only certificates that started before this time (step-ca backdates a
      certificate by a minute): one issued later is left alone
    """
    manager = reached(host.state, authority, "to read the CA's records")
    records = (
        manager.fact(CARecords, source=database, lock=STEP_CA_PAUSE.lock, limit=STEP_CA_PAUSE.limit)
        if database.startswith("/")
        # Active-active: the records every CA shares, on the node of the cert-manager reached.
        else manager.fact(GaleraRecords, database=database)
    )
    if records is None:
        raise OperationError(
            f"step-ca's records at {database} on {manager.name} cannot be read: nothing revoked"
        )
    held = [
        c
        for c in records["issued"]
        if holder.holds(c)
        and c["not_after"] > now
        and (issued_before is None or c["not_before"] + BACKDATE < issued_before)
    ]
    due = sorted({c["serial"] for c in held} - records["revoked"])
    if not due:
        host.noop(f"{len(held)} recorded certificate(s) of the holder, all revoked at the CA")
        return
    yield RunTimeStep(_revoke, authority, due, reason, code)


def _revoke(
    state: State, node: Remote, authority: Authority, serials: list[int], reason: str, code: str
) -> bool:
    """Run time, on the cert-manager: revoke, and say so under it."""
    primary = reached(state, authority, "to revoke certificates")
    ok, out = primary.run(revoke_command(authority, serials, reason, code))
    if not ok:
        return node.fail(f"revoking on {primary.name} failed, nothing was removed: {out.stderr}")
    primary.log(f"revoked ({reason}): serial numbers {', '.join(map(str, serials))}")
    return True


CRL_CHECK = "etcd-pki-crl-check"


def crl_check_script(chain: str, path: str) -> str:
    """The CRL timer's check of a fetched list (signed by the CA, not older than `path`),
    installed as <bin_dir>/etcd-pki-crl-check."""
    return render("crl-check.sh.j2", chain=chain, current=path)


def crl_fetch(
    crl_url: str, root: str, path: str, work: str, user: str, bin_dir: str, first_ca: str = ""
) -> tuple[list[str], list[str]]:
    """The commands that fetch the CA's CRL into `work` and check its form, and those that
    then check it (signed by the CA, not older than the list in place: CRL_CHECK) and put
    it in place at `path` (DER), for etcd to read: the CRL timer's service runs the first as
    its account (`user`) and the others privileged, reading the fetched list as the account.
    `first_ca`: the prefix that fetches from the first of several CAs that answers
    (operations/every_ca.py)."""
    fetch = [
        first_ca
        + raw(
            "/usr/bin/curl -sf --max-time 20 --retry 2 --cacert {root} -o {work} {url}",
            root=root,
            work=work,
            url=crl_url,
        ),
        raw("/usr/bin/openssl crl -inform DER -in {work} -noout", work=work),
    ]
    place = [
        taken_as_account(user, work, f"{path}.new", check=f"{bin_dir}/{CRL_CHECK}"),
        raw("/bin/mv -f {new} {path}", new=f"{path}.new", path=path),
    ]
    return fetch, place


@operation()
def crl_current(path: str, *, crl_url: str, root: str, chain: str) -> Commands:
    """
    Keep this member's copy of the CA's certificate revocation list listing what the CA's
    lists (a timer refreshes it too; this runs at once, after a revocation or before etcd
    first reads it).

    + path: the copy etcd reads (DER)
    + crl_url: the CA's CRL (`<CA URL>/1.0/crl`)
    + root: the root certificate on this host, to read it over TLS
    + chain: the CA's intermediate and root on this host: the list must verify against it,
      and be no older than the copy in place

    A CA that does not answer leaves a copy in place as it is; without any copy the run
    stops (etcd refuses every connection while its CRL file is missing).
    """
    found = memo.get_fact(host, RevocationLists, path=path, crl_url=crl_url, root=root)
    command = script("crl-fetch.sh.j2", url=crl_url, root=root, chain=chain, path=path)
    if found["ca"] is None:
        if found["local"] is not None:
            host.noop(f"the CA's CRL cannot be read now: {path} stays as it is")
            return
        if not host.state.is_executing:
            # Planned before this run trusts the CA (or starts it): read again when it runs.
            yield command
            return
        raise OperationError(f"the CA's CRL at {crl_url} cannot be read, and {path} is missing")
    if found["local"] == found["ca"]:
        host.noop(f"{path} lists what the CA revoked")
        return
    yield command


CRL_UNIT = "etcd-pki-crl"
CRL_METRICS = "etcd-pki-crl-metrics"
CRL_METRICS_FILE = "etcd_pki_crl.prom"


def crl_metrics_script(metrics_dir: str, path: str) -> str:
    """The CRL timer's textfile-metrics helper (the last refresh's result, when the list in
    place was put there and issued), installed as <bin_dir>/etcd-pki-crl-metrics."""
    return render(f"{CRL_METRICS}.sh.j2", textfile_dir=metrics_dir, crl=path)


def crl_units(
    crl_url: str,
    root: str,
    path: str,
    user: str,
    bin_dir: str,
    *,
    metrics: bool = False,
    first_ca: str = "",
) -> dict[str, str]:
    """The CRL timer and its service (with `metrics`, writing the CRL's metrics after each
    refresh, failed or not): `{unit file name: text}`."""
    work = f"%t/{CRL_UNIT}/ca.crl"
    fetch, place = crl_fetch(crl_url, root, path, work, user, bin_dir, first_ca)
    service = render(
        f"{CRL_UNIT}.service.j2",
        user=user,
        unit=CRL_UNIT,
        fetch=fetch,
        place=place,
        metrics=f"{bin_dir}/{CRL_METRICS}" if metrics else None,
    )
    return {f"{CRL_UNIT}.service": service, f"{CRL_UNIT}.timer": render(f"{CRL_UNIT}.timer.j2")}


@operation()
def crl_metrics_written(metrics_dir: str) -> Commands:
    """
    The CRL's metrics written now when they are missing, by a refresh of the CRL timer's
    service (which writes them, whatever its result): alerts see a member's list from the
    first run, not from its timer's first run (within the hour).

    + metrics_dir: node-exporter's textfile directory
    """
    present = memo.get_fact(host, FindFiles, path=metrics_dir, maxdepth=1) or []
    if f"{metrics_dir}/{CRL_METRICS_FILE}" in present:
        host.noop("the CRL's metrics are written")
        return
    # A refresh that fails (the CA down) writes its failure: the run goes on.
    yield raw("systemctl start {unit} || true", unit=f"{CRL_UNIT}.service")
