"""Node trust and leaf certificates: bootstrap the step CLI, issue what is missing or wrong.

Certificates are (re)issued only when missing, not matching their key, issued by another CA,
lacking a required SAN, or past their renewal point. Keys are made on the node by
`step ca certificate`; the one-time tokens are minted on the primary cert-manager, reach the
node as a 0600 file in a 0700 directory, and enter `step` through its environment
(`STEP_TOKEN`), never through process arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.facts.certificates import NodeCertificates
from etcd_step_pki.facts.shell import raw, script
from etcd_step_pki.operations import Commands, profiles, roots, tokens
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.key_pairs import pair_layout, script_paths
from etcd_step_pki.operations.profiles import Profile
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.trust import trust_commands
from etcd_step_pki.templates.scripts import script as run_script

TOKEN_DIR = "/run/etcd-step-pki"
# `cert_key_type` -> step's `--kty` and `--curve` (RSA keys are 2048 bits).
KEY_TYPES = {"EC": ("EC", "P-256"), "OKP": ("OKP", "Ed25519"), "RSA": ("RSA", None)}


@dataclass(frozen=True)
class Certificate:
    """One leaf certificate of a node: its kind, subject and files."""

    kind: str  # peer | server | client
    subject: str
    crt: str
    key: str
    # What the CA issues it for (operations/profiles.py); None: the authority's provisioner.
    profile: Profile | None = None
    # What its renewal runs (as root) once the new certificate is in place: a program that
    # reads it again without a restart (Galera's TLS); None: nothing, etcd reads it anyway.
    reload: str | None = None

    @property
    def pair(self) -> str:
        """The link to the directory of the current key and certificate, which `crt` and
        `key` lead through (templates/macros/key_pair.sh.j2)."""
        return f"{self.crt.removesuffix('.crt')}.pair"

    @property
    def unit(self) -> str:
        """The renewal units' name, `step-renew-<subject>-<kind>`."""
        return f"step-renew-{self.subject}-{self.kind}"

    @property
    def common_name(self) -> str:
        """The subject the certificate is issued for: its profile's when the CA fixes one
        (every peer of a cluster has the same), the node's otherwise."""
        return (self.profile.common_name if self.profile else None) or self.subject


DEFAULT_RENEWAL_PERCENT = 66  # step's default: renew after 2/3 of the lifetime


_ca_cache: dict[tuple[int, str], dict[str, Any]] = {}


def ca_material(state: State, cert_manager: str, ca_path: str) -> dict[str, Any]:
    """The cert-manager's root and intermediate PEMs (public), read once a run once they
    exist.

    Reaches the cert-manager even when `--limit` left it out of the run's connections.
    """
    key = (id(state), cert_manager)
    if key in _ca_cache:
        return _ca_cache[key]
    manager = state.inventory.get_host(cert_manager)
    if not manager.connected:
        manager.connect(reason="to read the CA certificates", raise_exceptions=True)
    found = memo.get_fact(manager, CAState, path=ca_path)
    material = {"root": found["root"], "intermediate": found["intermediate"]}
    if material["root"] and material["intermediate"]:
        _ca_cache.clear()
        _ca_cache[key] = material
    return material


def ca_material_changed(state: State, node: Remote) -> bool:
    """Run time, after a step that replaced the CA's certificates (a new intermediate): the
    rest of the run reads them again."""
    _ca_cache.clear()
    return True


def authority_material(state: State, authority: tokens.Authority) -> tuple[str, dict[str, Any]]:
    """The cert-manager that answers for the CA (the first reached), and its CA material."""
    try:
        name = tokens.reached_name(state, authority, "to read the CA certificates")
    except RuntimeError as error:
        raise OperationError(str(error)) from error
    return name, ca_material(state, name, authority.path)


def ca_root(state: State, authority: tokens.Authority) -> str:
    """The CA's root PEM, or "" while planning a run that creates the CA; at execution a
    missing root is an error."""
    name, material = authority_material(state, authority)
    root = material["root"]
    if not root and state.is_executing:
        raise OperationError(f"the CA on {name} has no root certificate yet")
    roots.refuse_other(root, authority.pin, f"the CA on {name}")
    if state.is_executing:
        roots.record(root, authority.pin)
    return root or ""


@dataclass(frozen=True)
class StepNode:
    """Where a node keeps the step CLI, its configuration and its certificates, and who
    owns them."""

    bin_dir: str = "/opt/bin"
    step_path: str = "/etc/step"
    ssl_dir: str = "/etc/etcd/ssl"
    owner: str = "etcd"

    @property
    def step(self) -> str:
        return f"{self.bin_dir}/step"

    @property
    def root_file(self) -> str:
        return f"{self.ssl_dir}/root_ca.crt"

    @property
    def chain_file(self) -> str:
        """The CA's intermediate and root: what a CRL the CA signed verifies against."""
        return f"{self.ssl_dir}/ca-chain.crt"


