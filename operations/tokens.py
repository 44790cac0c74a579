"""One-time tokens for certificate requests, minted on the primary cert-manager in batches.

Every node that needs certificates in a run is registered while pyinfra prepares the run.
The first node to issue at run time has the tokens of every registered node minted in one
command on the primary, which decrypts the provisioner key once (a PBKDF2 derivation of about
a third of a CPU second) into a private file on tmpfs that is removed when the command ends.
Tokens travel to their node only as files, never in process arguments.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import gevent.lock
from pyinfra.api import StringCommand
from pyinfra.api.state import State

from etcd_step_pki.operations.ca_policy import Policy, policy_current
from etcd_step_pki.operations.remote import Remote
from etcd_step_pki.operations.roots import PinnedRoot
from etcd_step_pki.templates import url_host
from etcd_step_pki.templates.scripts import script

TOKEN_VALIDITY = 300.0  # seconds, `step ca token --not-after 5m`
FRESH = TOKEN_VALIDITY / 2  # a batch older than this is minted again before use

PARALLEL = 8


@dataclass(frozen=True)
class Authority:
    """The CA certificates come from: the URL nodes reach it at, and the cert-manager (an
    inventory host) whose step-ca state at `path` mints the tokens with `provisioner`."""

    url: str
    cert_manager: str
    path: str = "/etc/step-ca"
    provisioner: str = "etcd-pki"
    bin_dir: str = "/opt/bin"
    # The root hosts may trust (operations/roots.py); None: whatever the CA has.
    pin: PinnedRoot | None = None
    # What the CA must allow before tokens are minted (operations/ca_policy.py); None: as is.
    policy: Policy | None = None
    # The other cert-managers with the CA's state and records (ca_ha=active-active): the
    # run turns to them, in order, when `cert_manager` cannot be reached.
    others: tuple[str, ...] = ()
    # Every CA's URL, in the order nodes try them (several with ca_ha=active-active); empty:
    # `url` alone.
    urls: tuple[str, ...] = ()

    @property
    def every_url(self) -> tuple[str, ...]:
        return self.urls or (self.url,)

    def at(self, name: str) -> Authority:
        """The same CA as `name` (one of `others`) serves it: its own URL where `url` names
        the first cert-manager (a name of all the CAs stays as it is)."""
        if name == self.cert_manager:
            return self
        parts = urlsplit(self.url)
        url = self.url
        if parts.hostname == self.cert_manager:
            url = parts._replace(netloc=f"{url_host(name)}:{parts.port or 443}").geturl()
        return replace(self, cert_manager=name, url=url, others=())


# The run (its State) and the cert-manager it reached, for each first cert-manager.
_reached: dict[str, tuple[State, str]] = {}


def reached_name(state: State, authority: Authority, reason: str) -> str:
    """The first of the authority's cert-managers that can be reached, the same for the
    whole run. RuntimeError naming each one's failure when none can."""
    if not authority.others:
        return authority.cert_manager  # no other to turn to: its own errors say what failed
    kept = _reached.get(authority.cert_manager)
    if kept is not None and kept[0] is state:
        return kept[1]
    failures = []
    for name in (authority.cert_manager, *authority.others):
        other = state.inventory.get_host(name)
        try:
            if not other.connected:
                other.connect(reason=reason, raise_exceptions=True)
        except Exception as error:
            failures.append(f"{name}: {error}")
            continue
        _reached[authority.cert_manager] = (state, name)
        return name
    raise RuntimeError(f"no cert-manager can be reached {reason}: {'; '.join(failures)}")


def reached(state: State, authority: Authority, reason: str) -> Remote:
    """The cert-manager of reached_name, with its connector arguments."""
    return Remote.of(state, reached_name(state, authority, reason), reason)


@dataclass(frozen=True)
class TokenItem:
    """One certificate's token: its kind, the subject it is for, the provisioner that signs
    it (its profile's; None: the authority's own)."""

    kind: str
    subject: str
    provisioner: str | None = None


@dataclass(frozen=True)
class TokenRequest:
    """What one node's tokens must say: a token per certificate, the node's SANs, the
    certificates' lifetime."""

    host: str
    items: tuple[TokenItem, ...]
    sans: tuple[str, ...]
    duration: str
    ca_url: str

    @property
    def labels(self) -> tuple[str, ...]:
        """Each token's label: its item's place in the request (a host in several clusters
        has certificates of the same kind)."""
        return tuple(str(place) for place in range(len(self.items)))


