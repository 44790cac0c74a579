"""The CA's issuance policy: each cluster's provisioners allow that cluster's names only
(operations/profiles.py), from the whole inventory.

`deploys/ca.py` and `cluster.py` keep ca.json so on the cert-managers. A run that issues
while `--limit` leaves the primary cert-manager out (a member added with `--limit <host>`, new
SANs for one host) reaches the primary to mint its tokens; before it mints, its ca.json is
brought to the inventory's policy there too, and step-ca restarted when it changed: without
that, step-ca would refuse the new names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyinfra.api import StringCommand
from pyinfra.connectors.util import CommandOutput

from etcd_step_pki.facts.shell import replace_file, script
from etcd_step_pki.operations import profiles
from etcd_step_pki.operations.profiles import Profile
from etcd_step_pki.operations.remote import Remote
from etcd_step_pki.templates.scripts import script as run_script


@dataclass(frozen=True)
class Policy:
    """The base provisioner, every profile the CA issues, and each cluster's names."""

    base: str
    profiles: tuple[Profile, ...]
    names: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def of(cls, base: str, items: Sequence[Profile], names: Mapping[str, Sequence[str]]) -> Policy:
        return cls(base, tuple(items), tuple((c, tuple(n)) for c, n in names.items()))


def with_policy(config: dict[str, Any], policy: Policy) -> None:
    """Give ca.json (`config`, changed in place) a provisioner per profile with the base
    provisioner's key and its cluster's names; the base provisioner issues proof certificates
    only, the retired shared provisioners nothing. ValueError without the base provisioner."""
    entries = config.setdefault("authority", {}).setdefault("provisioners", [])
    base = next((e for e in entries if e.get("name") == policy.base), None)
    if base is None:
        raise ValueError(f"ca.json has no provisioner {policy.base!r}")
    names = dict(policy.names)
    for item in policy.profiles:
        entry = profiles.provisioner_entry(base, item, names.get(item.cluster or "", ()))
        at = [i for i, e in enumerate(entries) if e.get("name") == item.provisioner]
        if at:
            entries[at[0]] = entry
        else:
            entries.append(entry)
    proof = profiles.proof_profile(policy.base)
    base["options"] = profiles.x509_options(proof, profiles.PROOF_NAMES)
    retired = profiles.retired_provisioners(policy.base)
    for entry in entries:
        if entry.get("name") in retired:
            entry["options"] = {"x509": {"template": profiles.RETIRED_TEMPLATE}}


def render_config(config: dict[str, Any]) -> str:
    """ca.json's text as the deploys write it."""
    return json.dumps(config, indent=4) + "\n"


def policy_current(primary: Remote, path: str, url: str, policy: Policy) -> None:
    """Run time, before tokens are minted on `primary`: its ca.json carries the inventory's
    policy, else it is written and step-ca restarted and healthy again. RuntimeError when
    the cert-manager cannot be read or step-ca does not come back."""
    config_file = f"{path}/config/ca.json"
    ok, output = primary.run(script("cat {file}", file=config_file))
    if not ok:
        raise RuntimeError(f"reading {config_file} on {primary.name} failed: {output.stderr}")
    current = json.loads(output.stdout)
    wanted = json.loads(output.stdout)
    try:
        with_policy(wanted, policy)
    except ValueError as error:
        raise RuntimeError(f"{config_file} on {primary.name}: {error}") from error
    if wanted == current:
        return
    restart = _restart(path, url)
    failed = _written_and_restarted(primary, config_file, render_config(wanted), restart)
    if failed is None:
        primary.log("the CA's policy now allows the inventory's names (step-ca restarted)")
        return
    # step-ca did not come back on the new ca.json: the one it served with goes back, so that
    # a failed run leaves the CA issuing what it issued before.
    restored = _written_and_restarted(primary, config_file, render_config(current), restart)
    raise RuntimeError(
        f"bringing the CA's policy on {primary.name} to the inventory's failed: "
        f"{failed.stderr}; its previous ca.json was put back"
        + ("" if restored is None else f", and step-ca failed on it too: {restored.stderr}")
    )


def _restart(path: str, url: str) -> tuple[str | StringCommand, ...]:
    """Restart step-ca and wait until it answers on `url` with the CA's root."""
    name, port = urlsplit(url).hostname or "localhost", urlsplit(url).port or 443
    return (
        "systemctl restart step-ca.service",
        run_script(
            "ca-healthy-wait.sh.j2",
            root=f"{path}/certs/root_ca.crt",
            resolve=f"{name}:{port}:127.0.0.1",
            name=name,
            port=port,
            timeout=60,
        ),
    )


def _written_and_restarted(
    primary: Remote, config_file: str, text: str, restart: Sequence[str | StringCommand]
) -> CommandOutput | None:
    """ca.json written as `text`, then step-ca restarted and healthy: None, else the output
    of the command that failed."""
    for command in (replace_file(config_file, text, "0600"), *restart):
        ok, output = primary.run(command)
        if not ok:
            return output
    return None