@dataclass(frozen=True)
class Issuance:
    """What a node asks the CA for: lifetime (a Go duration), key type (`KEY_TYPES`), and
    the renewal point (`step certificate needs-renewal --expires-in`; None: 66% used)."""

    duration: str = "17520h"
    key_type: str = "EC"
    expires_in: str | None = None


def expected_sans(names: Sequence[str]) -> tuple[str, ...]:
    """`names` once each: the inventory's names and addresses of the host, never what the
    host says it is called (a compromised host would name another)."""
    return tuple(dict.fromkeys(n for n in names if n))


def past_renewal_point(cert: dict[str, Any], expires_in: str | None, now: float) -> bool:
    """The rule of `step certificate needs-renewal [--expires-in]`, which the renewal units
    run: due once the share of the lifetime used reaches the percentage (66% by default), or
    once what remains is within the duration."""
    lifetime: float = max(cert["not_after"] - cert["not_before"], 1.0)
    remaining: float = cert["not_after"] - now
    if expires_in is None or expires_in.endswith("%"):
        percent = DEFAULT_RENEWAL_PERCENT if expires_in is None else int(expires_in[:-1])
        return int((1 - remaining / lifetime) * 100) >= percent
    return remaining <= parse_duration(expires_in)


# step-ca backdates certificates by a minute: one renewed at time T starts at T - 1 min.
BACKDATE = 60.0


def _issued_before(entry: dict[str, Any] | None, when: float | None) -> str | None:
    if when is None or not entry or not entry["cert"]:
        return None
    if entry["cert"]["not_before"] + BACKDATE < when:
        return "issued before the revocation time"
    return None


def reissue_reason(
    entry: dict[str, Any] | None,
    *,
    sans: Sequence[str],
    intermediate_pem: str,
    expires_in: str | None,
    now: float,
    profile: Profile | None = None,
) -> str | None:
    """Why a certificate must be issued again, or None when it is fine as it is."""
    if not entry or not entry["cert"]:
        return "missing"
    cert = entry["cert"]
    if entry["key_public"] is None:
        return "its key is missing or unreadable"
    if entry["key_public"] != cert["public_key"]:
        return "it does not match its key"
    leaf = x509.load_pem_x509_certificate(cert["pem"].encode())
    issuer = x509.load_pem_x509_certificate(intermediate_pem.encode())
    try:
        leaf.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return f"it was issued by another CA ({cert['issuer']})"
    missing = [san for san in sans if san not in cert["sans"]]
    if missing:
        return f"it lacks SAN {', '.join(missing)}"
    # Besides the host's names: its subject, and the name the CA adds to open the client port.
    allowed = {*sans, cert["subject"], profile.client_mark if profile else None}
    claimed = [san for san in cert["sans"] if san not in allowed]
    if claimed:
        return f"it names {', '.join(claimed)}, which the inventory does not give this host"
    differs = profile and profiles.mismatch(cert["pem"], profile)
    if differs:
        return differs
    if past_renewal_point(cert, expires_in, now):
        return "it is past its renewal point"
    return None


def _mode_fixes(
    entry: dict[str, Any] | None, item: Certificate, user: str
) -> list[tuple[str, str]]:
    modes = (entry or {}).get("modes", {})
    fixes = []
    for path, mode in ((item.crt, "644"), (item.key, "400")):
        found = modes.get(path)
        if found and (found["mode"], found["user"], found["group"]) != (mode, user, user):
            fixes.append((path, mode))
    return fixes


