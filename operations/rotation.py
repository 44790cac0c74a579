"""Rotation of the intermediate CA: a new intermediate key and certificate, signed by the root.

The root stays: every node keeps trusting the same root, so leaves of the old and of the new
intermediate verify alike while the leaves are issued again. The old intermediate's files are
kept beside the new ones (`*.replaced-<UTC time>`), nothing is deleted.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca import PASSWORD
from etcd_step_pki.operations.certificates import ca_material_changed
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.root_key import ROOT_KEY, OfflineRoot, offline_root_key
from etcd_step_pki.operations.roots import root_fingerprint
from etcd_step_pki.templates.scripts import script

ROTATION_REASON = "the intermediate CA is rotated in this run"


def issued_at(pem: str) -> float:
    """When a certificate's validity starts, in seconds since the epoch."""
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_before_utc.timestamp()


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@operation()
def intermediate_rotated(
    *,
    path: str,
    issued_before: float,
    duration: str,
    now: float,
    bin_dir: str = "/opt/bin",
    offline_root: OfflineRoot | None = None,
) -> Commands:
    """
    Replace the intermediate CA when it was issued before `issued_before`.

    + path: the CA's `$STEPPATH`
    + issued_before: seconds since the epoch; a later intermediate is left as it is
    + duration: validity of the new intermediate, cut to the root's end
    + now: the time the new validity is counted from
    + bin_dir: where `step` is
    + offline_root: where the root key is when it is on no cert-manager (operations/root_key.py)

    step-ca has to be restarted afterwards to sign with the new intermediate.
    """
    found = memo.get_fact(host, CAState, path=path)
    if not found["root"] or not found["intermediate"]:
        raise OperationError(f"no CA at {path} on {host.name}: nothing to rotate")
    current = x509.load_pem_x509_certificate(found["intermediate"].encode())
    started = current.not_valid_before_utc.timestamp()
    if started >= issued_before:
        host.noop(
            f"the intermediate CA was issued at {_utc(started)}, not before {_utc(issued_before)}"
        )
        return
    root = x509.load_pem_x509_certificate(found["root"].encode())
    not_after = min(now + parse_duration(duration), root.not_valid_after_utc.timestamp())
    if not_after <= now:
        raise OperationError(f"the root CA at {path} has expired: rotate the root first")
    names = current.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    offline = f"{path}/{ROOT_KEY}" not in found["files"]
    # No password in the script: `step` reads the password file (ca-intermediate-rotate.sh.j2).
    command = script(
        "ca-intermediate-rotate.sh.j2",
        step_path=path,
        step=f"{bin_dir}/step",
        subject=str(names[0].value) if names else "Intermediate CA",
        password=PASSWORD,
        not_after=_utc(not_after),
        root_key_offline=offline,
    )
    if offline:
        secret = offline_root_key(offline_root, root_fingerprint(found["root"]), path)
        yield RunTimeStep(_rotated_with, command, secret)
    else:
        yield command
    # The nodes' certificates and trust, later in the run, follow the new intermediate.
    yield RunTimeStep(ca_material_changed)


def _rotated_with(state: State, remote: Remote, command: StringCommand, secret: str) -> bool:
    """Run time: the rotation, the root key and the key that decrypts it on standard input."""
    del state
    ok, out = remote.run(command, stdin=secret)
    return ok or remote.fail(f"rotating the intermediate failed: {out.stderr}")
