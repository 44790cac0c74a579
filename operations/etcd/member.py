"""Who an etcd member is, and how etcdctl on its host reaches it: plain values the etcd
operations take."""

from __future__ import annotations

from dataclasses import dataclass

from etcd_step_pki.facts.etcd import etcdctl
from etcd_step_pki.templates import url_host


@dataclass(frozen=True)
class Etcdctl:
    """etcdctl on a host, against `endpoint`, with a client certificate (paths only)."""

    binary: str
    cacert: str
    cert: str
    key: str
    endpoint: str = "https://127.0.0.1:2379"

    @property
    def args(self) -> list[str]:
        return etcdctl(self.binary, self.cacert, self.cert, self.key, self.endpoint)


@dataclass(frozen=True)
class Member:
    """One member: its inventory host, etcd name, address and files, and the etcdctl its
    host uses to reach it."""

    host: str
    name: str
    address: str
    data_dir: str
    config_path: str
    unit: str
    etcdctl: Etcdctl
    peer_port: int = 2380
    client_port: int = 2379

    @property
    def peer_url(self) -> str:
        return f"https://{url_host(self.address)}:{self.peer_port}"

    @property
    def config_dir(self) -> str:
        return self.config_path.rsplit("/", 1)[0] or "/"
