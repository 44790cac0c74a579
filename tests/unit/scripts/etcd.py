"""etcd's scripts: the v2 store check before a move from 3.5."""

from __future__ import annotations

from collections.abc import Callable

from etcd_step_pki.templates import render


def v2store_check() -> str:
    return render(
        "etcd-v2store-check.sh.j2",
        etcdutl="/usr/local/bin/etcdutl",
        data_dir="/var/lib/etcd/k8s",
        user="etcd",
        name="etcd-k8s-1",
        target="3.6.14",
    )


SAMPLES: dict[str, Callable[[], str]] = {"etcd-v2store-check.sh.j2": v2store_check}
