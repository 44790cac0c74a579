"""Node trust and leaf certificates: bootstrap the step CLI, issue what is missing or wrong.

Certificates are (re)issued only when missing, not matching their key, issued by another CA,
lacking a required SAN, or past their renewal point. Keys are made on the node by
`step ca certificate`; the one-time tokens are minted on the primary cert-manager, reach the
node as a 0600 file in a 0700 directory, and enter `step` through its environment
(`STEP_TOKEN`), never through process arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from io import StringIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.api.state import State

from deploys.settings import KEY_TYPES, Certificate, Settings, parse_duration
from facts.ca import CAState
from facts.certificates import NodeCertificates
from operations import tokens
from operations.shell import raw, script

TOKEN_DIR = "/run/etcd-step-pki"
DEFAULT_RENEWAL_PERCENT = 66  # step's default: renew after 2/3 of the lifetime


def root_fingerprint(root_pem: str) -> str:
    """SHA-256 of the root certificate's DER, as `step ca bootstrap --fingerprint` wants it."""
    cert = x509.load_pem_x509_certificate(root_pem.encode())
    return hashlib.sha256(cert.public_bytes(encoding=Encoding.DER)).hexdigest()


_ca_cache: dict[tuple[int, str], dict] = {}


def ca_material(state: State, primary: str, ca_path: str) -> dict:
    """The primary's root and intermediate PEMs (public), read once a run once they exist.

    Reaches the primary even when `--limit` left it out of the run's connections.
    """
    key = (id(state), primary)
    if key in _ca_cache:
        return _ca_cache[key]
    manager = state.inventory.get_host(primary)
    if not manager.connected:
        manager.connect(reason="to read the CA certificates", raise_exceptions=True)
    found = manager.get_fact(CAState, path=ca_path)
    material = {"root": found["root"], "intermediate": found["intermediate"]}
    if material["root"] and material["intermediate"]:
        _ca_cache.clear()
        _ca_cache[key] = material
    return material


@dataclass(frozen=True)
class Wanted:
    """What a node's certificates must be."""

    certificates: tuple[Certificate, ...]
    sans: tuple[str, ...]
    user: str
    duration: str
    key_type: str
    expires_in: str | None


def expected_sans(settings: Settings, hostname: str | None, fqdn: str | None) -> tuple[str, ...]:
    """Hostname, FQDN, inventory name, every address, localhost, 127.0.0.1, extra SANs."""
    names = [hostname, fqdn, settings.host, *settings.addresses, "localhost", "127.0.0.1"]
    names += list(settings.extra_sans)
    return tuple(dict.fromkeys(n for n in names if n))


def past_renewal_point(cert: dict, expires_in: str | None, now: float) -> bool:
    """The rule of `step certificate needs-renewal [--expires-in]`, which the renewal units
    run: due once the share of the lifetime used reaches the percentage (66% by default), or
    once what remains is within the duration."""
    lifetime = max(cert["not_after"] - cert["not_before"], 1.0)
    remaining = cert["not_after"] - now
    if expires_in is None or expires_in.endswith("%"):
        percent = DEFAULT_RENEWAL_PERCENT if expires_in is None else int(expires_in[:-1])
        return int((1 - remaining / lifetime) * 100) >= percent
    return remaining <= parse_duration(expires_in)


def reissue_reason(
    entry: dict | None,
    *,
    sans: Sequence[str],
    intermediate_pem: str,
    expires_in: str | None,
    now: float,
) -> str | None:
    """Why a certificate must be issued again, or None when it is fine as it is."""
    cert = entry and entry["cert"]
    if not cert:
        return "missing"
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
    if past_renewal_point(cert, expires_in, now):
        return "it is past its renewal point"
    return None


def _mode_fixes(entry: dict | None, item: Certificate, user: str) -> list[tuple[str, str]]:
    modes = (entry or {}).get("modes", {})
    fixes = []
    for path, mode in ((item.crt, "644"), (item.key, "400")):
        found = modes.get(path)
        if found and (found["mode"], found["user"], found["group"]) != (mode, user, user):
            fixes.append((path, mode))
    return fixes


