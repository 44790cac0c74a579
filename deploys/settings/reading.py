"""Reading one host's data: its settings (without pyinfra's own data) over DEFAULTS,
validated by the model, and each problem as a SettingsError naming the setting and the host.

pyinfra's own data (global arguments such as `_sudo`, connector data such as `ssh_user`) is
left to pyinfra, any other unknown name is refused with the closest known one.
"""

from __future__ import annotations

import difflib
import functools

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host

from etcd_step_pki.deploys.settings.defaults import DEFAULTS
from etcd_step_pki.deploys.settings.model import HostSettings

# Connectors whose data pyinfra reads by prefix (`ssh_user`), installed or not (winrm).
CONNECTOR_PREFIXES = (
    "ssh", "local", "docker", "chroot", "winrm", "vagrant", "terraform", "dockerssh", "podman",
)  # fmt: skip


class SettingsError(PyinfraError):
    """Bad configuration: raised before any host is changed."""


def invalid(host_name: str, setting: str, problem: str) -> SettingsError:
    """The one form of a settings error, so that the setting and the host are always named."""
    return SettingsError(f"invalid setting `{setting}` for host {host_name}: {problem}")


@functools.cache
def _pyinfra_data() -> tuple[frozenset[str], tuple[str, ...]]:
    """The data names the installed connectors declare, and the connectors' name prefixes."""
    connectors = get_all_connectors()
    names = frozenset(
        name for connector in connectors.values() for name in getattr(connector, "data_meta", {})
    )
    return names, tuple(f"{prefix}_" for prefix in {*CONNECTOR_PREFIXES, *connectors})


def _is_pyinfra_data(name: object) -> bool:
    """pyinfra's own data: global arguments (`_sudo`) and connector data (`ssh_port`)."""
    names, prefixes = _pyinfra_data()
    return isinstance(name, str) and (
        name.startswith("_") or name in names or name.startswith(prefixes)
    )


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(HostSettings.model_fields), n=1)
    if close:
        return f"unknown setting; did you mean {close[0]}?"
    return "unknown setting, and no setting has a similar name"


# pydantic's type errors in the words of the other checks (strict: nothing is converted).
_WRONG_TYPE = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "string_type": "a string",
    "dict_type": "a mapping",
    "tuple_type": "a list",
}


def problem_of(error: ErrorDetails) -> tuple[str, str]:
    """The setting and the problem of one of pydantic's errors, in the words of the checks."""
    context = error.get("ctx") or {}
    cause = context.get("error")  # what a validator raised, Invalid naming its setting
    setting = getattr(cause, "setting", None) or str(error["loc"][0] if error["loc"] else "")
    if error["type"] == "extra_forbidden":
        return setting, _unknown(setting)
    if cause is not None:
        return setting, str(cause)
    if error["type"] == "literal_error":
        return setting, f"{error['input']!r} is not {context['expected']}"
    if error["type"] in _WRONG_TYPE:
        return setting, f"{error['input']!r} is not {_WRONG_TYPE[error['type']]}"
    message = error["msg"]
    return setting, f"{error['input']!r}: {message[:1].lower()}{message[1:]}"


def read_host(host: Host, data: dict[str, object]) -> HostSettings:
    """The host's data (without pyinfra's own) over DEFAULTS, validated. An unknown name is
    reported first: a misspelt setting is the likelier mistake."""
    own = {name: value for name, value in data.items() if not _is_pyinfra_data(name)}
    try:
        return HostSettings.model_validate({**DEFAULTS, **own})
    except ValidationError as error:
        first = min(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise invalid(host.name, *problem_of(first)) from None


def memberships(raw: HostSettings) -> tuple[str, ...]:
    """The host's clusters: those of `etcd_clusters`, else `etcd_cluster_name`."""
    return tuple(raw.etcd_clusters) if raw.etcd_clusters else (raw.etcd_cluster_name,)


def in_cluster(host: Host, raw: HostSettings, cluster: str) -> HostSettings:
    """The host's settings in one of its clusters: its own values for that cluster
    (`etcd_clusters`) over the host's, checked again together."""
    own = (raw.etcd_clusters or {}).get(cluster)
    if not own:
        return raw
    try:
        return HostSettings.model_validate({**raw.model_dump(), **own})
    except ValidationError as error:
        setting, problem = problem_of(error.errors()[0])
        raise invalid(host.name, "etcd_clusters", f"{cluster}: {setting}: {problem}") from None


def own_ports(host: Host, raw: HostSettings) -> None:
    """A host's members of several clusters each listen on ports of their own."""
    if "etcd" not in host.groups:
        return
    taken = {raw.step_ca_port: "step_ca_port"}
    for cluster in memberships(raw):
        mine = in_cluster(host, raw, cluster)
        for setting in ("etcd_client_port", "etcd_peer_port", "etcd_metrics_port"):
            port = getattr(mine, setting)
            if port is None:
                continue
            if port in taken and not raw.etcd_clusters:
                raise invalid(host.name, setting, f"{port} is also {taken[port]}")
            if port in taken:
                raise invalid(
                    host.name,
                    "etcd_clusters",
                    f"{cluster}: {setting} {port} is also {taken[port]}: give each cluster "
                    "its own etcd_client_port, etcd_peer_port and etcd_metrics_port",
                )
            taken[port] = f"{setting} of {cluster}"
