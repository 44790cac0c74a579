"""The status report: per host and certificate, what it is and whether it needs attention."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from pyinfra import host

from deploys.settings import Settings, load_settings
from facts.ca import CAHealth
from facts.certificates import NodeCertificates
from facts.etcd import EtcdCluster, cluster_healthy
from facts.units import Units
from operations.certificates import past_renewal_point
from operations.etcd import etcdctl_for

DAY = 86400.0


def certificate_rows(settings: Settings, found: dict, units: dict, now: float) -> list[dict]:
    """One row a certificate: subject, SANs, issuer, days left, renewal due, timer, last run."""
    rows = []
    for item in settings.certificates:
        cert = (found["files"].get(item.crt) or {}).get("cert")
        timer = units["states"].get(f"{item.unit}.timer", {})
        service = units["states"].get(f"{item.unit}.service", {})
        row: dict[str, object] = {
            "host": settings.host,
            "kind": item.kind,
            "file": item.crt,
            "present": cert is not None,
            "timer": timer.get("ActiveState", "missing"),
            "timer_enabled": timer.get("UnitFileState", "missing"),
            "last_result": _last_result(service),
        }
        if cert is not None:
            row.update(
                subject=cert["subject"],
                sans=cert["sans"],
                issuer=cert["issuer"],
                serial=cert["serial"],
                days_left=round((cert["not_after"] - now) / DAY, 2),
                renewal_due=past_renewal_point(cert, settings.renewal.expires_in, now),
            )
        rows.append(row)
    return rows


def _last_result(service: dict) -> str:
    """The renewal service's last run, in words: never, success, not due, or FAILED."""
    result = service.get("Result", "")
    if result == "exec-condition":
        return "not-due"
    if result == "success":
        return "success" if service.get("ExecMainExitTimestamp") else "never"
    if not result:
        return "unknown"
    return "FAILED"


def format_rows(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if not row["present"]:
            lines.append(f"{row['host']} {row['kind']}: MISSING ({row['file']})")
            continue
        due = "DUE" if row["renewal_due"] else "not due"
        last = row["last_result"]
        lines.append(
            f"{row['host']} {row['kind']}: CN={row['subject']} issuer={row['issuer']}"
            f" days-left={row['days_left']:.1f} renewal={due}"
            f" timer={row['timer']}/{row['timer_enabled']} last-renewal={last}"
        )
        lines.append(f"    SANs: {', '.join(row['sans'])}")
    return "\n".join(lines)


def format_etcd(name: str, view: dict) -> str:
    """One line: the cluster as this member sees it."""
    if view["error"] and not view["members"]:
        return f"{name} etcd: UNREACHABLE ({view['error']})"
    healthy = sum(1 for h in view["health"] if h["healthy"])
    names = {m["id"]: m["name"] for m in view["members"]}
    mine = next((s for s in view["status"] if s["endpoint"].find(":2379") > 0), None)
    state = "healthy" if cluster_healthy(view) else "UNHEALTHY"
    line = f"{name} etcd: {state} members={healthy}/{len(view['members'])}"
    if mine:
        line += (
            f" leader={names.get(mine['leader'], mine['leader'])} revision={mine['revision']}"
            f" db-size={mine['db_size']} version={mine['version']}"
        )
    return line


def status_report() -> str:
    """The report of the current host (read-only: facts only, no operation)."""
    settings = load_settings()
    now = time.time()
    parts = []
    if settings.is_primary:
        health = host.get_fact(
            CAHealth,
            ca_name=urlsplit(settings.ca_url).hostname,
            port=settings.ca_port,
            root=f"{settings.ca_path}/certs/root_ca.crt",
        )
        parts.append(f"{settings.host} step-ca: {'healthy' if health['ok'] else 'UNHEALTHY'}")
    if settings.is_member:
        view = host.get_fact(EtcdCluster, etcdctl_args=etcdctl_for(settings))
        parts.append(format_etcd(settings.host, view))
    if settings.needs_certificates:
        items = settings.certificates
        found = host.get_fact(
            NodeCertificates,
            ssl_dir=settings.ssl_dir,
            step_path=settings.step_path,
            pairs=[(c.crt, c.key) for c in items],
        )
        names = [f"{c.unit}.{kind}" for c in items for kind in ("service", "timer")]
        units = host.get_fact(Units, units=names)
        parts.append(format_rows(certificate_rows(settings, found, units, now)))
    return "\n".join(parts)
