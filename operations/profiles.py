"""Certificate profiles: what each kind of certificate may be used for and name, decided by
the CA.

Each kind of each cluster is issued by a JWK provisioner of its own whose x509 template fixes
the extended key usages, whatever the request asks for, and refuses any name that is not one of
the cluster's hosts' (from the inventory, in the provisioner's `templateData`): a node that
could ask the CA for a token still gets no certificate for another cluster's member or for the
CA. Each kind carries only the usages it needs: a peer certificate serverAuth and clientAuth
(a peer dials other peers), a server certificate serverAuth and clientAuth (step-ca renews a
certificate only when it authenticates with it as a TLS client), a client certificate
clientAuth.

Every peer certificate of a cluster has the subject common name `etcd-<cluster>-peer`, and its
peer port accepts that name only (`allowed-cn`). Every client certificate of a cluster carries
the DNS name `<cluster>.etcd-clients.invalid` (added by the CA, never asked for), and its
client port accepts only certificates with that name (`client-cert-allowed-hostname`): no other
cluster's certificate of the same CA, no peer, server or proof certificate is a client. (etcd's
HTTP gateway cannot run beside that check, etcd-io/etcd#15755: the members run without it.)

The provisioners share the key `step ca init` made for the base provisioner: tokens are minted
on the CA host with it, as before. The base provisioner itself issues only the throwaway
certificates that prove issuance (failover and drill proofs: client usage, no cluster's name),
and the shared server and client provisioners of earlier versions issue nothing (they still
renew what they issued until it is issued again).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Extended key usages as step-ca's templates name them.
USAGE_OIDS = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
USAGES = {
    "peer": ("serverAuth", "clientAuth"),
    "server": ("serverAuth", "clientAuth"),
    "client": ("clientAuth",),
    # Galera's replication (ca_ha=active-active): each node dials the others and accepts them.
    "galera": ("serverAuth", "clientAuth"),
}
# The key of the Galera nodes' names among the clusters' names: no cluster is named so
# (cluster names are lower-case letters, digits and -).
GALERA_SCOPE = "@galera"
# The kinds of a cluster's certificates.
CLUSTER_KINDS = ("peer", "server", "client")
# The subjects of the throwaway certificates that prove a CA issues (failover, drills).
PROOF_NAMES = ("failover-proof", "drill-proof")


@dataclass(frozen=True)
class Profile:
    """One kind of certificate: the provisioner that issues it, its extended key usages, the
    cluster whose names it may carry and, when the CA fixes them, its subject common name and
    the name that opens the cluster's client port."""

    kind: str
    provisioner: str
    usages: tuple[str, ...]
    common_name: str | None = None
    cluster: str | None = None
    client_mark: str | None = None


def peer_common_name(cluster: str) -> str:
    """The subject every peer certificate of `cluster` carries, and its peer port accepts."""
    return f"etcd-{cluster}-peer"


# The client names the CA adds end in this: under `.invalid` (RFC 2606), no host's name, and
# settings may not give one (deploys/settings/validation.py).
CLIENT_MARK_SUFFIX = ".etcd-clients.invalid"


def client_mark(cluster: str) -> str:
    """The DNS name every client certificate of `cluster` carries, and its client port
    requires."""
    return f"{cluster}{CLIENT_MARK_SUFFIX}"


def profile(kind: str, *, base: str, cluster: str) -> Profile:
    """The profile of `kind` (peer, server, client) for `cluster`, its provisioner named
    after the CA's base provisioner `base`."""
    name = f"{base}-{cluster}-{kind}"
    if kind == "peer":
        return Profile(kind, name, USAGES[kind], peer_common_name(cluster), cluster)
    mark = client_mark(cluster) if kind == "client" else None
    return Profile(kind, name, USAGES[kind], cluster=cluster, client_mark=mark)


def galera_profile(base: str) -> Profile:
    """The certificates of the CA's database nodes (MariaDB Galera and its arbitrator), for
    their names only."""
    return Profile("galera", f"{base}-galera", USAGES["galera"], cluster=GALERA_SCOPE)


def proof_profile(base: str) -> Profile:
    """The base provisioner's: proof certificates only, usable to renew and nothing else."""
    return Profile("proof", base, ("clientAuth",))