@operation()
def node_certificates(
    certificates: Sequence[Certificate],
    *,
    sans: Sequence[str],
    authority: tokens.Authority,
    node: StepNode,
    issuance: Issuance,
    now: float,
    trust_links: bool = True,
    reissue: str | None = None,
    issued_before: float | None = None,
    request: str | None = None,
) -> Commands:
    """
    Trust the CA and hold valid certificates, each issued only when it has to be.

    + certificates: the host's leaf certificates (one subject: peer/server/client, or client)
    + sans: names and addresses every certificate carries, from the inventory only
    + authority: the CA: its URL, and the cert-manager that mints the one-time tokens
    + node: where step, its configuration and the certificates are on this host
    + issuance: lifetime, key type and renewal point
    + now: the time the renewal point is judged at (seconds since the epoch)
    + trust_links: keep peer-ca.crt and client-ca.crt linked to root_ca.crt (a cfssl
      migration holds transitional bundles there instead)
    + reissue: why every certificate is issued again whatever its state (None: only those
      that need it)
    + issued_before: a certificate that started before this time (seconds since the epoch;
      step-ca backdates by a minute) is issued again, with a new key (a compromised host)
    + request: the name its tokens are minted under (default: the host's); another set of
      the host's certificates in the same run needs a name of its own

    The tokens are minted on the cert-manager, in one batch for every node of the run, and
    that step is shown under the cert-manager; with `--limit` the cert-manager is reached
    all the same.
    """
    found = memo.get_fact(
        host,
        NodeCertificates,
        ssl_dir=node.ssl_dir,
        step_path=node.step_path,
        pairs=[(c.crt, c.key) for c in certificates],
    )
    root = ca_root(host.state, authority)
    if not root:
        yield script("true  # trust and certificates once the CA exists")
        return
    intermediate = authority_material(host.state, authority)[1]["intermediate"]
    chain = f"{intermediate.strip()}\n{root.strip()}\n" if intermediate else None
    commands = trust_commands(node, found["trust"], root, authority.url, trust_links, chain)

    wanted_sans = expected_sans(sans)
    due: list[tuple[Certificate, str]] = []
    unpaired: list[Certificate] = []
    for item in certificates:
        entry = found["files"].get(item.crt)
        layout = pair_layout(entry, item)
        reason = (
            reissue
            or (layout == "foreign" and "its names are links this deploy did not make")
            or _issued_before(entry, issued_before)
            or reissue_reason(
                entry,
                sans=wanted_sans,
                intermediate_pem=intermediate,
                expires_in=issuance.expires_in,
                now=now,
                profile=item.profile,
            )
        )
        if reason:
            due.append((item, reason))
        else:
            if layout == "plain":
                unpaired.append(item)
            commands += [
                raw(
                    "chown {user}:{user} {path} && chmod {mode} {path}",
                    user=node.owner,
                    path=path,
                    mode=mode,
                )
                for path, mode in _mode_fixes(entry, item, node.owner)
            ]
    if commands:
        yield StringCommand("set -e; " + "; ".join(commands))
    if unpaired:
        yield run_script("certificates-adopt.sh.j2", certificates=script_paths(unpaired))
    if due:
        items = tuple(item for item, _ in due)
        tokens.register(
            host.state,
            tokens.TokenRequest(
                host=request or host.name,
                items=tuple(
                    tokens.TokenItem(
                        item.kind,
                        item.common_name,
                        item.profile.provisioner if item.profile else None,
                    )
                    for item in items
                ),
                sans=wanted_sans,
                duration=issuance.duration,
                ca_url=authority.url,
            ),
        )
        reasons = "; ".join(f"{item.kind}: {why}" for item, why in due)
        command = _certificate_command(node, authority.every_url, issuance, items)
        yield RunTimeStep(_issue, authority, items, command, reasons, request or host.name)
    elif not commands and not unpaired:
        host.noop(f"{len(certificates)} certificate(s) valid, trust in place")


def _certificate_command(
    node: StepNode, ca_urls: Sequence[str], issuance: Issuance, items: Sequence[Certificate]
) -> str:
    """Each certificate made on the node (key included) with its token, read from stdin
    (`<place> <token>` lines, the place of its certificate in `items`) into a 0600 file in
    the 0700 TOKEN_DIR, removed on exit (certificates-issue.sh.j2), at the first of
    `ca_urls` that answers."""
    kty, curve = KEY_TYPES[issuance.key_type]
    key_flags = ["--kty", kty] + (["--curve", curve] if curve else ["--size", "2048"])
    return run_script(
        "certificates-issue.sh.j2",
        token_dir=TOKEN_DIR,
        ssl_dir=node.ssl_dir,
        step_path=node.step_path,
        step=node.step,
        certificates=script_paths(items),
        key_flags=key_flags,
        duration=issuance.duration,
        urls=list(ca_urls),
        root=node.root_file,
        user=node.owner,
    ).get_raw_value()


def _issue(
    state: State,
    node: Remote,
    authority: tokens.Authority,
    items: Sequence[Certificate],
    command: str,
    reasons: str,
    request: str,
) -> bool:
    """Run time: the tokens from the cert-manager, handed to the node on stdin, used there."""
    node.log(f"issuing certificates ({reasons})")
    try:
        minted = tokens.tokens_for(state, authority, request)
    except RuntimeError as error:
        return node.fail(str(error))
    text = "".join(f"{place} {minted[str(place)]}\n" for place in range(len(items)))
    ok, output = node.run(command, stdin=text)
    if not ok:
        return node.fail(f"issuing certificates failed: {output.stderr}")
    return True
