"""Disaster-recovery drills: the CA restored from its replica or an S3 backup into a throwaway
directory on a drill host, served there by a step-ca of its own on another port, proven to
issue and renew (a new certificate chained to the live root; a copy of a live certificate),
timed, and removed. Nothing live is written: the live CA state is only read, and the live
certificates only copied.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAFiles
from etcd_step_pki.facts.paths import FileText
from etcd_step_pki.facts.shell import raw, replace_file
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca_backup import WORK
from etcd_step_pki.operations.ca_restore import Fetched, staged
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.revocation import revoke_command
from etcd_step_pki.operations.tokens import Authority, reached
from etcd_step_pki.templates.scripts import script

DRILL_DIR = "/run/etcd-step-pki/drill"  # tmpfs: the CA's keys never reach a disk here
UNIT = "etcd-pki-drill"
RECORD = "/var/lib/etcd-step-pki/last-drill.json"


@dataclass(frozen=True)
class DrillPlan:
    """Where the drill runs on its host, and what it proves."""

    ca_path: str  # the live CA state on this host: the replica's source, only read
    port: int  # the drill's step-ca, on 127.0.0.1
    bin_dir: str
    provisioner: str
    live_root: str  # the root this host trusts: the drill's certificates must chain to it
    expect_root: str  # its SHA-256 fingerprint (the pinned root)
    live_certificate: tuple[str, str]  # a live certificate and key of this host, copied
    # The live CA, which revokes every certificate the drill made (signed by the live
    # intermediate, unknown to the live CA's records); None: nothing revoked.
    authority: Authority | None = None

    @property
    def step(self) -> str:
        return f"{self.bin_dir}/step"


@operation()
def drilled(
    plan: DrillPlan, *, source: str, backup: Fetched | None = None, before: float | None = None
) -> Commands:
    """
    A DR drill on this host, unless one succeeded here after `before`.

    + plan: where the drill runs and what it proves
    + source: `replica` (this host's copy of the CA state) or `s3://bucket/key`
    + backup: the fetched S3 backup (with `source` an S3 object)
    + before: a time (seconds); None: drill now, whatever the last drill was
    """
    last = _last(memo.get_fact(host, FileText, path=RECORD))
    finished = last.get("finished")
    if before is not None and isinstance(finished, int | float) and finished >= before:
        host.noop(f"a drill succeeded here at {last.get('finished_at')}, after the given time")
        return
    if backup is None and not memo.get_fact(host, CAFiles, path=plan.ca_path):
        raise OperationError(
            f"no replicated CA state at {plan.ca_path} on {host.name}: run deploys/replicate_ca.py,"
            " or drill from S3 (--data drill_from=s3); nothing was changed"
        )
    yield RunTimeStep(_drill, plan, source, backup)


def _revoked_live(state: State, authority: Authority, serials: list[int], source: str) -> bool:
    """Run time: the drill's certificates revoked at the live CA (which never recorded them,
    and lists them in its CRL from now on)."""
    primary = reached(state, authority, "to revoke the drill's certificates")
    reason = f"made by a DR drill from {source}"
    ok, out = primary.run(revoke_command(authority, serials, reason, "cessationOfOperation"))
    if not ok:
        return primary.fail(f"revoking the drill's certificates failed: {out.stderr}")
    primary.log(f"revoked ({reason}): serial numbers {', '.join(map(str, serials))}")
    return True


def _last(text: str | None) -> dict[str, object]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def drill_script(plan: DrillPlan, encryption: str | None) -> StringCommand:
    """The drill's script: from the replica (`encryption` None), or from the staged backup
    encrypted with `encryption` (gpg, kms)."""
    return script(
        "ca-drill.sh.j2",
        source="replica" if encryption is None else "backup",
        encryption=encryption or "",
        work=WORK,
        dir=DRILL_DIR,
        unit=UNIT,
        ca_path=plan.ca_path,
        port=plan.port,
        step=plan.step,
        step_ca=f"{plan.bin_dir}/step-ca",
        provisioner=plan.provisioner,
        live_root=plan.live_root,
        live_crt=plan.live_certificate[0],
        live_key=plan.live_certificate[1],
        expect_root=plan.expect_root,
    )


def _drill(
    state: State, host: Remote, plan: DrillPlan, source: str, backup: Fetched | None
) -> bool:
    """Run time: the drill in one shell (it cleans up after itself however it ends), its
    time to a working CA logged and recorded."""
    started = time.monotonic()
    secret = None
    if backup is not None:
        secret = staged(host, backup)
        if secret is None:
            return False
    command = drill_script(plan, None if backup is None else backup.encryption)
    staging = time.monotonic() - started
    ok, out = host.run(command, stdin=secret)
    if not ok:
        return host.fail(
            f"the drill from {source} failed (nothing live was touched; its files are removed):"
            f" {out.stderr}"
        )
    ready = next(
        (int(line.split()[1]) for line in out.stdout_lines if line.startswith("ready ")), None
    )
    if ready is None or "proven" not in out.stdout_lines:
        return host.fail(f"the drill from {source} ended without its proofs: {out.stdout}")
    minted = [int(line.split()[1], 16) for line in out.stdout_lines if line.startswith("minted ")]
    if plan.authority is not None and not _revoked_live(state, plan.authority, minted, source):
        return False
    seconds = round(staging + ready / 1000, 1)
    host.log(
        f"DR drill from {source}: a restored CA issued, renewed and renewed a copy of "
        f"{plan.live_certificate[0]}; working {seconds} s after the restore began"
    )
    finished = time.time()
    record = {
        "finished": finished,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "source": source,
        "seconds_to_working_ca": seconds,
    }
    directory = RECORD.rsplit("/", 1)[0]
    text = json.dumps(record) + "\n"
    ok, out = host.run(
        raw("install -d -m 0700 {d}", d=directory) + " && " + replace_file(RECORD, text, "0600")
    )
    return ok or host.fail(f"recording the drill failed: {out.stderr}")
