"""Renewal units (a systemd service and timer per certificate) and renewing now through them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import OperationError, operation
from pyinfra.facts.files import FindFiles, Sha256File

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.certificates import NodeCertificates
from etcd_step_pki.facts.shell import raw
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.certificates import (
    BACKDATE,
    DEFAULT_RENEWAL_PERCENT,
    Certificate,
    StepNode,
)
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.every_ca import at_first_ca
from etcd_step_pki.operations.units import taken_as_account
from etcd_step_pki.templates import render
from etcd_step_pki.templates.scripts import script as run_script

METRICS_SCRIPT = "etcd-pki-renewal-metrics"


@dataclass(frozen=True)
class RenewalSchedule:
    """When the renewal timers run and when a certificate is due; `metrics_dir` is a
    node-exporter textfile directory (None: no metrics)."""

    on_calendar: str = "*-*-* 03:00:00"
    randomized_delay: str = "1h"
    expires_in: str | None = None
    metrics_dir: str | None = None


def unit_files(
    certificates: Sequence[Certificate],
    node: StepNode,
    ca_url: str | Sequence[str],
    schedule: RenewalSchedule,
) -> dict[str, str]:
    """`{unit file name: text}` of the renewal service and timer of every certificate; with
    several CA URLs, each renewal reaches the first CA that answers."""
    files = {}
    for item in certificates:
        values = _values(item, node, ca_url, schedule)
        files[f"{item.unit}.service"] = render("step-renew.service.j2", **values)
        files[f"{item.unit}.timer"] = render("step-renew.timer.j2", **values)
    return files


def timers(certificates: Sequence[Certificate]) -> list[str]:
    """The renewal timers of `certificates`: what runs (the services are started by them)."""
    return [f"{item.unit}.timer" for item in certificates]


def metrics_script(node: StepNode, schedule: RenewalSchedule) -> str:
    """The textfile-metrics helper the renewal units call when metrics are on."""
    window = schedule.expires_in
    return render(
        "etcd-pki-renewal-metrics.sh.j2",
        textfile_dir=schedule.metrics_dir,
        step_path=node.step_path,
        bin_dir=node.bin_dir,
        root=node.root_file,
        expires_in=window,
        due_window=None if window is None or window.endswith("%") else int(parse_duration(window)),
        due_percent=DEFAULT_RENEWAL_PERCENT if window is None else window.rstrip("%"),
    )


def _values(
    item: Certificate, node: StepNode, ca_url: str | Sequence[str], schedule: RenewalSchedule
) -> dict[str, object]:
    first_ca, url = at_first_ca(node.bin_dir, ca_url)
    expires = f" --expires-in {schedule.expires_in}" if schedule.expires_in else ""
    helper = f"{node.bin_dir}/{METRICS_SCRIPT}"
    args = f"{_metrics_name(item)} {item.kind} {item.crt}"
    metrics = schedule.metrics_dir is not None
    return {
        "condition": (
            f"{helper} check {args}"
            if metrics
            else f"{node.step} certificate needs-renewal {item.crt}{expires}"
        ),
        "metrics_record": f"{helper} record {args}" if metrics else "",
        "take": taken_as_account(
            node.owner,
            f"%t/{item.unit}/new.crt",
            f"{item.pair}/crt.new",
            check="/usr/bin/openssl x509 -noout -in",
            own=True,
        ),
        "kind": item.kind,
        "reload": item.reload,
        "unit": item.unit,
        "subject": item.subject,
        "crt": item.crt,
        "key": item.key,
        "pair": item.pair,
        "user": node.owner,
        "bin_dir": node.bin_dir,
        "step_path": node.step_path,
        "ca_url": url,
        "first_ca": first_ca,
        "root": node.root_file,
        "on_calendar": schedule.on_calendar,
        "randomized_delay": schedule.randomized_delay,
    }


@operation()
def renewed_now(
    certificates: Sequence[Certificate], *, node: StepNode, issued_before: float
) -> Commands:
    """
    Renew now, through their renewal units, the certificates issued before a point in time.

    + certificates: the certificates to consider (each has its renewal units)
    + node: where the certificates are on this host
    + issued_before: certificates that started before this time (seconds) are renewed

    The unit runs as on its timer (mTLS renewal, owner and mode fixed, metrics) with its
    renewal-due condition lifted by a runtime drop-in for this one start. A certificate
    renewed by an earlier run started after `issued_before`: a second run changes nothing.
    """
    items = list(certificates)
    found = memo.get_fact(
        host,
        NodeCertificates,
        ssl_dir=node.ssl_dir,
        step_path=node.step_path,
        pairs=[(c.crt, c.key) for c in items],
    )
    due = []
    for item in items:
        cert = (found["files"].get(item.crt) or {}).get("cert")
        if cert is None:
            raise OperationError(f"{item.crt} is missing: run deploys/certs.py to issue it")
        if cert["not_before"] + BACKDATE < issued_before:
            due.append(item)
    if not due:
        host.noop(f"{len(items)} certificate(s) issued after the given time already")
        return
    # The renewal-due condition is lifted for every due unit at once: one reload to apply
    # the drop-ins, one to drop them, whatever the number of certificates (renewal-now.sh.j2).
    yield run_script("renewal-now.sh.j2", units=[item.unit for item in due])


@operation()
def metrics_written(
    certificates: Sequence[Certificate], *, node: StepNode, schedule: RenewalSchedule
) -> Commands:
    """
    Each certificate's textfile metrics written now where they are missing, or for all when
    the metrics helper is about to change: alerts see a certificate from the first run, not
    from its timer's first run (a day later).

    + certificates: the host's certificates
    + node: where they are on this host
    + schedule: the renewal schedule, with its `metrics_dir`
    """
    if schedule.metrics_dir is None:
        return
    helper = f"{node.bin_dir}/{METRICS_SCRIPT}"
    wanted = hashlib.sha256(metrics_script(node, schedule).encode()).hexdigest()
    changed = memo.get_fact(host, Sha256File, path=helper) != wanted
    present = set(memo.get_fact(host, FindFiles, path=schedule.metrics_dir, maxdepth=1) or [])
    due = [
        item
        for item in certificates
        if changed or f"{schedule.metrics_dir}/etcd_pki_{_metrics_name(item)}.prom" not in present
    ]
    if not due:
        host.noop("every certificate's metrics are written")
        return
    yield " && ".join(
        raw("{helper} write {name} {kind} {crt}", helper=helper, kind=item.kind, crt=item.crt,
            name=_metrics_name(item))
        for item in due
    )  # fmt: skip


def _metrics_name(item: Certificate) -> str:
    """The helper's name of a certificate: its file is `etcd_pki_<name>.prom`."""
    return f"{item.subject}-{item.kind}"