@dataclass
class _Batch:
    requests: dict[str, TokenRequest] = field(default_factory=dict)
    minted: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)
    policy_checked: bool = False
    lock: gevent.lock.Semaphore = field(default_factory=gevent.lock.Semaphore)


_batches: dict[int, _Batch] = {}


def _batch(state: State) -> _Batch:
    if id(state) not in _batches:
        _batches.clear()
        _batches[id(state)] = _Batch()
    return _batches[id(state)]


def register(state: State, request: TokenRequest) -> None:
    """Prepare time: this node will ask for tokens during the run."""
    _batch(state).requests[request.host] = request


def key_values(authority: Authority) -> dict[str, object]:
    """The values of the provisioner_key macro (templates/macros/provisioner_key.sh.j2): the
    start of a cert-manager's script that signs tokens with the provisioner's key."""
    path = authority.path
    return {
        "ca_path": path,
        "provisioner": authority.provisioner,
        "config": f"{path}/config/ca.json",
        "password": f"{path}/secrets/provisioner_password",
        "step": f"{authority.bin_dir}/step",
        "root": f"{path}/certs/root_ca.crt",
        "url": authority.url,
    }


def mint_command(
    authority: Authority, requests: Sequence[TokenRequest], url: str | None = None
) -> StringCommand:
    """The cert-manager's command printing `<host> <label> <token>` for every item of every
    request (ca-tokens-mint.sh.j2); `url`: the CA every token is for (default: each
    request's), where `step` asks for the provisioners."""
    jobs = [
        {
            "index": index,
            "node": request.host,
            "label": label,
            "subject": item.subject,
            "sans": request.sans,
            "provisioner": item.provisioner or authority.provisioner,
            "url": url or request.ca_url,
            "duration": request.duration,
        }
        for index, (request, label, item) in enumerate(
            (
                (request, label, item)
                for request in requests
                for label, item in zip(request.labels, request.items, strict=True)
            ),
            start=1,
        )
    ]
    return script(
        "ca-tokens-mint.sh.j2", authority=key_values(authority), jobs=jobs, parallel=PARALLEL
    )


def tokens_for(state: State, authority: Authority, node: str) -> dict[str, str]:
    """Run time: `{label: token}` for `node` (TokenRequest.labels), minting with everyone
    pending when needed.

    Raises RuntimeError with the cert-manager's message when minting fails."""
    batch = _batch(state)
    with batch.lock:
        primary = reached(state, authority, "to mint certificate tokens")
        minted = batch.minted.get(node)
        if minted is None or time.monotonic() - minted[0] > FRESH:
            moved = primary.name != authority.cert_manager
            _mint(batch, primary, authority.at(primary.name), node, moved)
        return batch.minted.pop(node)[1]


def _mint(batch: _Batch, primary: Remote, authority: Authority, node: str, moved: bool) -> None:
    """Mint for every pending request on `primary`; `moved`: not the first cert-manager,
    which does not answer: the tokens are for `primary`'s own CA."""
    now = time.monotonic()
    pending = [
        request
        for name, request in batch.requests.items()
        if name == node or name not in batch.minted or now - batch.minted[name][0] > FRESH
    ]
    if authority.policy is not None and not batch.policy_checked:
        policy_current(primary, authority.path, authority.url, authority.policy)
        batch.policy_checked = True
    ok, output = primary.run(mint_command(authority, pending, authority.url if moved else None))
    if not ok:
        raise RuntimeError(f"minting tokens on {primary.name} failed: {output.stderr}")
    found: dict[str, dict[str, str]] = {}
    for line in output.stdout_lines:
        parts = line.split()
        if len(parts) == 3:
            found.setdefault(parts[0], {})[parts[1]] = parts[2]
    for request in pending:
        tokens = found.get(request.host, {})
        if set(tokens) == set(request.labels):
            batch.minted[request.host] = (now, tokens)
    # Shown under the cert-manager, where the minting ran (also when --limit left it out).
    primary.log(f"minted one-time tokens for {', '.join(r.host for r in pending)}")
    if node not in batch.minted:
        raise RuntimeError(f"{primary.name} minted no token for every certificate of {node}")
