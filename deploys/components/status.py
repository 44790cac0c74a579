"""The status report: per host, the CA, etcd and every certificate, and what needs attention.

`report_for_host` gathers one host's part (facts only: read-only); `status` prints each host's
part as text, or the whole run as one JSON document (`status_format=json`), and fails the
run when anything needs attention, so monitoring can act on the exit code.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from pyinfra import host, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import FindInFile

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.settings import Settings, cluster_views, load_settings
from etcd_step_pki.facts.ca import CAHealth, CAState
from etcd_step_pki.facts.certificates import NodeCertificates, parse_certificate
from etcd_step_pki.facts.etcd import EtcdCluster, cluster_healthy, member_status
from etcd_step_pki.facts.galera import GaleraStatus
from etcd_step_pki.facts.units import Units
from etcd_step_pki.operations import galera
from etcd_step_pki.operations.ca_probe import PROBE_FILE, PROBE_UNIT, PROBES_STALE_AFTER
from etcd_step_pki.operations.certificates import past_renewal_point
from etcd_step_pki.operations.durations import parse_duration

DAY = 86400.0


def certificate_rows(
    settings: Settings, found: dict[str, Any], units: dict[str, Any], now: float
) -> list[dict[str, Any]]:
    """One row a certificate: subject, SANs, issuer, days left, renewal due, timer, last run."""
    rows = []
    for item in settings.host_certificates:
        cert = (found["files"].get(item.crt) or {}).get("cert")
        timer = units["states"].get(f"{item.unit}.timer", {})
        service = units["states"].get(f"{item.unit}.service", {})
        row: dict[str, object] = {
            "name": item.subject,
            "kind": item.kind,
            "file": item.crt,
            "present": cert is not None,
            "timer": timer.get("ActiveState", "missing"),
            "timer_enabled": timer.get("UnitFileState", "missing"),
            "last_renewal": _last_result(service),
        }
        if cert is not None:
            row.update(
                subject=cert["subject"],
                sans=cert["sans"],
                issuer=cert["issuer"],
                serial=cert["serial"],
                not_after=int(cert["not_after"]),
                days_left=round((cert["not_after"] - now) / DAY, 2),
                renewal_due=past_renewal_point(cert, settings.renewal.expires_in, now),
            )
        rows.append(row)
    return rows


def _last_result(service: dict[str, Any]) -> str:
    """The renewal service's last run, in words: never, success, not-due, or failed."""
    result = service.get("Result", "")
    if result == "exec-condition":
        return "not-due"
    if result == "success":
        return "success" if service.get("ExecMainExitTimestamp") else "never"
    return "failed" if result else "unknown"


def attention(report: dict[str, Any], renewal_enabled: bool) -> list[str]:
    """What in one host's report needs an operator."""
    name = report["host"]
    found = []
    ca = report.get("ca")
    if ca is not None:
        if not ca["healthy"]:
            found.append(f"{name}: step-ca is unhealthy ({ca['detail'][:80]})")
        for kind in ("root", "intermediate"):
            days = ca.get(f"{kind}_days_left")
            if days is not None and days < ca["expiry_window_days"]:
                found.append(f"{name}: the {kind} CA certificate expires in {days:.0f} days")
    probe = report.get("ca_probe")
    if probe is not None:
        if probe["timer"] != "active":
            found.append(f"{name}: the CA probe's timer is {probe['timer']}")
        found += [f"{name}: does not reach the CA {ca}" for ca, up in probe["up"].items() if not up]
        age = probe["seconds_since"]
        if age is None or age > parse_duration(PROBES_STALE_AFTER):
            ran = "has never run" if age is None else f"last ran {age} s ago"
            found.append(f"{name}: the CA probe {ran}")
    found += database_attention(name, report.get("ca_database"))
    for cluster, etcd in report.get("etcd_clusters", {}).items():
        if not etcd["healthy"]:
            found.append(
                f"{name}: etcd-{cluster} is unhealthy ({etcd.get('error') or etcd['health']})"
            )
    for row in report.get("certificates", []):
        label = f"{_who(name, row)} certificate"
        if not row["present"]:
            found.append(f"{label} is missing")
            continue
        if row["renewal_due"]:
            found.append(f"{label} is past its renewal point ({row['days_left']} days left)")
        if row["last_renewal"] == "failed":
            found.append(f"{label}: the last renewal failed")
        if renewal_enabled and row["timer"] != "active":
            found.append(f"{label}: the renewal timer is {row['timer']}")
    return found