@operation()
def node_certificates(
    *,
    settings: Settings,
    ca_url: str,
    now: float,
    trust_links: bool = True,
    reissue: str | None = None,
) -> Generator:
    """
    Trust the CA and hold valid peer/server/client certificates (members) or a client
    certificate (clients), each issued only when it has to be.

    + settings: this host's validated settings
    + ca_url: the URL nodes reach step-ca at
    + now: the time the renewal point is judged at (seconds since the epoch)
    + trust_links: keep peer-ca.crt and client-ca.crt linked to root_ca.crt (a cfssl
      migration holds transitional bundles there instead)
    + reissue: why every certificate is issued again whatever its state (None: only those
      that need it)
    """
    items = settings.certificates
    found = host.get_fact(
        NodeCertificates,
        ssl_dir=settings.ssl_dir,
        step_path=settings.step_path,
        pairs=[(c.crt, c.key) for c in items],
    )
    material = ca_material(host.state, settings.primary, settings.ca_path)
    if not material["root"]:
        if host.state.is_executing:
            raise OperationError(f"the CA on {settings.primary} has no root certificate yet")
        yield script("true  # trust and certificates once the CA exists")
        return
    root, intermediate = material["root"], material["intermediate"]
    commands = _trust_commands(settings, found["trust"], root, ca_url, trust_links)

    sans = expected_sans(settings, found["hostname"], found["fqdn"])
    due: list[tuple[Certificate, str]] = []
    for item in items:
        entry = found["files"].get(item.crt)
        reason = reissue or reissue_reason(
            entry,
            sans=sans,
            intermediate_pem=intermediate,
            expires_in=settings.renewal.expires_in,
            now=now,
        )
        if reason:
            due.append((item, reason))
        else:
            commands += [
                raw(
                    "chown {user}:{user} {path} && chmod {mode} {path}",
                    user=settings.etcd_user,
                    path=path,
                    mode=mode,
                )
                for path, mode in _mode_fixes(entry, item, settings.etcd_user)
            ]
    if due:
        commands.append(raw("install -d -m 0700 {d}", d=TOKEN_DIR))
    if commands:
        yield StringCommand("set -e; " + "; ".join(commands))
    if due:
        wanted = Wanted(
            tuple(item for item, _ in due),
            sans,
            settings.etcd_user,
            settings.durations.default,
            settings.key_type,
            settings.renewal.expires_in,
        )
        tokens.register(
            host.state,
            tokens.TokenRequest(
                host=host.name,
                subject=settings.node_name,
                sans=sans,
                kinds=tuple(item.kind for item, _ in due),
                duration=settings.durations.default,
                ca_url=ca_url,
            ),
        )
        reasons = "; ".join(f"{item.kind}: {why}" for item, why in due)
        yield FunctionCommand(_issue, (settings, ca_url, wanted, reasons), {})
    elif not commands:
        host.noop(f"{len(items)} certificate(s) valid, trust in place")


def _trust_commands(
    settings: Settings, trust: dict, root: str, ca_url: str, links: bool = True
) -> list[str]:
    """Shell commands that make the step CLI and ssl_dir trust the root (it is public)."""
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
                step_path=settings.step_path,
                step=f"{settings.bin_dir}/step",
                url=ca_url,
                fp=fingerprint,
            )
        )
    if trust.get("ssl_root") != root:
        target = f"{settings.ssl_dir}/root_ca.crt"
        commands.append(
            raw(
                "install -d -m 0755 {dir} && printf %s {pem} > {new} && chmod 0644 {new}"
                " && mv -f {new} {target}",
                dir=settings.ssl_dir,
                pem=root,
                new=target + ".new",
                target=target,
            )
        )
    for link in ("peer-ca.crt", "client-ca.crt") if links else ():
        if trust.get("links", {}).get(link) != "root_ca.crt":
            commands.append(
                raw(
                    "ln -sfn root_ca.crt {link}.new && mv -Tf {link}.new {link}",
                    link=f"{settings.ssl_dir}/{link}",
                )
            )
    return commands


def _certificate_command(settings: Settings, ca_url: str, wanted: Wanted, tokens: str) -> str:
    kty, curve = KEY_TYPES[wanted.key_type]
    key_flags = ["--kty", kty] + (["--curve", curve] if curve else ["--size", "2048"])
    parts = [
        'set -e; umask 077; t={tokens}; trap \'rm -f "$t" "$t.err"\' EXIT; install -d -m 0755 {ssl_dir};'
    ]
    values: dict[str, object] = {"tokens": tokens, "ssl_dir": settings.ssl_dir}
    for index, item in enumerate(wanted.certificates):
        parts.append(
            f'STEP_TOKEN="$(sed -n "s/^{item.kind} //p" "$t")"'
            f" STEPPATH={{step_path}} {{step}} ca certificate {{subject}} {{crt{index}}}.new"
            f" {{key{index}}}.new {{key_flags}} --not-after {{duration}}"
            ' --ca-url {url} --root {root} --force >/dev/null 2>"$t.err"'
            ' || {{ cat "$t.err" >&2; exit 1; }};'
            f" chown {{user}}:{{user}} {{crt{index}}}.new {{key{index}}}.new;"
            f" chmod 0644 {{crt{index}}}.new; chmod 0400 {{key{index}}}.new;"
            f" mv -f {{key{index}}}.new {{key{index}}}; mv -f {{crt{index}}}.new {{crt{index}}};"
        )
        values[f"crt{index}"] = item.crt
        values[f"key{index}"] = item.key
    values.update(
        step_path=settings.step_path,
        step=f"{settings.bin_dir}/step",
        subject=settings.node_name,
        key_flags=key_flags,
        duration=wanted.duration,
        url=ca_url,
        root=settings.root_file,
        user=wanted.user,
    )
    return script(" ".join(parts), **values).get_raw_value()


def _fail(node: Host, message: str) -> bool:
    node.log_styled(message, fg="red", log_func=logger.error)
    return False


def _issue(
    state: State, host: Host, settings: Settings, ca_url: str, wanted: Wanted, reasons: str
) -> bool:
    """Run time: mint the tokens on the primary, hand them to the node, issue there."""
    node = host
    node.log_styled(f"issuing certificates ({reasons})", log_func=logger.info)
    primary = state.inventory.get_host(settings.primary)
    try:
        minted = tokens.tokens_for(state, primary, settings, node.name)
    except RuntimeError as error:
        return _fail(node, str(error))
    text = "".join(f"{item.kind} {minted[item.kind]}\n" for item in wanted.certificates)
    token_file = f"{TOKEN_DIR}/tokens"
    if not node.put_file(StringIO(text), token_file, remote_temp_filename=token_file + ".part"):
        return _fail(node, "uploading the one-time tokens failed")
    ok, output = node.run_shell_command(_certificate_command(settings, ca_url, wanted, token_file))
    if not ok:
        return _fail(node, f"issuing certificates failed: {output.stderr}")
    return True
