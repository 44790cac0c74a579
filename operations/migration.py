"""Moving a running etcd cluster from cfssl certificates to step-ca, without downtime.

Trust first (the old peer and client CAs and the new root in one bundle each), then the new
certificates, then the old roots out: each step on every host before the next, each followed
by a rolling restart of the members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.paths import ExistingPaths
from etcd_step_pki.facts.shell import raw, replace_file, replace_link, script
from etcd_step_pki.facts.trust import TrustFiles
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.certificates import ca_root
from etcd_step_pki.operations.tokens import Authority


@operation()
def trust_bundles(
    ssl_dir: str, *, authority: Authority, old_roots: Mapping[str, str] | None
) -> Commands:
    """
    Point peer-ca.crt and client-ca.crt at the CA: bundles of the new root and the old
    cfssl CA (transition), or links to root_ca.crt (the end).

    + ssl_dir: where the trust files are
    + authority: the CA whose root is trusted (read from its cert-manager)
    + old_roots: trust file -> the old CA's PEM file to add to it; None: the new root only
    """
    targets = [f"{ssl_dir}/peer-ca.crt", f"{ssl_dir}/client-ca.crt"]
    found = memo.get_fact(host, TrustFiles, paths=[*targets, *(old_roots or {}).values()])
    if old_roots is None:
        changed = [t for t in targets if found.get(t) != {"link": "root_ca.crt"}]
        for target in changed:
            # Renamed over the bundle: a reader never finds the file missing.
            yield StringCommand(replace_link(target, "root_ca.crt"))
        if not changed:
            host.noop("peer-ca.crt and client-ca.crt trust the new root only")
        return
    root = ca_root(host.state, authority)
    if not root:
        yield script("true  # trust bundles once the CA exists")
        return
    changed = []
    for target, old in old_roots.items():
        old_pem = (found.get(old) or {}).get("pem")
        if old_pem is None:
            raise OperationError(f"{old} is missing: it should hold the old cfssl CA")
        wanted = root.strip() + "\n" + old_pem
        if found.get(target) != {"pem": wanted}:
            changed.append(target)
            # Renamed over the link or bundle: a reader never finds the file missing.
            yield StringCommand(
                raw("install -d -m 0755 {d}", d=ssl_dir) + " && " + replace_file(target, wanted)
            )
    if not changed:
        host.noop("peer-ca.crt and client-ca.crt trust the old and the new CA")


@operation()
def legacy_removed(*, paths: Sequence[str]) -> Commands:
    """
    Remove the old cfssl files that are still there.

    + paths: the old certificates, keys and CA files
    """
    present = memo.get_fact(host, ExistingPaths, paths=list(paths))
    if not present:
        host.noop("no old cfssl file is left")
        return
    yield script("rm -f {paths}", paths=present)
