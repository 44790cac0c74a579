"""What a node trusts: the step CLI bootstrapped to the CA, the root and the CA's chain in
`ssl_dir` (public files), and the links an earlier cfssl layout's readers use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etcd_step_pki.facts.shell import raw, replace_file, replace_link
from etcd_step_pki.operations.roots import root_fingerprint

if TYPE_CHECKING:
    from etcd_step_pki.operations.certificates import StepNode


def trust_commands(
    node: StepNode,
    trust: dict[str, Any],
    root: str,
    ca_url: str,
    links: bool = True,
    chain: str | None = None,
) -> list[str]:
    """Shell commands that make the step CLI and ssl_dir trust the root (it is public), and
    keep the CA's chain (intermediate and root), which the CA's CRLs verify against."""
    commands = []
    defaults = trust.get("defaults") or {}
    fingerprint = root_fingerprint(root)
    if (
        defaults.get("ca-url") != ca_url
        or defaults.get("fingerprint") != fingerprint
        or trust.get("step_root") != root
    ):
        commands.append(
            raw(
                "STEPPATH={step_path} {step} ca bootstrap --ca-url {url} --fingerprint {fp}"
                " --force >/dev/null",
                step_path=node.step_path,
                step=node.step,
                url=ca_url,
                fp=fingerprint,
            )
        )
    if trust.get("ssl_root") != root:
        target = node.root_file
        commands.append(raw("install -d -m 0755 {d}", d=node.ssl_dir))
        commands.append(replace_file(target, root))
    if chain is not None and trust.get("ssl_chain") != chain:
        commands.append(raw("install -d -m 0755 {d}", d=node.ssl_dir))
        commands.append(replace_file(node.chain_file, chain))
    for link in ("peer-ca.crt", "client-ca.crt") if links else ():
        if trust.get("links", {}).get(link) != "root_ca.crt":
            commands.append(replace_link(f"{node.ssl_dir}/{link}", "root_ca.crt"))
    return commands
