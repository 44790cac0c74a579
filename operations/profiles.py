"""Certificate profiles: what each kind of certificate may be used for, decided by the CA.

Each kind is issued by a JWK provisioner of its own whose x509 template fixes the extended
key usages, whatever the request asks for: a client certificate authenticates a client only
(no serverAuth); peer and server certificates carry serverAuth and clientAuth, which etcd
needs (a peer dials other peers; a member's gRPC gateway dials its own client port with the
server certificate). Every peer certificate of a cluster has the same subject common name,
`etcd-<cluster>-peer`, set by the template of that cluster's peer provisioner; etcd's peer
port accepts that name only (`allowed-cn`), so no client, server or other cluster's
certificate of the same CA is a peer. The provisioners share the key `step ca init` made for
the base provisioner: tokens are minted on the CA host with it, as before.
"""

from __future__ import annotations

import json
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
}


@dataclass(frozen=True)
class Profile:
    """One kind of certificate: the provisioner that issues it, its extended key usages and,
    when the CA fixes it, its subject common name."""

    kind: str
    provisioner: str
    usages: tuple[str, ...]
    common_name: str | None = None


def peer_common_name(cluster: str) -> str:
    """The subject every peer certificate of `cluster` carries, and its peer port accepts."""
    return f"etcd-{cluster}-peer"


def profile(kind: str, *, base: str, cluster: str) -> Profile:
    """The profile of `kind` (peer, server, client) for `cluster`, its provisioner named
    after the CA's base provisioner `base`."""
    if kind == "peer":
        return Profile(kind, f"{base}-{cluster}-peer", USAGES[kind], peer_common_name(cluster))
    return Profile(kind, f"{base}-{kind}", USAGES[kind])


def template(item: Profile) -> str:
    """The provisioner's x509 template (step-ca's Go template producing the certificate's
    JSON): the SANs of the token, the usages of the profile."""
    subject = (
        json.dumps({"commonName": item.common_name})
        if item.common_name
        else "{{ toJson .Subject }}"
    )
    return (
        f'{{"subject": {subject}, "sans": {{{{ toJson .SANs }}}},'
        ' {{ if typeIs "*rsa.PublicKey" .Insecure.CR.PublicKey }}'
        '"keyUsage": ["keyEncipherment", "digitalSignature"],'
        ' {{ else }}"keyUsage": ["digitalSignature"], {{ end }}'
        f'"extKeyUsage": {json.dumps(list(item.usages))}}}'
    )


def provisioner_entry(base: dict[str, object], item: Profile) -> dict[str, object]:
    """ca.json's entry for the provisioner of `item`: the base JWK provisioner's key, the
    profile's template. "name" comes before "encryptedKey", as the token minting reads it."""
    return {
        "type": "JWK",
        "name": item.provisioner,
        "key": base["key"],
        "encryptedKey": base["encryptedKey"],
        "options": {"x509": {"template": template(item)}},
    }


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
    return None