def database_part(found: dict[str, Any], voters: int) -> dict[str, Any]:
    """A Galera node of the CA's database (active-active): what MariaDB says of its place."""
    status = found["status"]
    size = status.get("wsrep_cluster_size", "0")
    return {
        "running": found["running"],
        "component": status.get("wsrep_cluster_status", "none"),
        "state": status.get("wsrep_local_state_comment", "none"),
        "size": int(size) if size.isdigit() else 0,
        "voters": voters,
    }


def database_attention(name: str, part: dict[str, Any] | None) -> list[str]:
    if part is None:
        return []
    if not part["running"]:
        return [f"{name}: the CA's database node (MariaDB) is not running"]
    found = []
    if part["component"] != "Primary":
        found.append(f"{name}: the CA's database node is {part['component']}, not Primary")
    if part["state"] != "Synced":
        found.append(f"{name}: the CA's database node is {part['state']}, not Synced")
    if part["size"] < part["voters"]:
        found.append(
            f"{name}: the CA's database node sees {part['size']} of {part['voters']} voters"
        )
    return found


# The lines of the CA probe's metrics that say what it found (operations/ca_probe.py).
PROBED = "^etcd_pki_ca_probe_(up|timestamp_seconds)"


def probe_part(lines: list[str] | None, timer: str, now: float) -> dict[str, Any]:
    """What this host's CA probe last found: each CA reached or not, and how long ago."""
    up: dict[str, bool] = {}
    when = None
    for line in lines or []:
        match = re.fullmatch(r'etcd_pki_ca_probe_up\{host="[^"]*",ca="([^"]*)"\} ([01])', line)
        if match:
            up[match.group(1)] = match.group(2) == "1"
        stamp = re.fullmatch(r"etcd_pki_ca_probe_timestamp_seconds\{[^}]*\} (\d+)", line)
        if stamp:
            when = int(stamp.group(1))
    since = None if when is None else max(int(now) - when, 0)
    return {"timer": timer, "up": up, "seconds_since": since}


def _ca_part(settings: Settings, now: float, window: int) -> dict[str, Any]:
    health = host.get_fact(
        CAHealth,
        ca_name=urlsplit(settings.ca_url).hostname,
        port=settings.ca_port,
        root=f"{settings.ca_path}/certs/root_ca.crt",
    )
    found = host.get_fact(CAState, path=settings.ca_path)
    part: dict[str, object] = {
        "healthy": health["ok"],
        "detail": health["detail"],
        "url": settings.ca_url,
        "expiry_window_days": window,
    }
    for kind in ("root", "intermediate"):
        if found[kind]:
            cert = parse_certificate(found[kind], now=now)
            part[f"{kind}_not_after"] = int(cert["not_after"])
            part[f"{kind}_days_left"] = round((cert["not_after"] - now) / DAY, 1)
    return part


def _etcd_part(settings: Settings) -> dict[str, Any]:
    view = host.get_fact(EtcdCluster, etcdctl_args=arguments.etcdctl(settings).args)
    names = {m["id"]: m["name"] for m in view["members"]}
    own = member_status(view, settings.node_name)
    return {
        "healthy": cluster_healthy(view),
        "members": [m["name"] for m in view["members"]],
        "health": {h["endpoint"]: h["healthy"] for h in view["health"]},
        "leader": names.get(own["leader"], own["leader"]) if own else None,
        "revision": own["revision"] if own else None,
        "db_size": own["db_size"] if own else None,
        "version": own["version"] if own else None,
        "error": view["error"],
    }