# The template's Go actions: every name the token asks for (and the subject, where the request
# chooses it) must be one the provisioner's data allows, or step-ca refuses the request.
_NAMES_ALLOWED = (
    "{{- range .SANs }}{{ if not (has .Value $.etcdPkiNames) }}"
    '{{ fail (printf "%s is not a name of %s" .Value $.etcdPkiScope) }}{{ end }}{{ end -}}'
)
_SUBJECT_ALLOWED = (
    "{{- if not (has .Subject.CommonName $.etcdPkiNames) }}"
    '{{ fail (printf "%s is not a name of %s" .Subject.CommonName $.etcdPkiScope) }}{{ end -}}'
)
_KEY_USAGE = (
    '{{ if typeIs "*rsa.PublicKey" .Insecure.CR.PublicKey }}'
    '"keyUsage": ["keyEncipherment", "digitalSignature"],'
    ' {{ else }}"keyUsage": ["digitalSignature"], {{ end }}'
)
# What a retired provisioner's template does with any request.
RETIRED_TEMPLATE = '{{ fail "this provisioner no longer issues certificates" }}'


def template(item: Profile) -> str:
    """The provisioner's x509 template (step-ca's Go template producing the certificate's
    JSON). Nothing from the settings is in it: names come from the provisioner's data."""
    if item.common_name:
        checks, subject = _NAMES_ALLOWED, '{"commonName": {{ toJson $.etcdPkiCommonName }}}'
    else:
        checks, subject = _NAMES_ALLOWED + _SUBJECT_ALLOWED, "{{ toJson .Subject }}"
    sans = (
        '{{ toJson (append .SANs (dict "type" "dns" "value" $.etcdPkiClientMark)) }}'
        if item.client_mark
        else "{{ toJson .SANs }}"
    )
    usages = json.dumps(list(item.usages))
    return f'{checks}{{"subject": {subject}, "sans": {sans}, {_KEY_USAGE}"extKeyUsage": {usages}}}'


def template_data(item: Profile, names: Sequence[str]) -> dict[str, object]:
    """The provisioner's `templateData`: the names it may issue for, what they are (for
    step-ca's refusal), and the names the CA fixes."""
    data: dict[str, object] = {
        "etcdPkiNames": list(dict.fromkeys(names)),
        "etcdPkiScope": _scope(item),
    }
    if item.common_name:
        data["etcdPkiCommonName"] = item.common_name
    if item.client_mark:
        data["etcdPkiClientMark"] = item.client_mark
    return data


def _scope(item: Profile) -> str:
    """What the names are of, in step-ca's refusal."""
    if item.cluster == GALERA_SCOPE:
        return "the CA's database nodes"
    return f"cluster {item.cluster}" if item.cluster else "the proof certificates"


def x509_options(item: Profile, names: Sequence[str]) -> dict[str, object]:
    return {"x509": {"template": template(item), "templateData": template_data(item, names)}}


def provisioner_entry(
    base: dict[str, object], item: Profile, names: Sequence[str]
) -> dict[str, object]:
    """ca.json's entry for the provisioner of `item`: the base JWK provisioner's key, the
    profile's template and the names it may issue for. "name" comes before "encryptedKey", as
    the token minting reads it."""
    return {
        "type": "JWK",
        "name": item.provisioner,
        "key": base["key"],
        "encryptedKey": base["encryptedKey"],
        "options": x509_options(item, names),
    }


def retired_provisioners(base: str) -> tuple[str, ...]:
    """The shared server and client provisioners of earlier versions."""
    return (f"{base}-server", f"{base}-client")


def mismatch(pem: str, item: Profile) -> str | None:
    """How a certificate differs from its profile, or None."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        found = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        found = set()
    wanted = {USAGE_OIDS[name] for name in item.usages}
    if found != wanted:
        have = sorted(n for n, oid in USAGE_OIDS.items() if oid in found) or ["none"]
        return f"its key usages are {', '.join(have)}, not {', '.join(item.usages)}"
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    if item.common_name and common_name != item.common_name:
        return f"its subject is {common_name!r}, not {item.common_name!r}"
    if item.client_mark and item.client_mark not in _dns_names(cert):
        return f"it lacks {item.client_mark}, the name its cluster's client port requires"
    return None


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value.get_values_for_type(x509.DNSName))
