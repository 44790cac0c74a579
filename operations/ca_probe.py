"""The CA's health asked continuously from every host with certificates, as textfile metrics,
and the alerts on them.

The daily renewal check already says whether step-ca answered (`etcd_pki_ca_up`), once a day.
With metrics on (`metrics_textfile_dir`), a timer on each host also asks every CA's `/health`
every `ca_probe_interval`: a CA that dies is seen within minutes, from every host, and a host
cut off from a CA the others reach is told apart from a CA that is down.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from etcd_step_pki.facts.shell import raw
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.units import taken_as_account
from etcd_step_pki.templates import render

PROBE_UNIT = "etcd-pki-ca-probe"
PROBE_FILE = "etcd_pki_ca_probe.prom"
# A probe waits this long for a CA: less than the shortest interval, so probes never overlap.
PROBE_TIMEOUT = 5
# Probes silent this long have stopped: beyond any interval an operator would choose.
PROBES_STALE_AFTER = "10m"
_HOST = "[A-Za-z0-9._-]*"


def _ere(text: str) -> str:
    """`text` as a POSIX extended regular expression that matches it alone."""
    return re.sub(r"([.\[\](){}*+?|^$\\])", r"\\\1", text)


def probe_pattern(urls: Sequence[str]) -> str:
    """Every line the probe writes, and nothing else: its metric names, the CAs it asks."""
    ca = "(" + "|".join(_ere(url) for url in urls) + ")"
    labels = f'\\{{host="{_HOST}",ca="{ca}"\\}}'
    return (
        "^(# (HELP|TYPE) etcd_pki_ca_probe_(up|duration_seconds|timestamp_seconds) .*"
        f"|etcd_pki_ca_probe_up{labels} [01]"
        f"|etcd_pki_ca_probe_duration_seconds{labels} [0-9]+\\.[0-9]{{3}}"
        f'|etcd_pki_ca_probe_timestamp_seconds\\{{host="{_HOST}"\\}} [0-9]+)$'
    )


def probe_script(urls: Sequence[str], root: str) -> str:
    """The probe, installed as <bin_dir>/etcd-pki-ca-probe."""
    return render(
        f"{PROBE_UNIT}.sh.j2",
        urls=list(urls),
        root=root,
        timeout=PROBE_TIMEOUT,
        pattern=probe_pattern(urls),
    )


def probe_units(user: str, bin_dir: str, metrics_dir: str, interval: str) -> dict[str, str]:
    """The probe's timer and service: `{unit file name: text}`. The probe runs as `user`;
    root takes its metrics into `metrics_dir`, checked, and renames them into place (node
    exporter reads `*.prom` only, never a half-written file)."""
    return timed_metrics_units(PROBE_UNIT, PROBE_FILE, "ca.prom", user, bin_dir, metrics_dir,
                               interval)  # fmt: skip


def timed_metrics_units(
    unit: str, prom: str, written: str, user: str, bin_dir: str, metrics_dir: str, interval: str
) -> dict[str, str]:
    """The timer and service (`<unit>.timer.j2`, `<unit>.service.j2`) of a script
    `<bin_dir>/<unit>` that writes textfile metrics as `user` into its runtime directory
    (`written`), which root takes, checked by the script's `check`, as `prom` in
    `metrics_dir`: `{unit file name: text}`."""
    script = f"{bin_dir}/{unit}"
    new = f"{metrics_dir}/.{prom}.new"
    take = taken_as_account(user, f"%t/{unit}/{written}", new, check=f"{script} check")
    service = render(
        f"{unit}.service.j2",
        user=user,
        unit=unit,
        probe=script,
        take=take,
        place=raw("/bin/mv -f {new} {target}", new=new, target=f"{metrics_dir}/{prom}"),
    )
    timer = render(f"{unit}.timer.j2", interval=int(parse_duration(interval)))
    return {f"{unit}.service": service, f"{unit}.timer": timer}


def probe_rules(down_after: str, rule: Any) -> list[dict[str, Any]]:
    """The alerts on the probes' metrics (`rule` makes one, as operations/monitoring.py
    does): a CA no host reaches, a host that does not reach a CA the others reach, probes
    that stopped."""
    stale = int(parse_duration(PROBES_STALE_AFTER))
    return [
        rule(
            "EtcdPkiCaUnreachable",
            "max by (ca) (etcd_pki_ca_probe_up) == 0",
            "critical",
            "no host reaches the CA {{ $labels.ca }}: no certificate can be issued or renewed"
            " (deploys/failover.py moves the CA to a backup cert-manager)",
            down_after,
        ),
        rule(
            "EtcdPkiCaUnreachableFromHost",
            "etcd_pki_ca_probe_up == 0 and on (ca) (max by (ca) (etcd_pki_ca_probe_up) == 1)",
            "warning",
            "{{ $labels.host }} does not reach the CA {{ $labels.ca }}, which other hosts"
            " reach: its renewals will fail (network, firewall, name resolution?)",
            down_after,
        ),
        rule(
            "EtcdPkiCaProbesStopped",
            f"time() - etcd_pki_ca_probe_timestamp_seconds > {stale}",
            "warning",
            f"no CA probe of {{{{ $labels.host }}}} has run for {PROBES_STALE_AFTER}: is its"
            f" timer ({PROBE_UNIT}.timer) on?",
        ),
    ]