def report_for_host(settings: Settings, now: float, window: int) -> dict[str, Any]:
    """One host's part of the report (facts only)."""
    report: dict[str, object] = {"host": settings.host, "groups": list(settings.groups)}
    if settings.is_primary or (settings.active_active and settings.is_cert_manager):
        report["ca"] = _ca_part(settings, now, window)
    if settings.galera_role == "node" and settings.galera is not None:
        found = host.get_fact(GaleraStatus, grastate=galera.GRASTATE, account=galera.account("-"))
        report["ca_database"] = database_part(found, len(settings.galera.members))
    views = [view for view in cluster_views() if view.is_member]
    if views:
        # Each cluster the host is a member of; "etcd" is the first's, as with one cluster.
        parts = {view.cluster: _etcd_part(view) for view in views}
        report["etcd_clusters"] = parts
        report["etcd"] = parts[views[0].cluster]
    if settings.holds_certificates:
        items = settings.host_certificates
        found = host.get_fact(
            NodeCertificates,
            ssl_dir=settings.ssl_dir,
            step_path=settings.step_path,
            pairs=[(c.crt, c.key) for c in items],
        )
        names = [f"{c.unit}.{kind}" for c in items for kind in ("service", "timer")]
        metrics_dir = settings.renewal.metrics_dir
        if metrics_dir is not None:
            names.append(f"{PROBE_UNIT}.timer")
        units = host.get_fact(Units, units=names)
        report["certificates"] = certificate_rows(settings, found, units, now)
        if metrics_dir is not None:
            probe_file = f"{metrics_dir}/{PROBE_FILE}"
            lines = host.get_fact(FindInFile, path=probe_file, pattern=PROBED, extended_regex=True)
            timer = units["states"].get(f"{PROBE_UNIT}.timer", {})
            report["ca_probe"] = probe_part(lines, timer.get("ActiveState", "missing"), now)
    report["attention"] = attention(report, settings.renewal.enabled)
    return report


def format_text(report: dict[str, Any]) -> str:
    name = report["host"]
    lines = []
    ca = report.get("ca")
    if ca is not None:
        state_word = "healthy" if ca["healthy"] else "UNHEALTHY"
        lines.append(
            f"{name} step-ca: {state_word} root-days-left={ca.get('root_days_left')}"
            f" intermediate-days-left={ca.get('intermediate_days_left')}"
        )
    database = report.get("ca_database")
    if database is not None:
        lines.append(
            f"{name} CA database: {database['component']} {database['state']}"
            f" voters={database['size']}/{database['voters']}"
        )
    for cluster, etcd in report.get("etcd_clusters", {}).items():
        healthy = sum(1 for ok in etcd["health"].values() if ok)
        word = "healthy" if etcd["healthy"] else "UNHEALTHY"
        lines.append(
            f"{name} etcd-{cluster}: {word} members={healthy}/{len(etcd['members'])}"
            f" leader={etcd['leader']} revision={etcd['revision']} db-size={etcd['db_size']}"
            f" version={etcd['version']}"
        )
    probe = report.get("ca_probe")
    if probe is not None:
        reached = " ".join(f"{ca}={'up' if up else 'DOWN'}" for ca, up in probe["up"].items())
        lines.append(
            f"{name} CA probe: {reached or 'no result'} timer={probe['timer']}"
            f" seconds-since={probe['seconds_since']}"
        )
    for row in report.get("certificates", []):
        if not row["present"]:
            lines.append(f"{_who(name, row)}: MISSING ({row['file']})")
            continue
        due = "DUE" if row["renewal_due"] else "not due"
        lines.append(
            f"{_who(name, row)}: CN={row['subject']} issuer={row['issuer']}"
            f" days-left={row['days_left']:.1f} renewal={due}"
            f" timer={row['timer']}/{row['timer_enabled']}"
            f" last-renewal={_shout(row['last_renewal'])}"
        )
        lines.append(f"    SANs: {', '.join(row['sans'])}")
    lines += [f"{name} ATTENTION: {item}" for item in report["attention"]]
    return "\n".join(lines)


def _who(name: str, row: dict[str, Any]) -> str:
    """`<host> <kind>`, with the certificate's name between when it is not the host's (a
    host in several clusters)."""
    if row["name"] in (name, name.split(".")[0]):
        return f"{name} {row['kind']}"
    return f"{name} {row['name']} {row['kind']}"


def _shout(result: str) -> str:
    return "FAILED" if result == "failed" else result


_collected: dict[int, list[dict[str, Any]]] = {}


def status() -> None:
    """Print this host's report (text) or, once every host is read, the run's JSON document;
    then fail the run if anything needs attention."""
    settings = load_settings()
    output = settings.run.status_format or "text"
    window = settings.run.status_ca_expiry_days
    if window is None:
        window = 180
    report = report_for_host(settings, time.time(), window)
    reports = _collected.setdefault(id(state), [])
    reports.append(report)
    if output == "text":
        print(format_text(report), flush=True)
    # Hosts are read in parallel: the one that completes the set reports for the run.
    if len(reports) < len(state.inventory.get_active_hosts()):
        return
    items = [item for r in reports for item in r["attention"]]
    if output == "json":
        document = {"generated": int(time.time()), "ok": not items, "attention": items,
                    "hosts": reports}  # fmt: skip
        print(json.dumps(document), flush=True)
    if items:
        raise PyinfraError(f"{len(items)} item(s) need attention: " + "; ".join(items))
