"""The facts of a host read at once (facts/prefetch.py)."""

from __future__ import annotations

from collections.abc import Callable

from etcd_step_pki.facts.paths import ExistingPaths, FileText
from etcd_step_pki.templates import render


def batch() -> str:
    commands = [
        ExistingPaths().command(["/etc/etcd/ssl/ca.crl", "/var/lib/etcd"]).get_raw_value(),
        FileText().command("/var/lib/etcd-step-pki/ca-restored").get_raw_value(),
    ]
    # With the run's lock taken first, as the first batch of a run that changes hosts.
    return render(
        "facts/batch.sh.j2",
        mark="0123456789abcdef",
        commands=commands,
        machine="0" * 32,
        holder="root@controller since 2026-12-07T10:00:00Z (run 0123abcd)",
    )


SAMPLES: dict[str, Callable[[], str]] = {"facts/batch.sh.j2": batch}
